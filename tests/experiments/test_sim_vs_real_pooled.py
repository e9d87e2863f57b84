"""Pooling replicated sim-vs-real pairs: each side's deliveries over all runs, one quantile
with its distribution-free interval (no real processes: results are stand-ins)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from immodel.experiments.sim_vs_real import latency_legs_ms, leg_dependence, pooled_quantile


def _result(latencies_ms) -> SimpleNamespace:
    return SimpleNamespace(messages=pd.DataFrame({"latency_ms": latencies_ms}))


def test_the_quantile_is_of_every_delivery_of_every_run_and_undelivered_rows_are_left_out():
    # run 1 holds 1..100 ms, run 2 101..200 ms: pooled, the median of 1..200 is 100.5
    # (numpy's linear interpolation); the real side is the same shifted by 1 ms, and an
    # undelivered message (NaN latency) is not a sample
    sim = [_result(np.arange(1.0, 101.0)), _result(np.arange(101.0, 201.0))]
    real = [_result(np.append(np.arange(2.0, 102.0), np.nan)), _result(np.arange(102.0, 202.0))]
    f = pooled_quantile(list(zip(sim, real, strict=True)), 0.5)
    assert (f["n_sim"], f["n_real"]) == (200, 200)
    assert f["sim"] == pytest.approx(100.5)
    assert f["real"] == pytest.approx(101.5)
    assert f["ratio"] == pytest.approx(100.5 / 101.5)


def test_the_ratio_band_is_the_simulators_estimate_over_the_real_interval():
    # the median of 200 samples: Binomial(200, 0.5) puts ranks 86 and 115 around it at
    # 95 % (P(B ≤ 85) ≈ 0.020 ≤ 0.025 < P(B ≤ 86) ≈ 0.028 and
    # P(B ≤ 113) ≈ 0.972 < 0.975 ≤ P(B ≤ 114) ≈ 0.980), so on 1..200 it is [86, 115] ms
    real = _result(np.arange(1.0, 201.0))
    sim = _result(np.full(200, 100.0))
    f = pooled_quantile([(sim, real)], 0.5)
    assert (f["real_low"], f["real_high"]) == (86.0, 115.0)
    assert f["ratio_low"] == pytest.approx(100.0 / 115.0)
    assert f["ratio_high"] == pytest.approx(100.0 / 86.0)
    assert f["ratio_low"] <= f["ratio"] <= f["ratio_high"]


def test_no_pairs_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        pooled_quantile([], 0.99)


def _timed(t_send, t_stored, t_shown) -> SimpleNamespace:
    t_send, t_stored, t_shown = map(np.asarray, (t_send, t_stored, t_shown))
    frame = pd.DataFrame(
        {
            "msg_id": np.arange(t_send.size),
            "recipient": 7,
            "t_send": t_send,
            "t_stored": t_stored,
            "t_first_show": t_shown,
            "latency_ms": 1000.0 * (t_shown - t_send),
        }
    )
    return SimpleNamespace(messages=frame)


def test_a_delivery_splits_into_its_sender_and_recipient_legs():
    # sent at 0 s, stored at 0.020 s, shown at 0.045 s: legs 20 and 25 ms, 45 in all; a
    # message never shown has no legs
    r = _timed([0.0, 1.0], [0.020, 1.010], [0.045, np.nan])
    legs = latency_legs_ms(r)
    assert list(legs["key"]) == ["0>7"]
    assert legs["send_to_stored"] == pytest.approx([20.0])
    assert legs["stored_to_shown"] == pytest.approx([25.0])
    assert legs["total"] == pytest.approx([45.0])


def test_legs_slow_together_make_a_tail_that_random_pairing_removes():
    # Theory: with both legs equal (perfectly dependent) the sum's p99 is twice a leg's
    # p99; paired at random it is smaller (a slow sender leg rarely meets a slow recipient
    # leg). Legs 1..1000 ms: the sum's p99 is 2 × 990.01 = 1980.02 ms.
    legs_s = np.arange(1.0, 1001.0) / 1000.0
    together = _timed(np.zeros(1000), legs_s, 2 * legs_s)
    d = leg_dependence([together], q=0.99, shuffles=50)
    assert d["spearman"] == pytest.approx(1.0)
    assert d["sum_quantile_ms"] == pytest.approx(1980.02)
    assert d["shuffled_high_ms"] < d["sum_quantile_ms"]
    # independent legs: the observed pairing is one more random pairing, so its p99 sits
    # inside the shuffles' 95 % band (at this fixed seed; about 1 seed in 20 would not)
    rng = np.random.default_rng(3)
    up, down = rng.uniform(0.0, 1.0, 4000), rng.uniform(0.0, 1.0, 4000)
    apart = _timed(np.zeros(4000), up, up + down)
    d = leg_dependence([apart], q=0.99, shuffles=200)
    assert abs(d["spearman"]) < 4 / np.sqrt(4000)  # 4 standard errors of rho at rho = 0
    assert d["shuffled_low_ms"] <= d["sum_quantile_ms"] <= d["shuffled_high_ms"]


def test_a_calibration_of_no_runs_is_refused_before_anything_runs():
    from immodel import Scenario
    from immodel.experiments.sim_vs_real import calibrate

    with pytest.raises(ValueError, match="runs must be at least 1"):
        calibrate(Scenario.load("baseline"), runs=0)

"""Pooling replicated sim-vs-real pairs: each side's deliveries over all runs, one quantile
with its distribution-free interval (no real processes: results are stand-ins)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from immodel.experiments.sim_vs_real import pooled_quantile


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

"""Tests of ``immodel.analysis.stats``: Student-t intervals over replications, percentiles.

Reference values come from printed t tables and SciPy; coverage tests draw many samples
with a fixed seed and accept the observed coverage within 4 binomial standard deviations
of the theoretical one (a false alarm about once in 16 000 seeds, never "tuned" to a run).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from immodel.analysis.stats import (
    aggregate,
    ecdf,
    grid_columns,
    latency_percentiles,
    latency_sample,
    mean_ci,
    metric_columns,
    quantile_ci,
    t_cdf,
    t_quantile,
)


def binomial_band(trials: int, p: float, sds: float = 4.0) -> tuple[float, float]:
    """Acceptance band for a count of successes ~ Binomial(trials, p)."""
    sd = math.sqrt(trials * p * (1 - p))
    return trials * p - sds * sd, trials * p + sds * sd


# --- Student t -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "dof", "table"),
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 4, 2.776),
        (0.975, 9, 2.262),
        (0.975, 29, 2.045),
        (0.95, 5, 2.015),
        (0.995, 10, 3.169),
        (0.9995, 3, 12.924),
    ],
)
def test_t_quantile_matches_printed_table(p, dof, table):
    assert t_quantile(p, dof) == pytest.approx(table, abs=6e-4)


@pytest.mark.parametrize("dof", [0.5, 1, 1.5, 2, 3, 5, 7.25, 10, 30, 120, 9999, 1e4, 1e7])
@pytest.mark.parametrize("p", [0.5001, 0.6, 0.9, 0.95, 0.975, 0.995, 0.9999, 1e-6])
def test_t_quantile_agrees_with_scipy(p, dof):
    assert t_quantile(p, dof) == pytest.approx(scipy.stats.t.ppf(p, dof), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("dof", [1, 2.5, 9, 200])
@pytest.mark.parametrize("t", [-40.0, -2.0, -0.3, 0.0, 0.7, 3.0, 25.0])
def test_t_cdf_agrees_with_scipy(t, dof):
    assert t_cdf(t, dof) == pytest.approx(scipy.stats.t.cdf(t, dof), rel=1e-10, abs=1e-14)


def test_t_quantile_is_symmetric_and_inverts_the_cdf():
    for dof in (1, 3, 17):
        for p in (0.55, 0.8, 0.99):
            assert t_quantile(1 - p, dof) == pytest.approx(-t_quantile(p, dof), rel=1e-12)
            assert t_cdf(t_quantile(p, dof), dof) == pytest.approx(p, rel=1e-10)
    assert t_quantile(0.5, 4) == 0.0


def test_t_quantile_tends_to_the_normal_quantile():
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)
    assert t_quantile(0.975, 1e6) == pytest.approx(1.959964, abs=1e-5)


@pytest.mark.parametrize(("p", "dof"), [(0.0, 3), (1.0, 3), (1.5, 3), (0.9, 0), (0.9, -1)])
def test_t_quantile_rejects_impossible_arguments(p, dof):
    with pytest.raises(ValueError):
        t_quantile(p, dof)


# --- mean and CI ---------------------------------------------------------------------------


def test_mean_ci_of_a_known_sample():
    ci = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (ci.mean, ci.n, ci.std) == (3.0, 5, pytest.approx(math.sqrt(2.5)))
    assert ci.half_width == pytest.approx(half, rel=1e-12)
    assert (ci.low, ci.high) == (pytest.approx(3 - half), pytest.approx(3 + half))


def test_mean_ci_of_one_replication_has_no_interval_and_does_not_crash():
    ci = mean_ci([42.0])
    assert ci.mean == 42.0 and ci.n == 1
    assert all(math.isnan(v) for v in (ci.low, ci.high, ci.half_width, ci.std))


def test_mean_ci_of_nothing_is_nan_throughout():
    ci = mean_ci([])
    assert ci.n == 0 and math.isnan(ci.mean) and math.isnan(ci.half_width)


def test_mean_ci_ignores_missing_values():
    ci = mean_ci([1.0, None, float("nan"), 3.0])
    assert ci.n == 2 and ci.mean == 2.0
    assert ci.half_width == pytest.approx(12.706204736174707 * math.sqrt(2) / math.sqrt(2))


def test_mean_ci_rejects_a_confidence_outside_0_1():
    with pytest.raises(ValueError):
        mean_ci([1, 2], confidence=95)


@pytest.mark.parametrize(("n", "confidence"), [(2, 0.95), (5, 0.95), (30, 0.95), (5, 0.8)])
def test_ci_covers_the_true_mean_at_its_nominal_rate(n, confidence):
    """Normal samples: the t interval covers μ with probability exactly ``confidence``.

    With n = 2 a normal-quantile interval would cover only ~68 % of the time, so this
    also checks that the n − 1 degrees of freedom are used.
    """
    trials, mu, sigma = 4000, 3.0, 2.0
    rng = np.random.default_rng(20240605 + n)
    frame = pd.DataFrame(
        {
            "point": np.repeat(np.arange(trials), n),
            "config": np.repeat(np.arange(trials), n),
            "replication": np.tile(np.arange(n), trials),
            "seed": 0,
            "latency_p99_ms": rng.normal(mu, sigma, size=trials * n),
        }
    )
    agg = aggregate(frame, confidence=confidence)
    assert len(agg) == trials and (agg["n"] == n).all()
    covered = int(((agg["low"] <= mu) & (mu <= agg["high"])).sum())
    lo, hi = binomial_band(trials, confidence)
    assert lo <= covered <= hi


def test_aggregate_agrees_with_mean_ci_group_by_group():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "point": np.repeat([0, 1, 2], 4),
            "transport.kind": np.repeat(["push", "short_poll", "hybrid"], 4),
            "replication": np.tile(range(4), 3),
            "seed": 1,
            "lost": rng.integers(0, 10, 12),
            "requests_per_s": rng.normal(100, 10, 12),
        }
    )
    agg = aggregate(frame)
    for (kind, metric), row in agg.set_index(["transport.kind", "metric"]).iterrows():
        ci = mean_ci(frame.loc[frame["transport.kind"] == kind, metric])
        assert row["mean"] == pytest.approx(ci.mean)
        assert row["half_width"] == pytest.approx(ci.half_width)
        assert row["n"] == ci.n


def synthetic_results() -> pd.DataFrame:
    """A sweep results frame with the documented layout (no simulator needed)."""
    rows = []
    point = 0
    for loss in (0.0, 0.1):
        for kind in ("short_poll", "push"):
            reps = 1 if (loss, kind) == (0.1, "push") else 3
            for rep in range(reps):
                rows.append(
                    {
                        "point": point,
                        "network.downlink_loss": loss,
                        "transport.kind": kind,
                        "replication": rep,
                        "seed": 100 + rep,
                        "lost": rep,
                        "latency_p99_ms": 100.0 * (1 + loss) + rep,
                        "empty_poll_fraction": None if kind == "push" else 0.9 - loss,
                        "requests_per_s": 50.0 + rep,
                    }
                )
            point += 1
    frame = pd.DataFrame(rows)
    frame["empty_poll_fraction"] = pd.to_numeric(frame["empty_poll_fraction"])
    return frame


def test_grid_and_metric_columns_follow_the_results_layout():
    frame = synthetic_results()
    assert grid_columns(frame) == ["network.downlink_loss", "transport.kind"]
    assert metric_columns(frame) == [
        "lost",
        "latency_p99_ms",
        "empty_poll_fraction",
        "requests_per_s",
    ]
    assert grid_columns(frame[["lost", "requests_per_s"]]) == []


def test_aggregate_is_one_row_per_grid_point_and_metric_in_first_seen_order():
    agg = aggregate(synthetic_results())
    assert list(agg.columns) == [
        "network.downlink_loss",
        "transport.kind",
        "metric",
        "n",
        "mean",
        "std",
        "half_width",
        "low",
        "high",
    ]
    assert len(agg) == 4 * 4
    points = agg[["network.downlink_loss", "transport.kind"]].drop_duplicates()
    assert points.values.tolist() == [
        [0.0, "short_poll"],
        [0.0, "push"],
        [0.1, "short_poll"],
        [0.1, "push"],
    ]


def test_aggregate_single_replication_point_has_mean_but_nan_interval():
    agg = aggregate(synthetic_results(), metrics="latency_p99_ms")
    row = agg[(agg["network.downlink_loss"] == 0.1) & (agg["transport.kind"] == "push")].iloc[0]
    assert row["n"] == 1 and row["mean"] == pytest.approx(110.0)
    assert math.isnan(row["half_width"]) and math.isnan(row["low"]) and math.isnan(row["high"])


def test_aggregate_metric_missing_in_every_replication_is_nan_with_n_zero():
    agg = aggregate(synthetic_results(), metrics=["empty_poll_fraction"])
    push = agg[agg["transport.kind"] == "push"]
    assert (push["n"] == 0).all() and push["mean"].isna().all()
    poll = agg[agg["transport.kind"] == "short_poll"]
    assert poll["mean"].tolist() == pytest.approx([0.9, 0.8])


def test_aggregate_by_explicit_columns_and_over_everything():
    frame = synthetic_results()
    by_kind = aggregate(frame, metrics="lost", by="transport.kind")
    assert by_kind["transport.kind"].tolist() == ["short_poll", "push"]
    assert by_kind["n"].tolist() == [6, 4]
    overall = aggregate(frame, metrics="lost", by=[])
    assert list(overall.columns[:2]) == ["metric", "n"] and overall["n"].item() == 10


def test_aggregate_names_a_missing_column():
    with pytest.raises(KeyError, match="nope"):
        aggregate(synthetic_results(), metrics="nope")
    with pytest.raises(KeyError, match="nope"):
        aggregate(synthetic_results(), by="nope")


def test_aggregate_of_an_empty_frame_is_an_empty_frame_with_the_columns():
    agg = aggregate(synthetic_results().iloc[0:0], metrics="lost")
    assert agg.empty and "mean" in agg.columns


# --- latency percentiles of one run ------------------------------------------------------


def test_latency_percentiles_equal_the_run_summary():
    from immodel import Scenario, run

    result = run(
        Scenario.load("lossy-mobile", {"workload.users": 60, "duration_s": 20.0, "drain_s": 20.0})
    )
    table = latency_percentiles(result.messages, (50, 95, 99))
    for p in ("p50", "p95", "p99"):
        assert table[p].item() == pytest.approx(result.summary[f"latency_{p}_ms"], rel=1e-12)


def messages_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "latency_ms": [10.0, 20.0, 30.0, 40.0, np.nan, 1000.0],
            "online_at_store": [True, True, True, True, True, False],
            "first_via": ["push", "push", "poll", "poll", "push", "sync"],
        }
    )


def test_latency_sample_keeps_online_recipients_that_got_the_message():
    assert latency_sample(messages_frame()).tolist() == [10.0, 20.0, 30.0, 40.0]
    assert latency_sample(messages_frame(), online_only=False).tolist()[-1] == 1000.0


def test_latency_percentiles_by_group_and_names():
    table = latency_percentiles(messages_frame(), (50, 99.9), by="first_via")
    assert list(table.columns) == ["first_via", "n", "p50", "p99.9"]
    by_path = table.set_index("first_via")
    assert by_path.loc[["poll", "push"], "p50"].tolist() == [35.0, 15.0]
    assert by_path.loc["sync", "n"] == 0 and math.isnan(by_path.loc["sync", "p50"])
    empty = latency_percentiles(messages_frame().iloc[0:0])
    assert empty["n"].item() == 0 and math.isnan(empty["p99"].item())


def test_ecdf_is_sorted_and_ends_at_one():
    x, y = ecdf([3.0, 1.0, np.nan, 2.0])
    assert x.tolist() == [1.0, 2.0, 3.0]
    assert y.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])


def exact_order_statistic_coverage(n: int, q: float, low_rank: int, high_rank: int) -> float:
    """P(x(l) ≤ ξ_q ≤ x(u)) = P(l ≤ B ≤ u − 1), B ~ Binomial(n, q)."""
    return scipy.stats.binom.cdf(high_rank - 1, n, q) - scipy.stats.binom.cdf(low_rank - 1, n, q)


def test_quantile_ci_covers_the_true_quantile_at_least_at_the_nominal_rate():
    n, q, trials = 200, 0.9, 3000
    true_q = -math.log(1 - q)  # exponential(1)
    rng = np.random.default_rng(99)
    samples = rng.exponential(size=(trials, n))
    covered, ranks = 0, set()
    for row in samples:
        _, low, high = quantile_ci(row, q)
        covered += low <= true_q <= high
        srt = np.sort(row)
        ranks.add((int(np.searchsorted(srt, low)) + 1, int(np.searchsorted(srt, high)) + 1))
    assert len(ranks) == 1  # the ranks depend on n and q only
    exact = exact_order_statistic_coverage(n, q, *ranks.pop())
    assert 0.95 <= exact < 0.97  # conservative, but not absurdly so
    lo, hi = binomial_band(trials, exact)
    assert lo <= covered <= hi


def test_quantile_ci_cannot_bound_p99_from_a_small_sample():
    est, low, high = quantile_ci(np.arange(1.0, 51.0), 0.99)
    assert est == pytest.approx(np.quantile(np.arange(1.0, 51.0), 0.99))
    assert low <= est and math.isnan(high)
    assert all(math.isnan(v) for v in quantile_ci([], 0.5))

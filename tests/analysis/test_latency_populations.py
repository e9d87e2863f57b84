"""One latency, one definition per population: the run summary, the checker and the
figures agree on what each latency covers (send → first arrival at the app).

* online recipients — ``summary["latency_*_ms"]``, :func:`latency_sample` (default),
  the ECDF legend "online recipients (latency_* metrics)";
* every first delivery incl. catch-up — ``immodel check`` on the run's trace,
  ``latency_sample(..., online_only=False)``.

A run with presence churn has recipients offline when messages are stored, so the two
populations differ and a mix-up shows.
"""

from __future__ import annotations

import numpy as np
import pytest

from immodel import Scenario, run
from immodel.analysis.checker import check_trace
from immodel.analysis.plots import plot_latency_ecdf
from immodel.analysis.stats import expected_pairs, latency_sample


@pytest.fixture(scope="module")
def churn_run():
    scenario = Scenario.load(
        "baseline",
        {
            "workload.users": 60,
            "workload.send_rate_per_user": 0.1,
            "workload.mean_online_s": 20.0,
            "workload.mean_offline_s": 10.0,
            "duration_s": 40.0,
            "drain_s": 60.0,
        },
        seed=3,
    )
    return run(scenario)


def test_the_two_populations_differ_on_a_run_with_offline_recipients(churn_run):
    m = churn_run.messages
    assert expected_pairs(m, online_only=True) < expected_pairs(m, online_only=False)
    online, everyone = latency_sample(m, True), latency_sample(m, False)
    assert online.size < everyone.size
    assert np.quantile(everyone, 0.99) > np.quantile(online, 0.99)  # catch-up is slower


def test_summary_latency_is_over_online_recipients(churn_run):
    s, x = churn_run.summary, latency_sample(churn_run.messages, True)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert s[f"latency_{name}_ms"] == pytest.approx(np.quantile(x, q), rel=1e-12)
    assert s["latency_max_ms"] == pytest.approx(x.max(), rel=1e-12)


def test_checker_latency_is_over_every_first_delivery(churn_run):
    report = check_trace(churn_run.trace)
    x = latency_sample(churn_run.messages, False)
    assert report.latency_samples == x.size
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert getattr(report, f"latency_{name}_ms") == pytest.approx(np.percentile(x, q), rel=1e-9)


def test_ecdf_legend_names_the_summary_population_with_its_counts(churn_run):
    m = churn_run.messages
    (label,) = [t.get_text() for t in plot_latency_ecdf(m).axes[0].get_legend().get_texts()]
    n, expected = latency_sample(m, True).size, expected_pairs(m, True)
    assert label == f"online recipients (latency_* metrics)\n(n = {n:,} of {expected:,} expected)"

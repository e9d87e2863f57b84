"""Simulated vs real on matched scenarios: the simulator, calibrated on this machine
(:func:`immodel.experiments.sim_vs_real.calibrate`), against ``immodel real`` with the
same seed — the same plan of sends.

What must agree: nothing lost or duplicated in either (every mechanism on); the same
requests per delivered message (the protocol's traffic: the plan, the ACKs and syncs it
causes are the same, so only a sync coalesced differently may differ: 5 %); median and
99th-percentile latency within the design target of 20 % once the loopback's own
latency is in the simulated scenario. A logic crash: nothing lost in either, and both
recover (every affected pair delivered)."""

from __future__ import annotations

import pytest

from immodel import Scenario
from immodel.experiments.sim_vs_real import calibrate, compare, matched_runs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

BASE = {
    "workload.users": 30,
    "workload.send_rate_per_user": 1.0,
    "duration_s": 4.0,
    "drain_s": 2.0,
}


@pytest.fixture(scope="module")
def calibration():
    pytest.importorskip("trustme")
    return calibrate(Scenario.load("baseline", BASE))


@pytest.fixture(scope="module")
def push_pair(calibration):
    return matched_runs(
        Scenario.load("baseline", {**BASE, "network.latency_ms": 20.0}), calibration
    )


def test_push_neither_loses_nor_duplicates(push_pair):
    for result in push_pair:
        assert result.summary["lost"] == 0 and result.summary["duplicates"] == 0
    assert push_pair[0].summary["messages_sent"] == push_pair[1].summary["messages_sent"]


def test_push_requests_per_delivery_agree(push_pair):
    table = compare({"push": push_pair}).set_index("metric")
    assert table.loc["requests_per_delivery", "sim / real"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("metric", ["latency_p50_ms", "latency_p99_ms"])
def test_push_latency_agrees_within_20_percent(push_pair, metric):
    table = compare({"push": push_pair}).set_index("metric")
    assert table.loc[metric, "sim / real"] == pytest.approx(1.0, abs=0.2), table


def test_a_logic_crash_loses_nothing_in_either_and_both_recover(calibration):
    crash = Scenario.load(
        "baseline",
        {
            **BASE,
            "server.nodes": 2,
            "faults": [{"kind": "server_crash", "at_s": 1.5, "down_s": 1.0, "node": 0}],
        },
    )
    sim, real = matched_runs(crash, calibration)
    for result in (sim, real):
        assert result.summary["lost"] == 0 and result.summary["duplicates"] == 0
        assert result.summary["recovery_undelivered"] == 0

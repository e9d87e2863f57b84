"""Simulated vs real on matched scenarios: the simulator, calibrated on this machine
(:func:`immodel.experiments.sim_vs_real.calibrate`), against ``immodel real`` with the
same seed — the same plan of sends.

What must agree: nothing lost or duplicated in either (every mechanism on); the same
requests per delivered message (the protocol's traffic: the plan, the ACKs and syncs it
causes are the same, so only a sync coalesced differently may differ: 5 %); the median
latency within the design target of 20 % once the loopback's own latency is in the
simulated scenario, and the p99 within 20 % of the interval the real run's sample can
give for it. A logic crash and a connection-reset storm (an
access node dies): nothing lost in either, and both recover (every affected pair
delivered). And the logic tier's load: busy time per logic node in the sending window,
the simulator's with the calibrated keys (its own I/O per frame included) against the
real processes' CPU (:func:`~immodel.experiments.sim_vs_real.busy_per_node`)."""

from __future__ import annotations

import json
import math

import pytest

from immodel import Scenario
from immodel.analysis.stats import quantile_ci
from immodel.experiments.sim_vs_real import calibrate, compare, matched_runs
from immodel.sim.model import load_run
from tests.real.real_helpers import shared

pytestmark = [
    # the p99 comparison is of wall-clock latency: run with nothing else on the machine
    pytest.mark.alone,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

#: the push pair's one-way latency, which the calibration is made at (the fault proxy's
#: timers are part of the loopback's one-way time at that latency)
PUSH_LATENCY_MS = 20.0

BASE = {
    "workload.users": 30,
    "workload.send_rate_per_user": 1.0,
    "duration_s": 3.0,
    "drain_s": 1.5,
}


def _pair(tmp_path_factory, name: str, scenario, calibration):
    """The matched ``(sim, real)`` pair, made once per session (see ``shared``)."""
    return shared(
        tmp_path_factory,
        name,
        lambda _work: matched_runs(scenario, calibration),
        lambda pair, folder: (pair[0].write(folder / "sim"), pair[1].write(folder / "real")),
        lambda folder: (load_run(folder / "sim"), load_run(folder / "real")),
    )


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    pytest.importorskip("trustme")
    return shared(
        tmp_path_factory,
        "calibration",
        # three calibration runs pooled: one 3 s run's logic CPU is now and then caught by
        # a hiccup of the machine (a calibration 1.7x high was seen), and every
        # utilisation comparison below inherits it
        lambda _work: calibrate(
            Scenario.load("baseline", BASE), latency_ms=PUSH_LATENCY_MS, runs=3
        ),
        lambda keys, folder: (folder / "keys.json").write_text(json.dumps(keys)),
        lambda folder: json.loads((folder / "keys.json").read_text()),
    )


@pytest.fixture(scope="module")
def push_pair(calibration, tmp_path_factory):
    scenario = Scenario.load("baseline", {**BASE, "network.latency_ms": PUSH_LATENCY_MS})
    return _pair(tmp_path_factory, "push-pair", scenario, calibration)


def test_push_neither_loses_nor_duplicates(push_pair):
    for result in push_pair:
        assert result.summary["lost"] == 0 and result.summary["duplicates"] == 0
    assert push_pair[0].summary["messages_sent"] == push_pair[1].summary["messages_sent"]


def test_push_requests_per_delivery_agree(push_pair):
    table = compare({"push": push_pair}).set_index("metric")
    assert table.loc["requests_per_delivery", "sim / real"] == pytest.approx(1.0, abs=0.05)


def test_push_median_latency_agrees_within_20_percent(push_pair):
    table = compare({"push": push_pair}).set_index("metric")
    assert table.loc["latency_p50_ms", "sim / real"] == pytest.approx(1.0, abs=0.2), table


#: The logic tier's utilisation, sim / real, must be within this of 1 on the push pair
#: and the reset storm. One 3 s pair (~0.15 s of logic CPU) cannot resolve the 20 %
#: target: 13 push pairs at this size, each with its own calibration, gave a mean of 1.04
#: and a standard deviation of 0.117 (0.81-1.23); the tolerance is three of those. The
#: target itself is checked pooled, over five 10 s pairs per scenario (0.94-1.07,
#: README "Real sockets"); this guards against a calibration that is wrong, not noisy.
LOGIC_UTILIZATION_TOLERANCE = 0.35
#: After a logic crash the simulator is low by a measured bias: the per-frame cost is
#: calibrated on one logic process, and two processes (one restarted cold, each with its
#: idle work and fewer frames per event-loop wake-up) spend more per frame, which the
#: simulator has no per-process cost to put in. The bias is not a constant: it was 0.81
#: pooled over five 10 s pairs on an earlier day (0.78-0.88 at this size); when a later
#: round made the simulator's code (which the real processes run too) ~5 % cheaper per
#: frame, the calibrated keys fell with it while the restarted process's extra CPU did
#: not. Measured again at this size, calibration and pair each time, on the code before
#: and after that round and on a fresh clone: 14 pairs, mean 0.69, standard deviation
#: 0.083 (0.54-0.84; most of the spread is the 3 s calibration's own, whose store_ms
#: moved 0.43-0.65 ms between runs). The band is that mean less three standard
#: deviations below, and the 20 % target plus the push pair's tolerance above.
LOGIC_CRASH_BAND = (0.44, 1.25)


def _logic_utilization_ratio(pair) -> float:
    table = compare({"pair": pair}).set_index("metric")
    return table.loc["utilization_logic", "sim / real"]


def test_push_logic_utilization_agrees(push_pair):
    ratio = _logic_utilization_ratio(push_pair)
    assert ratio == pytest.approx(1.0, abs=LOGIC_UTILIZATION_TOLERANCE), ratio


def test_push_p99_is_within_20_percent_of_what_the_real_sample_can_tell(push_pair):
    # ~90 deliveries pin the real p99 down only to a distribution-free 95 % interval of
    # order statistics (immodel.analysis.stats.quantile_ci); its upper bound needs ~300
    # samples and is NaN below that. The simulator's p99 must lie within that interval
    # widened by the 20 % target, on each side the sample bounds.
    sim, real = push_pair
    _, low, high = quantile_ci(real.messages["latency_ms"].dropna(), 0.99)
    p99 = sim.summary["latency_p99_ms"]
    assert p99 >= 0.8 * low
    if not math.isnan(high):
        assert p99 <= 1.2 * high


def test_a_logic_crash_loses_nothing_in_either_and_both_recover(calibration, tmp_path_factory):
    crash = Scenario.load(
        "baseline",
        {
            **BASE,
            "server.nodes": 2,
            "faults": [{"kind": "server_crash", "at_s": 1.0, "down_s": 1.0, "node": 0}],
        },
    )
    sim, real = _pair(tmp_path_factory, "crash-pair", crash, calibration)
    for result in (sim, real):
        assert result.summary["lost"] == 0 and result.summary["duplicates"] == 0
        assert result.summary["recovery_undelivered"] == 0
    low, high = LOGIC_CRASH_BAND
    assert low <= _logic_utilization_ratio((sim, real)) <= high


def test_a_connection_reset_storm_loses_nothing_in_either_and_the_cut_clients_return(
    calibration, tmp_path_factory
):
    # an access node dies: every connection it held is reset, its clients reconnect to
    # the other node (in both, the fault's users are the clients it held)
    storm = Scenario.load(
        "baseline",
        {
            **BASE,
            "server.access_nodes": 2,
            "faults": [{"kind": "gateway_crash", "at_s": 1.0, "down_s": 1.0, "node": 1}],
        },
    )
    sim, real = _pair(tmp_path_factory, "storm-pair", storm, calibration)
    for result in (sim, real):
        assert result.summary["lost"] == 0 and result.summary["duplicates"] == 0
        assert result.summary["recovery_undelivered"] == 0
        logins = result.requests[result.requests["kind"] == "login"]
        assert len(logins) > 0  # the cut clients came back
    ratio = _logic_utilization_ratio((sim, real))
    assert ratio == pytest.approx(1.0, abs=LOGIC_UTILIZATION_TOLERANCE), ratio

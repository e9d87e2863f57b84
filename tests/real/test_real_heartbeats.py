"""Heartbeats in ``immodel real``: a push client sends one every ``transport.heartbeat_s``
at its phase and gives up on a connection whose heartbeat gets nothing back within
``transport.request_timeout_s``; the access node drops a push connection silent for
``transport.liveness_timeout_s``. A partition longer than both trips each once per cut
client, as in the simulator, and the reconnects (with backoff until the heal) and their
syncs lose nothing."""

from __future__ import annotations

import pytest

from immodel import Scenario, run
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

LONG_PARTITION = {
    **SMALL,
    "duration_s": 6.0,
    "drain_s": 4.0,
    "transport.heartbeat_s": 1.0,
    "transport.request_timeout_s": 0.5,
    "transport.liveness_timeout_s": 2.0,
    "faults": [
        {"kind": "partition", "at_s": 1.0, "down_s": 3.0, "share": 0.5, "direction": "both"}
    ],
}


@pytest.fixture(scope="module")
def scenario():
    return Scenario.load("baseline", LONG_PARTITION)


@pytest.fixture(scope="module")
def heartbeat_run(scenario, tmp_path_factory):
    return shared_real_run(tmp_path_factory, "heartbeats", scenario)[0]


def test_each_cut_client_and_its_server_side_notice_once(heartbeat_run, scenario):
    # the users cut are the simulator's choice (stream faults), so the counts must match:
    # every cut push client misses a heartbeat's answer (1 s period, 0.5 s timeout, in a
    # 3 s cut) and the access node hears nothing from it for 2 s < 3 s
    sim = run(scenario).summary
    cut = sim["liveness_drops"]
    assert cut > 0
    assert heartbeat_run.counters["heartbeat_timeouts"] == cut
    assert heartbeat_run.summary["liveness_drops"] == cut
    logins = heartbeat_run.requests[heartbeat_run.requests["kind"] == "login"]
    assert len(logins) == cut  # one successful reconnect each …
    assert logins["t"].min() >= 4.0  # … after the heal (the attempts before it time out)


def test_a_partition_that_trips_the_heartbeats_loses_nothing(heartbeat_run):
    s = heartbeat_run.summary
    assert s["lost"] == 0 and s["duplicates"] == 0 and s["order_violations"] == 0
    assert heartbeat_run.counters["access_heartbeats"] > 0  # the uncut clients' beats

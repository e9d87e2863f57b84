"""``gateway_crash`` in ``immodel real``: an access process is SIGKILLed; its clients see
their TLS connections reset, reconnect to the other access node, log in and sync, and
nothing is lost."""

from __future__ import annotations

import pytest

from immodel import Scenario
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]


@pytest.fixture(scope="module")
def gateway_run(tmp_path_factory):
    scenario = Scenario.load(
        "baseline",
        {
            **SMALL,
            "workload.users": 30,
            "workload.send_rate_per_user": 1.0,
            "duration_s": 3.0,
            "server.access_nodes": 2,
            "faults": [{"kind": "gateway_crash", "at_s": 1.0, "down_s": 1.0, "node": 1}],
        },
    )
    return shared_real_run(tmp_path_factory, "gateway", scenario)[0]


def test_the_cut_clients_reconnect_and_nothing_is_lost(gateway_run):
    summary = gateway_run.summary
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["send_failures"] == 0
    # users are spread over the two access nodes by uid: the odd half was cut off
    assert gateway_run.counters["reconnects"] == 15
    logins = gateway_run.requests[gateway_run.requests["kind"] == "login"]
    assert len(logins) == 15  # the start population's logins are before the run


def test_reconnecting_takes_the_backoff_not_the_outage(gateway_run):
    # a cut client waits reconnect_base_s × U(0.5, 1.5) and finds the other node up, so
    # every one is back within 1.5 s plus its handshake
    assert gateway_run.summary["reconnect_time_s"] < 2.0
    assert gateway_run.summary["recovery_undelivered"] == 0

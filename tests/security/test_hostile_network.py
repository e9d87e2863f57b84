"""The built-in hostile-network scenario: every attack is on, every defence holds."""

import immodel
from immodel.analysis.checker import check_trace
from immodel.scenario import Scenario


def test_hostile_network_attacks_are_counted_and_nothing_altered_gets_through():
    r = immodel.run(Scenario.load("hostile-network", {"workload.users": 150, "duration_s": 60.0}))
    s = r.summary
    assert s["hijacked_connections"] > 0
    assert s["tamper_detected"] > 0
    assert s["forged_rejected"] > 0
    assert s["logins_rejected"] > 0
    # encrypted channel: no altered message shown, and the checker agrees
    assert s["tampered_deliveries"] == 0
    assert check_trace(r.trace).altered_deliveries == 0
    assert s["exposed_messages"] == 0
    # a one-day token replayed an hour after capture is the only hostile login that passes
    assert s["hostile_logins_accepted"] == s["replays_accepted"] > 0
    assert s["connect_latency_p99_ms"] >= s["connect_latency_p50_ms"] > 0

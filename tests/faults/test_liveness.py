"""Heartbeat liveness across a partition: silence is noticed at both ends, nothing lost."""

from __future__ import annotations

from immodel import run

BASE = {"workload.users": 100, "duration_s": 60.0, "drain_s": 300.0}


def partition(down_s: float, direction: str = "uplink") -> dict:
    return {
        "kind": "partition",
        "at_s": 10.0,
        "down_s": down_s,
        "share": 0.3,
        "direction": direction,
    }


def test_a_partition_shorter_than_a_heartbeat_is_repaired_in_place():
    s = run("baseline", **BASE, faults=[partition(5.0)]).summary
    assert s["liveness_drops"] == 0
    assert s["logins"] == 0
    assert s["lost"] == 0


def test_a_long_uplink_partition_trips_server_liveness_and_clients_reconnect():
    s = run("baseline", **BASE, faults=[partition(200.0)]).summary
    # Every cut-off push client is dropped by the server (silent beyond the liveness
    # timeout) and logs in again once the partition heals; nothing is lost.
    assert s["liveness_drops"] > 0
    assert s["logins"] == s["liveness_drops"]
    assert s["lost"] == 0 and s["duplicates"] == 0


def test_a_long_downlink_partition_makes_clients_reconnect_without_a_server_drop():
    s = run("baseline", **BASE, faults=[partition(200.0, "downlink")]).summary
    # The server still hears the heartbeats, so it keeps the connections; the clients
    # hear no answers, give up on them and log in again after the partition.
    assert s["liveness_drops"] == 0
    assert s["logins"] > 0
    assert s["lost"] == 0 and s["duplicates"] == 0

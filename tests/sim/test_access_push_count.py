"""The access node's push-connection count stays equal to its connection table.

Each sample charges one heartbeat job per access node sized by the push connections it
holds; the node keeps that number as a counter updated where its table changes (a login,
a close, a crash) instead of counting the table every sample. The counter is state that
could drift from the table, so this test checks them against each other at every sample
of a run that exercises every change: push and web clients, churn (logins and closes),
re-logins that replace a stale connection, and an access-node crash.
"""

from __future__ import annotations

from immodel import Scenario
from immodel.sim.clients import PUSH
from immodel.sim.world import World


def test_push_connection_count_equals_the_table_at_every_sample() -> None:
    sc = Scenario.load(
        "baseline",
        {
            "transport.kind": "hybrid",
            "transport.web_share": 0.4,
            "workload.users": 200,
            "workload.send_rate_per_user": 0.1,
            "workload.mean_online_s": 8.0,
            "workload.mean_offline_s": 4.0,
            "server.access_nodes": 2,
            "duration_s": 40.0,
            "drain_s": 5.0,
            "faults": [{"kind": "gateway_crash", "node": 1, "at_s": 15.0, "down_s": 5.0}],
        },
    )
    world = World(sc)
    checked: list[int] = []
    charge = world.access.charge_heartbeats

    def checked_charge(interval_s: float) -> None:
        for node in world.access.nodes:
            in_table = sum(1 for conn in node.conns.values() if conn.mode == PUSH)
            assert node.push_conns == in_table, (node.node_id, world.env.now)
            checked.append(in_table)
        charge(interval_s)

    world.access.charge_heartbeats = checked_charge
    world.run()
    assert len(checked) > 50  # sampled through the whole run
    assert min(checked) < max(checked)  # churn and the crash moved the count
    assert world.access.nodes[1].crashes == 1


def test_a_replaced_connection_of_the_same_user_is_counted_once() -> None:
    world = World(Scenario.load("baseline", {"workload.users": 2, "duration_s": 1.0}))
    node = world.access.nodes[0]
    client = world.clients[0]
    first = world.access.new_connection(client, node)
    second = world.access.new_connection(client, node)
    node.release(client.uid)
    base = node.push_conns
    node.hold(first)
    node.hold(second)  # the same user again: replaces, not adds
    assert node.push_conns == base + 1
    assert node.release(client.uid) is second
    assert node.push_conns == base

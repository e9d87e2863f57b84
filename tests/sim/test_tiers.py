"""Two tiers: what a logic-node crash and an access-node crash do to clients.

Theory (the deployment, the article's figure 4): connections live on the access tier,
so a logic node can die while every client stays connected — nobody logs in again — and
what its pending-ACK queues held is repaired by the next receipt sync; a crashed access
process resets its connections, its clients reconnect at once to a live access node, and
the senders resend on the new connection without spending their retry budget.
"""

from __future__ import annotations

from immodel import Scenario, run


def _scenario(**over) -> Scenario:
    base = {
        "workload.users": 400,
        "workload.send_rate_per_user": 0.05,
        "duration_s": 60.0,
        "drain_s": 120.0,
    }
    base.update(over)
    return Scenario.load("baseline", base)


def test_a_logic_crash_keeps_every_connection_and_fails_no_send() -> None:
    sc = _scenario(
        **{"server.nodes": 2, "faults": [{"kind": "server_crash", "at_s": 20, "down_s": 5}]}
    )
    result = run(sc)
    s = result.summary
    assert s["logins"] == 0  # nobody had to reconnect
    assert s["send_failures"] == 0
    # the other node took the dead node's users over after the detection delay
    assert s["lost"] == 0 or s["crash_pending_lost"] > 0


def test_an_access_crash_moves_its_clients_to_the_other_access_node() -> None:
    sc = _scenario(
        **{
            "server.access_nodes": 2,
            "faults": [{"kind": "gateway_crash", "at_s": 20, "node": 0, "down_s": 5}],
        }
    )
    result = run(sc)
    s = result.summary
    # every client of node 0 (about half of 400) logs in again, on node 1
    assert 120 < s["logins"] < 280
    assert s["send_failures"] == 0
    assert s["lost"] == 0 and s["duplicates"] == 0


def test_a_single_logic_node_down_five_seconds_fails_no_send() -> None:
    sc = _scenario(**{"faults": [{"kind": "server_crash", "at_s": 20, "down_s": 5}]})
    s = run(sc).summary
    assert s["send_failures"] == 0
    assert s["logins"] == 0


def _crash_run(**over):
    return run(
        _scenario(
            **{
                "workload.send_rate_per_user": 0.1,
                "reliability.ack_timeout_s": 30.0,  # the crash must catch messages unacked
                "network.latency_ms": 60.0,
                "network.model": "datagram",
                "network.downlink_loss": 0.2,
                "faults": [{"kind": "server_crash", "at_s": 30, "down_s": 10}],
                **over,
            }
        )
    )


def test_receipt_sync_repairs_the_crash_for_every_recipient_who_receives_again() -> None:
    # Figure 4: the pending-ACK queue dies with the logic node; a later receipt syncs.
    result = _crash_run()
    m = result.messages
    expected = m[m["stored"]]
    lost = expected[expected["t_first_show"].isna()]
    # whoever is still missing a message received nothing after the crash ended
    later_receipts = m[(m["t_first_show"] > 40.0)].groupby("recipient").size()
    assert all(r not in later_receipts.index for r in lost["recipient"])
    repaired = set(m["repaired_by"])
    assert "sync_receipt" in repaired


def test_without_receipt_sync_a_logic_crash_loses_what_its_queue_held() -> None:
    with_receipt = _crash_run().summary
    without = _crash_run(**{"reliability.sync_on_receipt": False}).summary
    assert with_receipt["crash_pending_lost"] > 0
    assert without["lost"] > with_receipt["lost"]

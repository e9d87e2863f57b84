"""``reliability.sync_cursor = "inbox"`` in the simulator: the same delivery guarantees as
conversation sync under a crash, several devices, REST senders and pollers, reproducible,
no loss to the timestamp hole that clock skew opens in conversation sync, and live rooms
(which never sync) untouched."""

from __future__ import annotations

import pandas as pd
import pytest

from immodel import Scenario, run
from immodel.sim import model
from immodel.sim.faults import required_drain_s
from immodel.sim.world import World

INBOX = {"reliability.sync_cursor": "inbox"}


def _crash(mode: str) -> Scenario:
    # two logic nodes, groups and 1:1, 5 % downlink loss (pushes wait in pending-ACK
    # queues for their retransmission), node 0 down for 6 s: its queues are lost and what
    # they held is repaired by sync and the logins
    sc = Scenario.load(
        "crash",
        {
            "workload.users": 120,
            "workload.send_rate_per_user": 0.5,
            "network.downlink_loss": 0.05,
            "workload.groups": 4,
            "workload.group_size": 10,
            "server.nodes": 2,
            "duration_s": 30.0,
            "faults": [{"kind": "server_crash", "at_s": 10.0, "down_s": 6.0, "node": 0}],
            "reliability.sync_cursor": mode,
        },
    )
    return sc.with_overrides({"drain_s": required_drain_s(sc)})


@pytest.mark.parametrize("mode", ["conversation", "inbox"])
def test_a_logic_node_crash_loses_nothing_and_shows_nothing_twice(mode: str) -> None:
    world = World(_crash(mode))
    world.run()
    s = model.collect(world).summary
    assert s["crash_pending_lost"] > 0  # the crash did take pushes with it
    assert (s["lost"], s["duplicates"], s["order_violations_group"]) == (0, 0, 0)
    if mode == "inbox":
        assert world.store.inboxes is not None
        assert max(c.receiver.inbox_cursor for c in world.clients) > 0
    else:
        assert world.store.inboxes is None


def _skewed_lossy(mode: str, skew_ms: float) -> Scenario:
    # Two nodes, node 1's clock 20 s fast; a downlink loss burst from 5 to 20 s with no
    # pending-ACK retransmission, so a lost push is repaired by sync alone, and sends
    # continue to 30 s so every user's later receipts start syncs after the burst.
    sc = Scenario.load(
        {
            "duration_s": 30.0,
            "workload.users": 20,
            "workload.send_rate_per_user": 1.0,
            "workload.group_share": 0.0,
            "server.nodes": 2,
            "network.model": "datagram",
            "reliability.downlink_ack": False,
            "reliability.sync_cursor": mode,
            "faults": [
                {"kind": "clock_skew", "at_s": 0.0, "skew_ms": skew_ms, "node": 1},
                {
                    "kind": "loss_burst",
                    "at_s": 5.0,
                    "down_s": 15.0,
                    "uplink_loss": 0.0,
                    "downlink_loss": 0.3,
                },
            ],
        }
    )
    return sc.with_overrides({"drain_s": required_drain_s(sc)})


def test_clock_skew_loses_messages_below_the_cursor_in_conversation_sync_but_none_in_inbox():
    # Theory: a 1:1 reply stamped by the slow node lands below a timestamp cursor that
    # already passed the fast node's stamp and no page ever carries it; its lost push is
    # then never repaired. An inbox seq is handed out at store time, so the reply lands
    # above every inbox cursor cut before it: inbox sync repairs every lost push.
    skewed = run(_skewed_lossy("conversation", 20_000.0)).summary
    assert skewed["stored_order_inversions"] > 0  # the skew did act
    assert skewed["lost"] > 0  # ... and this run has messages in the hole
    # the control: the same losses without skew are all repaired by sync
    assert run(_skewed_lossy("conversation", 0.0)).summary["lost"] == 0
    inbox = run(_skewed_lossy("inbox", 20_000.0)).summary
    assert inbox["packets_lost_down"] > 0
    assert (inbox["lost"], inbox["duplicates"]) == (0, 0)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("multi-device", {"workload.users": 200, "workload.group_size": 40}),
        ("admin-broadcast", {"workload.users": 200}),
        ("hybrid", {"workload.users": 200}),
    ],
)
def test_devices_rest_senders_and_pollers_deliver_as_with_conversation_sync(name, overrides):
    # the workload comes from its own random streams, so both modes owe the same
    # deliveries; in both, nothing reachable is lost and nothing is shown twice
    base = {**overrides, "duration_s": 25.0}
    conv = run(Scenario.load(name, base)).summary
    inbox = run(Scenario.load(name, {**base, **INBOX})).summary
    assert conv["lost_while_reachable"] == 0 and conv["duplicates"] == 0
    assert inbox["deliveries_expected"] == conv["deliveries_expected"]
    assert (inbox["lost_while_reachable"], inbox["duplicates"]) == (0, 0)
    assert inbox["order_violations_group"] == 0


def test_inbox_runs_are_reproducible_bit_for_bit():
    sc = _crash("inbox")
    first, second = run(sc), run(sc)
    for frame in ("messages", "trace", "requests"):
        pd.testing.assert_frame_equal(getattr(first, frame), getattr(second, frame))


def test_live_rooms_do_not_read_the_sync_path_so_the_mode_leaves_them_as_they_are():
    # viewers read the room's recent buffer, never a sync page: every live_* figure is
    # the same in both modes (the room's draws come from its own streams)
    base = {"workload.users": 200, "duration_s": 15.0}
    conv = run(Scenario.load("live", base)).summary
    inbox = run(Scenario.load("live", {**base, **INBOX})).summary
    live = [k for k in conv if k.startswith("live_")]
    assert conv["live_deliveries"] > 0
    assert {k: inbox[k] for k in live} == {k: conv[k] for k in live}

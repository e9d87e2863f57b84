"""The column-buffer recorder builds exactly the frames the old per-message-object one did.

Each scenario runs once with a :class:`~tests.sim.records_reference.TeeRecorder` in the
world: every call the simulator makes goes to the new recorder and to a frozen copy of
the old one, and the trace, messages and requests frames of both must be equal, values
and dtypes (``assert_frame_equal`` with exact checks). The scenarios are small and
chosen so that every column takes more than its default value somewhere: push, long
poll with loss and a server crash, push with churn, loss, app restarts and a partition,
short poll, several devices with offline push, groups whose store fails for a while,
REST calls refused by the rate limit and an admin broadcast, screening that replaces
content on a plaintext channel an attacker alters. Calls no scenario makes today
(recipients out of order or listed twice, more rows than one batch) are fed by hand.
"""

from __future__ import annotations

import pandas as pd
import pytest

import immodel.sim.world as world_module
from immodel.protocol.messages import Message
from immodel.scenario import Scenario
from immodel.sim.records import Recorder
from immodel.sim.world import World
from tests.sim.records_reference import TeeRecorder

SMALL = {"workload.users": 60, "duration_s": 20.0, "drain_s": 20.0}

SCENARIOS = {
    "push": ("baseline", {**SMALL, "workload.send_rate_per_user": 0.2}),
    "long_poll_loss_crash": (
        "long-poll",
        {
            **SMALL,
            "workload.send_rate_per_user": 0.2,
            "network.uplink_loss": 0.05,
            "network.downlink_loss": 0.05,
            "faults": [{"kind": "server_crash", "at_s": 8.0, "down_s": 4.0}],
        },
    ),
    "push_churn_loss_restart": (
        "baseline",
        {
            **SMALL,
            "workload.send_rate_per_user": 0.3,
            "workload.mean_online_s": 15.0,
            "workload.mean_offline_s": 10.0,
            "network.uplink_loss": 0.1,
            "network.downlink_loss": 0.1,
            "faults": [
                {"kind": "client_crash", "at_s": 6.0, "share": 0.5, "keep_local_state": False},
                {"kind": "partition", "at_s": 10.0, "down_s": 6.0, "share": 0.3},
            ],
        },
    ),
    "short_poll": ("short-poll", {**SMALL, "workload.send_rate_per_user": 0.2}),
    "multi_device_offline_push": (
        "multi-device",
        {
            "workload.users": 80,
            "workload.groups": 2,
            "workload.group_size": 10,
            "workload.send_rate_per_user": 0.05,
            "workload.mean_online_s": 20.0,
            "workload.mean_offline_s": 20.0,
            "duration_s": 40.0,
            "drain_s": 40.0,
        },
    ),
    "groups_store_failure": (
        "crash",
        {
            **SMALL,
            "workload.send_rate_per_user": 0.2,
            "workload.group_share": 0.5,
            "workload.groups": 3,
            "workload.group_size": 12,
            "faults": [
                {"kind": "server_crash", "at_s": 6.0, "down_s": 3.0},
                {"kind": "store_failure", "at_s": 10.0, "down_s": 30.0, "prob": 1.0, "node": 0},
            ],
        },
    ),
    "rest_admin_broadcast": (
        "admin-broadcast",
        {
            "workload.users": 50,
            "workload.send_rate_per_user": 0.1,
            "workload.rest_rate_per_s": 20.0,
            "server.rest_max_calls_per_s": 3,
            "workload.rest_broadcasts": [5.0],
            "duration_s": 15.0,
            "drain_s": 20.0,
        },
    ),
    "screening_replaced_tampered": (
        "baseline",
        {
            **SMALL,
            "workload.send_rate_per_user": 0.3,
            "server.screening_enabled": True,
            "server.screening_block_prob": 0.3,
            "server.screening_policy": "replace",
            "security.channel": "plaintext",
            "security.tamper_prob": 0.1,
        },
    ),
}


def _tee_run(monkeypatch, name: str) -> TeeRecorder:
    base, overrides = SCENARIOS[name]
    monkeypatch.setattr(world_module, "Recorder", TeeRecorder)
    world = World(Scenario.load(base, overrides))
    world.run()
    assert isinstance(world.rec, TeeRecorder)
    return world.rec


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_frames_equal_the_old_recorders_values_and_dtypes(monkeypatch, name):
    rec = _tee_run(monkeypatch, name)
    old_trace, old_messages, old_requests = rec.old_frames()
    assert len(old_messages) > 0 and (old_trace["event"] == "deliver").any()
    pd.testing.assert_frame_equal(rec.trace_frame(), old_trace, check_exact=True)
    pd.testing.assert_frame_equal(rec.messages_frame(), old_messages, check_exact=True)
    pd.testing.assert_frame_equal(rec.requests_frame(), old_requests, check_exact=True)
    assert EXERCISED[name](old_messages, old_requests)


# What each scenario is there for: columns that take non-default values in it (so the
# equality above is not between two frames of defaults if a key's default changes).
EXERCISED = {
    "push": lambda m, r: (m["first_via"] == "push").all() and (r["kind"] == "ack").any(),
    "long_poll_loss_crash": lambda m, r: (
        (m["first_via"] == "poll").any() and (m["attempts"] > 1).any() and (r["messages"] > 0).any()
    ),
    "push_churn_loss_restart": lambda m, r: (
        (m["repaired_by"] == "offline_queue").any()
        and m["t_offline_push"].notna().any()
        and not m["online_at_store"].all()
        and (r["kind"] == "login").any()
    ),
    "short_poll": lambda m, r: (m["repaired_by"] == "sync_receipt").any(),
    "multi_device_offline_push": lambda m, r: (
        m["t_offline_push"].notna().any()
        and set(m["device"]) == {"phone", "web"}
        and (m["first_via"] == "sync").any()
    ),
    "groups_store_failure": lambda m, r: (
        m["is_group"].any() and (m["failure_reason"] == "store_failed").any()
    ),
    "rest_admin_broadcast": lambda m, r: (
        (m["origin"] == "rest").any()
        and (m["conversation"] == "broadcast").any()
        and (r["kind"] == "rest_refused").any()
    ),
    "screening_replaced_tampered": lambda m, r: (
        (m["screening"] == "replaced").any() and m["altered"].any()
    ),
}


def _fed_by_hand() -> TeeRecorder:
    """Calls no scenario makes today: recipients out of order and one listed twice, a copy
    shown to a user the message was not sent to, a request kind outside the categories, a
    request larger than 32 bits can count."""
    rec = TeeRecorder()
    rec.recipient_kind = ["push"] * 8
    one = Message("0-1", 0, "d0-5", False, 10)
    group = Message("0-2", 0, "g0", True, 10)
    rec.sent(1.0, one, (5,))
    rec.sent(1.5, group, (7, 3, 3, 6))
    rec.stored(2.0, group, 1, {7: True, 3: False, 6: True})
    rec.set_screening(group.msg_id, "replaced")
    rec.stored(2.5, group, 1, {7: False, 3: True, 6: False})  # a second copy stored
    for user, via, repair, altered in ((3, "poll", "retransmit", True), (3, "push", "", False)):
        rec.shown(3.0, group, 1, user, via, repair, altered)
    rec.shown(3.1, group, 1, 4, "push")  # not a recipient: a trace row, no messages row
    rec.shown(3.2, one, 9, 5, "sync", "sync_gap")
    # a 1:1 copy shown before its store is recorded, then as stored, with another key,
    # and to someone else: the trace rows the columns cannot fill in stay whole
    third = Message("0-3", 0, "d0-6", False, 10)
    rec.sent(1.6, third, (6,))
    rec.shown(1.7, third, 4, 6, "push")
    rec.stored(2.1, third, 4, {6: True})
    rec.shown(2.2, third, 4, 6, "push")
    rec.shown(2.3, third, 5, 6, "sync")
    rec.shown(2.4, third, 4, 2, "push")
    rec.offline_push(group.msg_id, 6, 4.0)
    rec.offline_push(group.msg_id, 6, 5.0)  # the first notification counts
    # rows added after the first notification (the column exists from then on)
    rec.sent(5.5, Message("0-4", 0, "g0", True, 10), (1, 2))
    rec.offline_push("0-4", 2, 5.6)
    rec.sent(5.7, Message("0-5", 0, "d0-1", False, 10), (1,))
    rec.set_attempts(one.msg_id, 3)
    rec.outcome(one.msg_id, 6.0, "timeout")
    rec.outcome(group.msg_id, 6.5)
    rec.set_request_messages(rec.request(1.0, 0, "poll", 0, 40), 2)
    rec.request(1.1, 0, "heartbeat", 0, 8)
    # more rows than one batch (records._BATCH_ROWS): rows already moved into the buffers
    # and rows still waiting are both updated and both built
    rows = [rec.request(2.0 + i, i % 8, "sync", 0, 50 + i) for i in range(5000)]
    rec.set_request_messages(rows[3], 7)
    rec.set_request_messages(rows[-1], 9)
    rec.request(9.0, 1, "send", 1, 2**40)  # bytes past 32 bits: the column widens
    for i in range(5000):
        rec.shown(7.0 + i, one, 9, 5, "push", "retransmit")
    return rec


# the old builder warns that pandas will refuse a kind outside the categories; ours does not
@pytest.mark.filterwarnings("ignore:Constructing a Categorical")
def test_repeated_unordered_and_unknown_inputs_give_the_old_frames():
    rec = _fed_by_hand()
    assert rec.recipients("0-2") == (7, 3, 3, 6) and rec.n_recipients("0-2") == 4
    for new, old in zip(
        (rec.trace_frame(), rec.messages_frame(), rec.requests_frame()),
        rec.old_frames(),
        strict=True,
    ):
        pd.testing.assert_frame_equal(new, old, check_exact=True)
    requests = rec.requests_frame()
    assert requests["kind"].isna().tolist()[:3] == [False, True, False]
    assert rec.req_kind[:3] == ["poll", "heartbeat", "sync"]
    assert requests["messages"].iloc[[0, 5, 5001]].tolist() == [2, 7, 9]
    assert requests["bytes"].iloc[-1] == 2**40 and requests["bytes"].dtype == "int64"


def test_an_empty_recorder_gives_the_old_empty_frames():
    rec = TeeRecorder()
    for new, old in zip(
        (rec.trace_frame(), rec.messages_frame(), rec.requests_frame()),
        rec.old_frames(),
        strict=True,
    ):
        pd.testing.assert_frame_equal(new, old, check_exact=True)


def test_a_message_id_recorded_twice_is_refused():
    rec = Recorder()
    msg = Message("0-1", 0, "d0-1", False)
    rec.sent(0.0, msg, (1,))
    with pytest.raises(ValueError, match="0-1"):
        rec.sent(1.0, msg, (1,))


def _buffer_sizes(column: pd.Series) -> list:
    """The sizes of the Arrow buffers behind a string column (None: no such buffer)."""
    chunks = column.array.__arrow_array__().chunks  # the ChunkedArray itself
    return [[b.size if b is not None else None for b in c.buffers()] for c in chunks]


def test_string_columns_are_laid_out_as_columns_built_from_lists():
    # The builders take the rows from an Arrow array of the distinct strings; the result
    # must not differ from a column built from the list of strings even where equality
    # does not look: one chunk, no validity bitmap, the same offsets and data buffers.
    rec = _fed_by_hand()
    for frame in (rec.trace_frame(), rec.messages_frame(), rec.requests_frame()):
        for name in frame.columns:
            column = frame[name]
            if isinstance(column.dtype, pd.StringDtype):
                from_list = pd.Series(column.tolist())
                assert column.dtype == from_list.dtype
                assert _buffer_sizes(column) == _buffer_sizes(from_list), name

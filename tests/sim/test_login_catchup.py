"""Catch-up at login crosses the network once with server.login_catchup = "one_transfer":
either the offline queue or the reconnect sync page carries each message, never both."""

from __future__ import annotations

import functools

import pytest

from immodel import Scenario, run
from immodel.protocol.messages import Message, Stored, SyncRequest
from immodel.protocol.server import MessageStore, ServerNode, login_pushes_queue


def _backlog_then_logins(catchup: str, **overrides) -> Scenario:
    """Half the users are offline while the others write to one group; every notification
    (constant 5 s, never lost) brings its device back after the sending has ended, so at
    each login the backlog is fixed and nothing else is in flight."""
    values = {
        "workload.users": 40,
        "workload.group_share": 1.0,
        "workload.groups": 1,
        "workload.group_size": 40,
        "workload.online_fraction": 0.5,
        "workload.send_rate_per_user": 0.5,
        "workload.push_open_prob": 1.0,
        "workload.push_open_delay_s": 1.0,
        "server.offline_push_ms": 5000.0,
        "server.offline_push_loss": 0.0,
        "server.offline_push_collapse": True,
        "server.login_catchup": catchup,
        "network.latency_ms": 40.0,
        "duration_s": 2.0,
        "drain_s": 40.0,
    }
    values.update(overrides)
    return Scenario.load("baseline", values)


@functools.cache
def _run(catchup: str, kind: str = "push"):
    """One run per (catch-up, transport), shared by the tests that read it."""
    return run(_backlog_then_logins(catchup, **{"transport.kind": kind}))


def _catchup_items(r) -> tuple[int, int]:
    """(backlog pairs, messages the returning devices' sync pages carried)."""
    m = r.messages[r.messages["stored"]]
    returning = set(m.loc[~m["online_at_store"], "recipient"])
    backlog = int((~m["online_at_store"]).sum())
    req = r.requests
    sync = req[(req["kind"].astype(str) == "sync") & req["user"].isin(returning)]
    return backlog, int(sync["messages"].sum())


@pytest.mark.parametrize("kind", ["push", "long_poll"])
def test_one_transfer_carries_each_backlog_message_once(kind):
    r = _run("one_transfer", kind)
    s = r.summary
    backlog, synced = _catchup_items(r)
    assert backlog > 20
    assert s["login_backlog"] == backlog  # every offline pair waited in a queue
    assert s["login_queue_pushed"] == 0  # … which the login left to the sync page
    assert synced == backlog  # the page carried each exactly once
    assert s["lost"] == 0 and s["duplicates"] == 0 and s["order_violations"] == 0


def test_queue_and_sync_carries_the_backlog_twice():
    r = _run("queue_and_sync")
    s = r.summary
    backlog, synced = _catchup_items(r)
    assert s["login_backlog"] == backlog > 20
    assert s["login_queue_pushed"] == backlog  # pushed from the queue …
    assert synced == backlog  # … and carried again by the reconnect sync page
    assert s["duplicates"] == 0  # the app's dedup hides the second copy


def test_catch_up_bytes_at_login_are_the_backlogs_once():
    one, two = _run("one_transfer"), _run("queue_and_sync")
    backlog, _ = _catchup_items(one)
    copy = one.scenario["workload.payload_bytes"] + one.scenario["network.header_bytes"]
    # The same messages and the same sync pages in both runs; queue_and_sync adds one
    # pushed copy of each backlog message (payload + framing), and the transport's
    # acknowledgements of the ACKs those copies cause.
    assert two.summary["messages_sent"] == one.summary["messages_sent"]
    saved = two.summary["bytes_down"] - one.summary["bytes_down"]
    assert saved >= backlog * copy
    assert two.summary["bytes_up"] > one.summary["bytes_up"]


def test_without_a_reconnect_sync_the_queue_is_the_carrier():
    r = run(_backlog_then_logins("one_transfer", **{"reliability.sync_on_reconnect": False}))
    s = r.summary
    assert s["login_queue_pushed"] == s["login_backlog"] > 20
    assert s["lost"] == 0


def test_the_rule_pushes_the_queue_unless_one_transfer_has_a_sync_to_rely_on():
    assert login_pushes_queue(one_transfer=False, sync_follows=True)
    assert login_pushes_queue(one_transfer=True, sync_follows=False)
    assert not login_pushes_queue(one_transfer=True, sync_follows=True)


def test_a_one_transfer_login_leaves_the_backlog_to_the_page_that_carries_it_once():
    store = MessageStore()
    node = ServerNode(0, store)
    store.join("bob", "g")
    for i in range(3):
        item, _ = node.commit(Message(f"a-{i}", "alice", "g", True), now=float(i))
        node.route(item, "bob", None, now=float(i))  # bob is offline: the queue keeps it
    assert len(store.offline["bob"]) == 3
    pushed = node.login("bob", "push", 5.0, one_transfer=True, sync_follows=True)
    assert pushed == []
    assert "bob" not in store.offline  # the queue is consumed, not kept for later
    page = store.answer_sync(SyncRequest("bob", (), 100))
    assert [i.msg_id for i in page.items] == ["a-0", "a-1", "a-2"]
    assert all(isinstance(i, Stored) for i in page.items)
    again = ServerNode(1, store)
    for i in range(3):
        item, _ = again.commit(Message(f"b-{i}", "alice", "g", True), now=10.0 + i)
        again.route(item, "bob", None, now=10.0 + i)
    pushed = again.login("bob", "push", 20.0)
    assert [d.item.msg_id for d in pushed] == ["b-0", "b-1", "b-2"]

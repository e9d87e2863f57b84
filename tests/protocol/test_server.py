"""ServerNode and MessageStore: dedup, store, order, route, login/disconnect, crash."""

from __future__ import annotations

import pytest

from immodel.protocol import (
    DedupWindow,
    Deliver,
    Message,
    MessageStore,
    PendingAcks,
    SendReply,
    ServerNode,
    Stored,
    SyncRequest,
    Verdict,
)

ONE = Message("A-1", "A", "A|B", False)
TWO = Message("A-2", "A", "A|B", False)
GROUP = Message("A-3", "A", "G", True)


def node(store: MessageStore | None = None, **kw) -> ServerNode:
    return ServerNode(0, store if store is not None else MessageStore(), **kw)


def send(n: ServerNode, message: Message, now: float) -> tuple[Stored, SendReply]:
    verdict, _ = n.begin_send(message, now)
    assert verdict is Verdict.NEW
    return n.commit(message, now)


def test_commit_stores_and_replies_success_with_the_order_key() -> None:
    n = node()
    item, reply = send(n, ONE, 1.5)
    assert item == Stored(ONE, 1500)
    assert reply == SendReply("A-1", True, 1500)
    assert list(n.store.timelines["A|B"].items) == [item]
    assert n.store.stored_copies == {"A-1": 1}


def test_retry_inside_window_gets_the_original_reply_and_nothing_is_stored_twice() -> None:
    n = node()
    _, reply = send(n, ONE, 1.0)
    assert n.begin_send(ONE, 30.0) == (Verdict.DONE, reply)
    assert n.store.stored_copies == {"A-1": 1}


def test_copy_arriving_during_processing_is_dropped_as_in_progress() -> None:
    n = node()
    n.begin_send(ONE, 0.0)
    assert n.begin_send(ONE, 0.1) == (Verdict.IN_PROGRESS, None)


def test_group_seq_is_shared_by_all_nodes_through_the_store() -> None:
    store = MessageStore()
    a, b = node(store), ServerNode(1, store)
    first, _ = send(a, GROUP, 0.0)
    second, _ = send(b, Message("B-1", "B", "G", True), 0.0)
    assert (first.order_key, second.order_key) == (1, 2)
    assert store.group_sequencer.last_seq("G") == 2


def test_one_to_one_key_is_the_nodes_clock_with_its_offset() -> None:
    n = node(clock_offset_s=-0.25)
    item, _ = send(n, ONE, 10.0)
    assert item.order_key == 9750


def test_one_to_one_keys_are_monotonic_per_conversation_not_across_conversations() -> None:
    # Two conversations stamped in the same millisecond on one node both get it; only a
    # second message of the same conversation in that millisecond moves to the next one.
    n = node()
    other = Message("C-1", "C", "C|D", False)
    assert send(n, ONE, 10.0)[0].order_key == 10_000
    assert send(n, other, 10.0)[0].order_key == 10_000
    assert send(n, TWO, 10.0)[0].order_key == 10_001


def test_rejection_is_final_remembered_and_stores_nothing() -> None:
    n = node()
    n.begin_send(ONE, 0.0)
    reply = n.reject(ONE, "blacklisted", 0.0)
    assert reply == SendReply("A-1", False, None, "blacklisted")
    assert n.begin_send(ONE, 5.0) == (Verdict.DONE, reply)
    assert n.store.stored_copies == {}


def test_store_failure_is_retryable_and_the_retry_is_processed_anew() -> None:
    n = node()
    n.begin_send(ONE, 0.0)
    reply = n.store_failed(ONE)
    assert (reply.accepted, reply.retryable, reply.reason) == (False, True, "store_failed")
    assert n.begin_send(ONE, 5.0) == (Verdict.NEW, None)


def test_route_to_a_push_recipient_goes_through_the_pending_ack_queue() -> None:
    n = node(pending=PendingAcks(ack_timeout_s=5.0))
    item, _ = send(n, ONE, 0.0)
    assert n.route(item, "B", "push", 0.0) == [Deliver("B", item, 1)]
    assert n.pending.next_deadline() == 5.0


def test_route_to_a_polling_recipient_fills_its_outbox() -> None:
    n = node()
    item, _ = send(n, ONE, 0.0)
    assert n.route(item, "B", "poll", 0.0) == []
    assert n.pending.take_for_poll("B", 10) == [Deliver("B", item, 1)]


def test_route_to_an_offline_recipient_keeps_it_in_the_durable_queue() -> None:
    n = node()
    item, _ = send(n, ONE, 0.0)
    assert n.route(item, "B", None, 0.0) == []
    assert n.store.offline == {"B": [item]}
    assert len(n.pending) == 0
    # write diffusion is the default: an offline member gets its own group copy too
    group_item, _ = send(n, GROUP, 0.0)
    n.route(group_item, "B", None, 0.0)
    assert n.store.offline == {"B": [item, group_item]}


@pytest.mark.parametrize("mode", ["push", "poll"])
def test_login_moves_the_offline_queue_to_the_downlink(mode: str) -> None:
    n = node()
    first, _ = send(n, ONE, 0.0)
    second, _ = send(n, TWO, 0.0)
    n.route(first, "B", None, 0.0)
    n.route(second, "B", None, 0.0)
    out = n.login("B", mode, 10.0)
    assert "B" not in n.store.offline
    assert n.pending.waiting("B") == 2
    assert [d.item for d in out] == ([first, second] if mode == "push" else [])


@pytest.mark.parametrize(
    "keywords", [{"one_transfer": True}, {"sync_follows": True}], ids=["one_transfer", "sync"]
)
def test_a_login_pushes_the_queue_unless_one_transfer_and_a_following_sync_are_both_named(
    keywords: dict[str, bool],
) -> None:
    # Each keyword defaults to false: one transfer asked for with no sync said to follow
    # leaves the queue the only carrier, and a sync that follows without one transfer is
    # today's double transfer; either way the backlog is pushed.
    n = node()
    item, _ = send(n, ONE, 0.0)
    n.route(item, "B", None, 0.0)
    assert [d.item for d in n.login("B", "push", 10.0, **keywords)] == [item]


def test_a_one_transfer_login_that_a_sync_follows_consumes_the_queue_without_pushing() -> None:
    # The reconnect sync's page carries the backlog: the queue is dropped, not kept.
    n = node()
    item, _ = send(n, ONE, 0.0)
    n.route(item, "B", None, 0.0)
    assert n.login("B", "push", 10.0, one_transfer=True, sync_follows=True) == []
    assert n.store.offline == {}
    assert n.pending.waiting("B") == 0


def test_login_with_an_empty_offline_queue_sends_nothing() -> None:
    assert node().login("B", "push", 0.0) == []


def test_clean_disconnect_moves_unacked_to_offline() -> None:
    n = node()
    first, _ = send(n, ONE, 0.0)
    second, _ = send(n, TWO, 0.0)
    n.route(first, "B", "push", 0.0)
    n.route(second, "B", "push", 0.0)
    n.pending.handle_ack("B", ["A-1"])
    n.disconnect("B")
    assert n.store.offline == {"B": [second]}
    assert n.pending.handle_timeout(100.0) == []
    assert [d.item for d in n.login("B", "push", 200.0)] == [second]


def test_clean_disconnect_with_everything_acked_leaves_no_offline_queue() -> None:
    n = node()
    n.disconnect("B")
    assert n.store.offline == {}


def test_crash_empties_pending_but_keeps_store() -> None:
    n = node()
    item, _ = send(n, ONE, 0.0)
    n.route(item, "B", "push", 0.0)
    n.route(item, "C", None, 0.0)
    assert n.crash() == 1
    assert len(n.pending) == 0
    assert n.pending.handle_timeout(100.0) == []
    assert list(n.store.timelines["A|B"].items) == [item]
    assert n.store.offline == {"C": [item]}  # the offline queue is durable too


def test_crash_with_a_volatile_dedup_window_stores_a_retry_twice() -> None:
    n = node()
    send(n, ONE, 0.0)
    n.crash()
    assert n.begin_send(ONE, 5.0) == (Verdict.NEW, None)
    n.commit(ONE, 5.0)
    assert n.store.stored_copies["A-1"] == 2


def test_crash_with_a_durable_dedup_window_still_answers_a_retry_with_the_original() -> None:
    n = node(dedup_durable=True)
    _, reply = send(n, ONE, 0.0)
    n.crash()
    assert n.begin_send(ONE, 5.0) == (Verdict.DONE, reply)


def test_crash_forgets_in_progress_sends_even_with_a_durable_window() -> None:
    # the processing died with the node: nobody is left to answer, so a retry is NEW
    n = node(dedup_durable=True)
    n.begin_send(ONE, 0.0)
    n.crash()
    assert n.begin_send(ONE, 5.0) == (Verdict.NEW, None)


def test_a_node_uses_the_dedup_window_and_queue_it_is_given() -> None:
    window, pending = DedupWindow(window_s=1.0), PendingAcks(ack_timeout_s=2.0)
    n = node(dedup=window, pending=pending)
    assert (n.dedup, n.pending) == (window, pending)


def test_store_sync_answer_covers_only_the_users_conversations() -> None:
    store = MessageStore()
    store.join("B", "A|B")
    store.join("C", "G")
    n = node(store)
    item, _ = send(n, ONE, 1.0)
    send(n, GROUP, 1.0)
    assert set(store.conversations_of("B")) == {"A|B"}
    assert list(store.conversations_of("nobody")) == []
    response = store.answer_sync(SyncRequest("B", (), 10))
    assert response.items == (item,)
    assert response.complete


def test_joining_a_conversation_again_lists_it_once() -> None:
    # The simulator joins the members of a conversation with every message sent in it:
    # a conversation joined twice must not be looked through twice by a sync.
    store = MessageStore()
    store.join("B", "A|B")
    store.join("B", "A|B")
    assert list(store.conversations_of("B")) == ["A|B"]
    item, _ = send(node(store), ONE, 1.0)
    response = store.answer_sync(SyncRequest("B", (), 10))
    assert (response.items, response.scanned) == ((item,), 1)


def test_a_failed_store_replies_for_that_message_and_burns_a_seq_only_when_asked() -> None:
    n = node()
    n.begin_send(GROUP, 0.0)
    assert n.store_failed(GROUP).msg_id == "A-3"  # the sender matches the reply by id
    assert n.store.group_sequencer.last_seq("G") == 0  # default: nothing burnt
    n.begin_send(GROUP, 1.0)
    n.store_failed(GROUP, burn_seq=True)
    assert n.store.group_sequencer.last_seq("G") == 1
    assert n.store.timelines["G"].burnt == [1]  # on the message's own group
    n.begin_send(ONE, 2.0)
    n.store_failed(ONE, burn_seq=True)  # a 1:1 message has no seq to burn
    assert "A|B" not in n.store.timelines


def test_read_diffusion_disconnect_moves_only_one_to_one_items_offline() -> None:
    # with member_copies off a group message lives on the group timeline alone: an
    # unacknowledged group copy is not queued per member, the next sync reads it there
    n = node(member_copies=False)
    one, _ = send(n, ONE, 0.0)
    group, _ = send(n, GROUP, 0.0)
    n.route(one, "B", "push", 0.0)
    n.route(group, "B", "push", 0.0)
    n.disconnect("B")
    assert n.store.offline == {"B": [one]}
    only_group = node(member_copies=False)
    g, _ = send(only_group, GROUP, 0.0)
    only_group.route(g, "B", "push", 0.0)
    only_group.disconnect("B")
    assert only_group.store.offline == {}


def test_read_diffusion_still_queues_an_offline_one_to_one_message() -> None:
    # only a group message lives on its timeline alone; a 1:1 copy for an offline
    # recipient goes to the durable offline queue whatever the diffusion
    n = node(member_copies=False)
    one, _ = send(n, ONE, 0.0)
    group, _ = send(n, GROUP, 0.0)
    n.route(one, "B", None, 0.0)
    n.route(group, "B", None, 0.0)
    assert n.store.offline == {"B": [one]}

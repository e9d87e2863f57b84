"""Gap wait and burnt seqs in the receiver and the store's sync pages.

A group gap seen in a pushed copy starts a wait of ``gap_wait_s`` (a deadline exposed by
``next_deadline``) instead of a sync; the wait is cancelled when the gap fills, and a sync
starts only if the gap is still open at the deadline. A seq burnt by a failed write is
listed in sync pages, and the receiver steps over it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from immodel.protocol import (
    Message,
    Receiver,
    Show,
    StartSync,
    Stored,
    SyncRequest,
    SyncResponse,
)
from immodel.protocol.server import MessageStore


def grp(seq: int, sender: str = "A") -> Stored:
    return Stored(Message(f"{sender}-g{seq}", sender, "G", True), seq)


def shows(actions: list[Any]) -> list[str]:
    return [a.item.msg_id for a in actions if isinstance(a, Show)]


def syncs(actions: list[Any]) -> list[SyncRequest]:
    return [a.request for a in actions if isinstance(a, StartSync)]


def test_without_a_wait_a_gap_syncs_at_once() -> None:
    b = Receiver("B")
    assert len(syncs(b.handle_push(grp(2), 1.0))) == 1
    assert b.next_deadline() == 1.0 + b.sync_timeout_s
    page = b.handle_sync_response(SyncResponse("B", (grp(1), grp(2)), True), 1.1)
    shown = [(a.item.msg_id, a.via, a.trigger) for a in page if isinstance(a, Show)]
    assert shown == [("A-g1", "sync", "gap"), ("A-g2", "push", "")]  # a gap repair


def test_a_gap_left_open_after_another_one_fills_keeps_its_wait() -> None:
    b = Receiver("B", gap_wait_s=0.05)
    b.handle_push(grp(2), 1.0)  # gap at 1: the wait ends at 1.05
    b.handle_push(grp(4), 1.01)  # another gap, at 3
    assert shows(b.handle_push(grp(1), 1.02)) == ["A-g1", "A-g2"]
    assert b.next_deadline() == 1.05  # seq 3 is still missing
    assert len(syncs(b.handle_timeout(1.05))) == 1


def test_with_a_wait_a_gap_sets_a_deadline_instead_of_syncing() -> None:
    b = Receiver("B", gap_wait_s=0.05)
    actions = b.handle_push(grp(2), 1.0)
    assert syncs(actions) == [] and shows(actions) == []
    assert b.next_deadline() == 1.05
    assert not b.syncing


def test_a_gap_that_fills_within_the_wait_cancels_the_deadline_and_never_syncs() -> None:
    b = Receiver("B", gap_wait_s=0.05)
    b.handle_push(grp(2), 1.0)
    actions = b.handle_push(grp(1), 1.02)
    assert shows(actions) == ["A-g1", "A-g2"]  # in seq order
    assert b.next_deadline() is None
    assert b.handle_timeout(1.05) == []


def test_a_gap_still_open_at_the_deadline_syncs_with_the_gap_trigger() -> None:
    b = Receiver("B", gap_wait_s=0.05)
    b.handle_push(grp(2), 1.0)
    assert b.handle_timeout(1.049) == []  # not yet due
    requests = syncs(b.handle_timeout(1.05))
    assert len(requests) == 1 and requests[0].cursors == ()
    assert b.next_deadline() == 1.05 + b.sync_timeout_s  # the gap's deadline is spent
    page = b.handle_sync_response(SyncResponse("B", (grp(1), grp(2)), True), 1.1)
    # the missing seq comes by the gap sync, then the held copy is released
    shown = [(a.item.msg_id, a.via, a.trigger) for a in page if isinstance(a, Show)]
    assert shown == [("A-g1", "sync", "gap"), ("A-g2", "push", "")]


def test_a_second_gap_during_the_wait_keeps_the_first_deadline() -> None:
    b = Receiver("B", gap_wait_s=0.05)
    b.handle_push(grp(2), 1.0)
    b.handle_push(grp(4), 1.03)
    assert b.next_deadline() == 1.05


def test_the_gap_deadline_and_a_sync_timeout_give_the_earliest_deadline() -> None:
    b = Receiver("B", gap_wait_s=5.0, sync_timeout_s=1.0)
    b.request_sync(0.0, "reconnect")  # a sync in flight: repeated at 1.0
    b.handle_push(grp(2), 0.5)  # the gap asks at 5.5
    assert b.next_deadline() == 1.0


def test_a_disconnect_drops_the_gap_wait() -> None:
    b = Receiver("B", gap_wait_s=0.05)
    b.handle_push(grp(2), 1.0)
    b.disconnect()
    assert b.next_deadline() is None


def test_the_store_lists_a_burnt_seq_in_sync_pages_up_to_the_pages_last_item() -> None:
    store = MessageStore()
    store.join("B", "G")
    store.append(grp(store.group_sequencer.next_seq("G")))  # seq 1
    assert store.burn_seq("G") == 2
    store.append(grp(store.group_sequencer.next_seq("G")))  # seq 3
    assert store.burn_seq("G") == 4  # above every stored item: not listed yet
    page = store.answer_sync(SyncRequest("B", (), 100))
    assert [i.order_key for i in page.items] == [1, 3]
    assert page.burnt == (("G", 2),)
    cut = store.answer_sync(SyncRequest("B", (), 1))
    assert cut.burnt == () and not cut.complete  # the page stops at seq 1
    above = store.answer_sync(SyncRequest("B", (("G", 2),), 100))
    assert above.burnt == ()  # at or below the cursor: the reader is past it


def test_a_page_lists_the_burnt_seqs_of_every_group_it_reaches_and_no_other() -> None:
    # Groups G and H each hold seq 1, a burnt seq 2 and seq 3 (pages list G first).
    store = MessageStore()
    for group in ("G", "H"):
        store.join("B", group)
        for seq in (1, 2, 3):
            if seq == 2:
                store.burn_seq(group)
                continue
            store.group_sequencer.next_seq(group)
            store.append(Stored(Message(f"{group}{seq}", "A", group, True), seq))

    def page(limit: int):
        return store.answer_sync(SyncRequest("B", (), limit))

    assert page(100).burnt == (("G", 2), ("H", 2))  # both groups whole
    assert page(3).burnt == (("G", 2),)  # H cut after its seq 1: nothing of H burnt yet
    assert page(2).burnt == (("G", 2),)  # H not reached at all


def _gap_at_a_burnt_seq():
    """Group G holds seq 1, a burnt seq 2 and seq 3; B has shown 1, is pushed 3 and asks
    for the gap: the store, the receiver and its sync request."""
    store = MessageStore()
    store.join("B", "G")
    store.append(grp(store.group_sequencer.next_seq("G")))
    store.burn_seq("G")
    store.append(grp(store.group_sequencer.next_seq("G")))
    b = Receiver("B")
    b.handle_push(grp(1), 0.0)
    request = syncs(b.handle_push(grp(3), 0.1))[0]  # seq 2 is missing: a gap
    return store, b, request


def test_a_burnt_seq_in_a_page_releases_the_copies_held_behind_it() -> None:
    store, b, request = _gap_at_a_burnt_seq()
    assert b.held("G") == 1
    actions = b.handle_sync_response(store.answer_sync(request), 0.2)
    assert shows(actions) == ["A-g3"]
    assert b.cursor("G") == 3 and b.held("G") == 0
    assert syncs(actions) == []  # no gap left, no further sync


def test_without_the_burnt_list_the_same_gap_would_never_close() -> None:
    # The page without its burnt list: the receiver keeps asking (what the list prevents).
    store, b, request = _gap_at_a_burnt_seq()
    page = store.answer_sync(request)
    blind = type(page)(page.user, page.items, page.complete, page.covered, page.scanned)
    actions = b.handle_sync_response(blind, 0.2)
    assert b.held("G") == 1 and len(syncs(actions)) == 1


def test_a_burnt_seq_beyond_the_next_one_is_stepped_over_within_the_same_page() -> None:
    # G holds seq 1, a burnt seq 2 and seq 3; B has shown nothing and is pushed 3 only.
    # The page lists burnt seq 2 before its items, while B's cursor is still 0: the
    # receiver must remember seq 2 as closed until seq 1 arrives, so one page shows 1,
    # then 3, and leaves no gap to sync again for.
    store = MessageStore()
    store.join("B", "G")
    store.append(grp(store.group_sequencer.next_seq("G")))
    store.burn_seq("G")
    store.append(grp(store.group_sequencer.next_seq("G")))
    b = Receiver("B")
    request = syncs(b.handle_push(grp(3), 0.0))[0]
    page = store.answer_sync(request)
    assert page.burnt == (("G", 2),) and [i.order_key for i in page.items] == [1, 3]
    actions = b.handle_sync_response(page, 0.1)
    assert shows(actions) == ["A-g1", "A-g3"]
    assert b.cursor("G") == 3 and b.held("G") == 0
    assert syncs(actions) == []


# -- any arrival order, any burnt seqs --------------------------------------------------


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    burnt=st.lists(st.booleans(), min_size=1, max_size=12),
    order=st.randoms(use_true_random=False),
    wait_s=st.sampled_from([0.0, 0.05, 1.0]),
    lost=st.sets(st.integers(min_value=0, max_value=11)),
    limit=st.integers(min_value=1, max_value=4),
)
def test_any_arrival_order_with_burnt_seqs_ends_with_every_message_shown_once_in_order(
    burnt, order, wait_s, lost, limit
) -> None:
    # The store hands out seqs 1..n; the burnt ones carry no message. The stored copies
    # arrive pushed in any order (some never), time advances to every deadline, and each
    # sync is answered by the store at once.
    store = MessageStore()
    store.join("B", "G")
    items = []
    for is_burnt in burnt:
        if is_burnt:
            store.burn_seq("G")
        else:
            item = grp(store.group_sequencer.next_seq("G"))
            store.append(item)
            items.append(item)
    pushed = [it for i, it in enumerate(items) if i not in lost]
    order.shuffle(pushed)
    b = Receiver("B", gap_wait_s=wait_s, sync_limit=limit)
    shown: list[str] = []
    now = 0.0

    syncs = 0

    def act(actions: list[Any]) -> None:
        nonlocal syncs
        pending = list(actions)
        while pending:
            a = pending.pop(0)
            if isinstance(a, Show):
                shown.append(a.item.msg_id)
            elif isinstance(a, StartSync):
                syncs += 1
                # a gap that never closes syncs for ever: fail instead of hanging
                assert syncs <= 200, "the receiver keeps syncing on a gap that never closes"
                pending.extend(b.handle_sync_response(store.answer_sync(a.request), now))

    for item in pushed:
        now += 0.01
        act(b.handle_push(item, now))
    for _ in range(100):  # far more rounds than pages and waits can need
        deadline = b.next_deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        act(b.handle_timeout(now))
    # the last copies were lost and nothing came after them: a reconnect sync fetches them
    act(b.request_sync(now, "reconnect"))
    assert b.next_deadline() is None
    assert shown == [it.msg_id for it in items]  # each once, in seq order
    # the cursor is past every seq up to the last message (burnt ones included)
    assert b.cursor("G") == (items[-1].order_key if items else 0)

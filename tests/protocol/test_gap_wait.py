"""Gap wait and burnt seqs in the receiver and the store's sync pages.

A group gap seen in a pushed copy starts a wait of ``gap_wait_s`` (a deadline exposed by
``next_deadline``) instead of a sync; the wait is cancelled when the gap fills, and a sync
starts only if the gap is still open at the deadline. A seq burnt by a failed write is
listed in sync pages, and the receiver steps over it.
"""

from __future__ import annotations

from typing import Any

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


def test_a_burnt_seq_in_a_page_releases_the_copies_held_behind_it() -> None:
    store = MessageStore()
    store.join("B", "G")
    store.append(grp(store.group_sequencer.next_seq("G")))
    store.burn_seq("G")
    store.append(grp(store.group_sequencer.next_seq("G")))
    b = Receiver("B")
    b.handle_push(grp(1), 0.0)
    request = syncs(b.handle_push(grp(3), 0.1))[0]  # seq 2 is missing: a gap
    assert b.held("G") == 1
    actions = b.handle_sync_response(store.answer_sync(request), 0.2)
    assert shows(actions) == ["A-g3"]
    assert b.cursor("G") == 3 and b.held("G") == 0
    assert syncs(actions) == []  # no gap left, no further sync


def test_without_the_burnt_list_the_same_gap_would_never_close() -> None:
    # The page without its burnt list: the receiver keeps asking (what the list prevents).
    store = MessageStore()
    store.join("B", "G")
    store.append(grp(store.group_sequencer.next_seq("G")))
    store.burn_seq("G")
    store.append(grp(store.group_sequencer.next_seq("G")))
    b = Receiver("B")
    b.handle_push(grp(1), 0.0)
    request = syncs(b.handle_push(grp(3), 0.1))[0]
    page = store.answer_sync(request)
    blind = type(page)(page.user, page.items, page.complete, page.covered, page.scanned)
    actions = b.handle_sync_response(blind, 0.2)
    assert b.held("G") == 1 and len(syncs(actions)) == 1

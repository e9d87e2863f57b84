"""The store's per-user inboxes and answer_inbox_sync: every member gets every stored item
with the next seq of its inbox, a page is what follows one cursor, cut at a limit."""

from __future__ import annotations

import pytest

from immodel.protocol import (
    Inboxes,
    Message,
    MessageStore,
    Stored,
    SyncRequest,
    answer_inbox_sync,
)


def item(msg_id: str, key: int, conversation: str = "A|B", sender: str = "A") -> Stored:
    return Stored(Message(msg_id, sender, conversation, conversation.startswith("G")), key)


def inbox_request(cursor: int, limit: int = 100, held=(), user: str = "B") -> SyncRequest:
    return SyncRequest(user, (), limit, (), tuple(held), cursor)


def store_with(*items: Stored) -> MessageStore:
    store = MessageStore(inbox=True)
    for user, conv in (("A", "A|B"), ("B", "A|B"), ("B", "B|C"), ("C", "B|C")):
        store.join(user, conv)
    for user in ("A", "B", "C"):
        store.join(user, "G")
    for i in items:
        store.append(i)
    return store


def test_every_member_sender_included_gets_the_item_with_the_next_seq_of_its_inbox() -> None:
    store = store_with(item("a", 10), item("g1", 1, "G", "C"), item("c", 20, "B|C", "C"))
    inboxes = store.inboxes
    assert [e.msg_id for e in inboxes.entries("A")] == ["a", "g1"]
    assert [e.msg_id for e in inboxes.entries("B")] == ["a", "g1", "c"]
    assert [e.msg_id for e in inboxes.entries("C")] == ["g1", "c"]
    assert (inboxes.top("A"), inboxes.top("B"), inboxes.top("C"), inboxes.top("D")) == (2, 3, 2, 0)


def test_a_burnt_group_seq_is_a_marker_in_every_members_inbox() -> None:
    store = store_with(item("g1", 1, "G"))
    seq = store.burn_seq("G")
    assert seq == 1  # the store's sequencer hands out its own seqs; the item came with 1
    for user in ("A", "B", "C"):
        assert store.inboxes.entries(user)[-1] == ("G", seq)
    assert store.inboxes.entries("B")[0].msg_id == "g1"


def test_a_page_is_what_follows_the_cursor_in_store_order_not_key_order() -> None:
    # a 1:1 reply stamped by a slow node (key 50) is stored after key 100: the inbox keeps
    # store order, so a cursor that passed key 100 still reaches it
    store = store_with(item("fast", 100), item("slow", 50, sender="B"), item("next", 120))
    page = store.answer_sync(inbox_request(1))
    assert [i.msg_id for i in page.items] == ["slow", "next"]
    assert page.complete and page.inbox_top == 3 and page.scanned == 2


def test_a_page_is_cut_after_limit_items_and_says_so() -> None:
    store = store_with(*(item(f"m{k}", k) for k in range(1, 6)))
    page = store.answer_sync(inbox_request(0, limit=2))
    assert [i.msg_id for i in page.items] == ["m1", "m2"]
    assert not page.complete and page.inbox_top == 2
    page = store.answer_sync(inbox_request(page.inbox_top, limit=3))
    assert [i.msg_id for i in page.items] == ["m3", "m4", "m5"]
    assert page.complete and page.inbox_top == 5


def test_nothing_new_is_an_empty_complete_page_that_read_nothing() -> None:
    store = store_with(item("a", 1))
    page = store.answer_sync(inbox_request(1))
    assert (page.items, page.complete, page.scanned, page.inbox_top) == ((), True, 0, 1)
    page = store.answer_sync(inbox_request(0, user="nobody"))
    assert (page.items, page.complete, page.scanned, page.inbox_top) == ((), True, 0, 0)


def test_held_items_are_left_out_but_read_and_do_not_count_against_the_limit() -> None:
    store = store_with(item("a", 1), item("b", 2), item("c", 3), item("d", 4))
    page = store.answer_sync(inbox_request(0, limit=2, held=[("A|B", "a"), ("A|B", "c")]))
    assert [i.msg_id for i in page.items] == ["b", "d"]
    assert page.complete and page.scanned == 4 and page.inbox_top == 4


def test_a_held_group_item_is_named_by_its_seq_so_a_second_stored_copy_still_comes() -> None:
    # the same message stored twice (a dedup failure) has two seqs; the client holds the
    # copy with seq 1 only, and the page must carry seq 2 or the group would wait for it
    store = store_with(item("g", 1, "G", "C"), item("g", 2, "G", "C"))
    page = store.answer_sync(inbox_request(0, held=[("G", 1)]))
    assert [(i.msg_id, i.order_key) for i in page.items] == [("g", 2)]


def test_burnt_markers_go_to_burnt_and_count_as_read() -> None:
    store = store_with(item("g1", 1, "G"))
    store.group_sequencer.next_seq("G")  # seq 1 was handed out to g1
    burnt = store.burn_seq("G")
    store.append(item("g3", 3, "G"))
    page = store.answer_sync(inbox_request(0))
    assert burnt == 2
    assert [i.msg_id for i in page.items] == ["g1", "g3"]
    assert page.burnt == (("G", 2),) and page.scanned == 3


def test_a_store_without_inboxes_keeps_none_and_refuses_an_inbox_request() -> None:
    store = MessageStore()
    store.join("B", "A|B")
    store.append(item("a", 1))
    assert store.inboxes is None
    with pytest.raises(ValueError, match="without inboxes"):
        store.answer_sync(inbox_request(0))


def test_conversation_requests_to_an_inbox_store_are_answered_per_conversation() -> None:
    store = store_with(item("a", 10), item("c", 20, "B|C", "C"))
    page = store.answer_sync(SyncRequest("B", (("A|B", 10),), 100, (("A|B", "a"),)))
    assert [i.msg_id for i in page.items] == ["c"]
    assert page.inbox_top == -1 and page.scanned == 3  # A|B, B|C and G looked through


def test_joining_twice_appends_once() -> None:
    inboxes = Inboxes()
    inboxes.join("A", "A|B")
    inboxes.join("A", "A|B")
    inboxes.append(item("a", 1))
    assert inboxes.top("A") == 1


def test_answer_inbox_sync_on_a_plain_list() -> None:
    entries = [item("a", 1), ("G", 4), item("b", 2)]
    page = answer_inbox_sync(inbox_request(1), entries)
    assert [i.msg_id for i in page.items] == ["b"] and page.burnt == (("G", 4),)

"""A sync page never carries down again what the client already holds."""

from __future__ import annotations

from immodel.protocol import Message, MessageStore, Receiver, Show, StartSync, Stored


def stored(sender: str, n: int, key: int, conv: str = "A|B") -> Stored:
    return Stored(Message(f"{sender}-{n}", sender, conv, False, 100), key)


def only_sync(actions) -> StartSync:
    syncs = [a for a in actions if isinstance(a, StartSync)]
    assert len(syncs) == 1
    return syncs[0]


def test_a_pushed_copy_is_named_held_and_left_out_of_the_page() -> None:
    store = MessageStore()
    store.join("B", "A|B")
    first = stored("A", 1, 100)
    store.append(first)
    b = Receiver("B")
    request = only_sync(b.handle_push(first, 0.0)).request
    assert request.held == (("A|B", "A-1"),)
    page = store.answer_sync(request)
    assert page.items == () and page.covered == (("A|B", 100),)
    b.handle_sync_response(page, 0.1)
    assert b.cursor("A|B") == 100  # the cursor moved over what it held
    # … and the held copy now counts as merged at the cursor key, no longer as held
    again = b.request_sync(0.2)[0].request
    assert (again.held, again.merged_at_cursor) == ((), (("A|B", "A-1"),))


def test_a_lost_message_below_a_held_copy_comes_in_the_page_and_only_it() -> None:
    store = MessageStore()
    store.join("B", "A|B")
    lost, pushed = stored("A", 1, 100), stored("A", 2, 200)
    store.append(lost)
    store.append(pushed)
    b = Receiver("B")
    page = store.answer_sync(only_sync(b.handle_push(pushed, 0.0)).request)
    assert [i.msg_id for i in page.items] == ["A-1"]
    shown = [a.item.msg_id for a in b.handle_sync_response(page, 0.1) if isinstance(a, Show)]
    assert shown == ["A-1"]
    assert b.cursor("A|B") == 200
    # nothing is left to sync: the next page is empty
    later = stored("A", 3, 300)
    store.append(later)
    page = store.answer_sync(only_sync(b.handle_push(later, 0.2)).request)
    assert page.items == ()


def test_a_pushed_copy_stamped_at_the_cursor_key_by_another_node_is_named_held() -> None:
    # Two nodes stamp the same millisecond: B's cursor is at 100 over is
    # pushed with key 100 too. Pages start AT the cursor key, so A-2 must be named held
    # (it is not among the ids merged there) or the page would carry it down again.
    store = MessageStore()
    store.join("B", "A|B")
    first, second = stored("A", 1, 100), stored("A", 2, 100)
    store.append(first)
    b = Receiver("B")
    b.handle_sync_response(store.answer_sync(b.request_sync(0.0)[0].request), 0.1)
    assert b.cursor("A|B") == 100
    store.append(second)
    request = only_sync(b.handle_push(second, 0.2)).request
    assert request.merged_at_cursor == (("A|B", "A-1"),)
    assert request.held == (("A|B", "A-2"),)
    assert store.answer_sync(request).items == ()


def test_a_late_copy_below_the_cursor_is_not_named_held() -> None:
    # A retransmitted copy of a message a page already covered: requests name only what
    # the client holds above its cursor, so this one is not named again.
    store = MessageStore()
    store.join("B", "A|B")
    store.append(stored("A", 1, 100))
    store.append(stored("A", 2, 200))
    b = Receiver("B")
    b.handle_sync_response(store.answer_sync(b.request_sync(0.0)[0].request), 0.1)
    assert b.cursor("A|B") == 200
    b.handle_push(stored("A", 1, 100), 0.2)  # shown already: dropped, no receipt sync
    assert b.request_sync(0.3)[0].request.held == ()


def test_a_held_copy_above_where_a_cut_page_ends_stays_named_held() -> None:
    # B holds A-3 (pushed); the page, cut at one item, covers only up to A-1's key: A-3
    # is still above the cursor and must be named in the next request.
    store = MessageStore()
    store.join("B", "A|B")
    for n in (1, 2, 3):
        store.append(stored("A", n, 100 * n))
    b = Receiver("B", sync_limit=1)
    page = store.answer_sync(only_sync(b.handle_push(stored("A", 3, 300), 0.0)).request)
    assert [i.msg_id for i in page.items] == ["A-1"] and not page.complete
    request = only_sync(b.handle_sync_response(page, 0.1)).request
    assert request.held == (("A|B", "A-3"),)
    assert [i.msg_id for i in store.answer_sync(request).items] == ["A-2"]


def test_own_confirmed_messages_do_not_come_back_in_pages() -> None:
    store = MessageStore()
    store.join("B", "A|B")
    own = stored("B", 1, 150)
    store.append(own)
    b = Receiver("B")
    b.note_own("A|B", 150, 0.0, msg_id="B-1", is_group=False)
    request = b.request_sync(0.1, "reconnect")[0].request
    assert ("A|B", "B-1") in request.held
    assert store.answer_sync(request).items == ()


def test_a_sync_shows_what_it_repaired_with_its_trigger() -> None:
    store = MessageStore()
    store.join("B", "A|B")
    store.append(stored("A", 1, 100))
    b = Receiver("B")
    page = store.answer_sync(b.handle_connected(0.0)[0].request)
    shows = [a for a in b.handle_sync_response(page, 0.1) if isinstance(a, Show)]
    assert [(s.via, s.trigger) for s in shows] == [("sync", "reconnect")]


def test_each_sync_trigger_can_be_switched_off() -> None:
    b = Receiver("B", sync_on_receipt=False, sync_on_reconnect=False)
    assert b.handle_connected(0.0) == []
    actions = b.handle_push(stored("A", 1, 100), 0.0)
    assert not [a for a in actions if isinstance(a, StartSync)]

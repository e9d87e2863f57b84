"""The receiver in inbox mode: one inbox cursor, moved only by a merged page; what the
client holds is named so pages leave it out; group order and 1:1 timestamp order kept."""

from __future__ import annotations

from immodel.protocol import Message, MessageStore, Receiver, Show, StartSync, Stored


def item(msg_id: str, key: int, conversation: str = "A|B", sender: str = "A") -> Stored:
    return Stored(Message(msg_id, sender, conversation, conversation.startswith("G")), key)


def setup(*items: Stored) -> tuple[MessageStore, Receiver]:
    store = MessageStore(inbox=True)
    for user, conv in (("A", "A|B"), ("B", "A|B"), ("B", "B|C"), ("C", "B|C")):
        store.join(user, conv)
    for user in ("A", "B", "C"):
        store.join(user, "G")
    for i in items:
        store.append(i)
    return store, Receiver("B", inbox=True)


def requests(actions) -> list:
    return [a.request for a in actions if isinstance(a, StartSync)]


def shown(actions) -> list[str]:
    return [a.item.msg_id for a in actions if isinstance(a, Show)]


def run_sync(store: MessageStore, rx: Receiver, actions, now: float = 1.0) -> list[str]:
    """Answer every sync the actions start, page after page; the ids shown on the way."""
    out = shown(actions)
    pending = requests(actions)
    while pending:
        response = store.answer_sync(pending.pop())
        more = rx.handle_sync_response(response, now)
        out += shown(more)
        pending += requests(more)
    return out


def test_a_request_names_one_inbox_cursor_and_no_conversation_cursor() -> None:
    store, rx = setup(item("a", 10), item("c", 20, "B|C", "C"))
    (request,) = requests(rx.request_sync(0.0))
    assert request.inbox_cursor == 0 and request.cursors == () and request.held == ()
    page = store.answer_sync(request)
    assert shown(rx.handle_sync_response(page, 0.1)) == ["a", "c"]
    assert rx.inbox_cursor == 2
    (request,) = requests(rx.request_sync(0.2))
    assert request.inbox_cursor == 2 and request.cursors == ()


def test_a_push_never_moves_the_cursor_and_is_named_as_held_so_the_page_leaves_it_out() -> None:
    store, rx = setup(item("a", 10))
    actions = rx.handle_push(item("a", 10), 1.0)
    assert shown(actions) == ["a"]
    (request,) = requests(actions)  # a 1:1 receipt starts a sync
    assert rx.inbox_cursor == 0
    assert request.held == (("A|B", "a"),)
    page = store.answer_sync(request)
    assert page.items == () and page.scanned == 1 and page.inbox_top == 1
    rx.handle_sync_response(page, 1.1)
    assert rx.inbox_cursor == 1
    (request,) = requests(rx.request_sync(2.0))
    assert request.held == ()  # a complete page covered it: forgotten


def test_held_pairs_stay_named_until_a_complete_page_is_merged() -> None:
    store, rx = setup(item("x", 1), item("y", 2), item("a", 10))
    rx.sync_limit = 1
    actions = rx.handle_push(item("a", 10), 1.0)
    (request,) = requests(actions)
    page = store.answer_sync(request)
    assert not page.complete
    (again,) = requests(rx.handle_sync_response(page, 1.1))
    assert again.held == (("A|B", "a"),) and again.inbox_cursor == 1


def test_own_messages_are_held_once_stored_and_skipped_but_counted_when_paged() -> None:
    store, rx = setup(item("mine", 5, sender="B"), item("g1", 1, "G", "B"), item("g2", 2, "G"))
    rx.note_own("A|B", 5, 0.5, msg_id="mine", is_group=False)
    rx.note_own("G", 1, 0.5, msg_id="g1", is_group=True)
    (request,) = requests(rx.request_sync(1.0))
    assert set(request.held) == {("A|B", "mine"), ("G", 1)}
    page = store.answer_sync(request)
    assert [i.msg_id for i in page.items] == ["g2"]
    assert shown(rx.handle_sync_response(page, 1.1)) == ["g2"]
    assert rx.cursor("G") == 2 and rx.inbox_cursor == 3


def test_an_own_message_in_a_page_moves_the_group_cursor_but_is_not_shown() -> None:
    store, rx = setup(item("g1", 1, "G", "B"), item("g2", 2, "G", "A"))
    assert run_sync(store, rx, rx.request_sync(1.0)) == ["g2"]
    assert rx.cursor("G") == 2


def test_a_group_gap_seen_in_a_push_holds_later_seqs_back_until_the_page_fills_it() -> None:
    store, rx = setup(item("g1", 1, "G"), item("g2", 2, "G"), item("g3", 3, "G"))
    actions = rx.handle_push(item("g3", 3, "G"), 1.0)
    assert shown(actions) == [] and rx.held("G") == 1
    (request,) = requests(actions)  # the gap asks for a sync at once (gap_wait_s = 0)
    assert request.held == (("G", 3),)
    assert run_sync(store, rx, actions) == ["g1", "g2", "g3"]  # in seq order
    assert rx.cursor("G") == 3 and rx.held("G") == 0


def test_a_burnt_seq_in_a_page_is_stepped_over() -> None:
    store, rx = setup(item("g1", 1, "G"))
    store.group_sequencer.next_seq("G")
    store.burn_seq("G")  # seq 2
    store.append(item("g3", 3, "G"))
    assert run_sync(store, rx, rx.request_sync(1.0)) == ["g1", "g3"]
    assert rx.cursor("G") == 3


def test_one_to_one_items_of_a_page_are_shown_in_server_timestamp_order() -> None:
    # stored in the order fast (key 100), slow (key 50): the inbox keeps store order,
    # the user sees the chat by timestamp
    store, rx = setup(item("fast", 100), item("slow", 50))
    assert run_sync(store, rx, rx.request_sync(1.0)) == ["slow", "fast"]


def test_a_pushed_copy_a_page_carries_anyway_is_not_shown_again() -> None:
    # the push arrives while a sync is in flight: the request did not name it, so the
    # page carries it; the merge is by id
    store, rx = setup(item("a", 10))
    (request,) = requests(rx.request_sync(1.0))
    assert request.held == ()
    assert shown(rx.handle_push(item("a", 10), 1.05)) == ["a"]
    page = store.answer_sync(request)
    assert [i.msg_id for i in page.items] == ["a"]
    actions = rx.handle_sync_response(page, 1.1)
    assert shown(actions) == []
    (again,) = requests(actions)  # the receipt during the sync asked for one more
    assert again.inbox_cursor == 1


def test_a_page_for_an_abandoned_sync_is_ignored() -> None:
    store, rx = setup(item("a", 10))
    (request,) = requests(rx.request_sync(1.0))
    rx.disconnect()
    assert rx.handle_sync_response(store.answer_sync(request), 1.1) == []
    assert rx.inbox_cursor == 0


def test_reset_forgets_the_inbox_cursor() -> None:
    store, rx = setup(item("a", 10))
    run_sync(store, rx, rx.request_sync(1.0))
    assert rx.inbox_cursor == 1
    rx.reset()
    assert rx.inbox_cursor == 0
    (request,) = requests(rx.request_sync(2.0))
    assert request.inbox_cursor == 0

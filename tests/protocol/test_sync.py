"""Timeline and answer_sync: pages of everything after the cursors, in order, cut at a limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from immodel.protocol import (
    Message,
    MessageStore,
    Receiver,
    ServerNode,
    Show,
    Stored,
    SyncRequest,
    Timeline,
    answer_sync,
)


def item(msg_id: str, key: int, conversation: str = "A|B", sender: str = "A") -> Stored:
    return Stored(Message(msg_id, sender, conversation, conversation.startswith("G")), key)


def timelines(*items: Stored) -> dict[str, Timeline]:
    out: dict[str, Timeline] = {}
    for i in items:
        out.setdefault(i.conversation, Timeline()).add(i)
    return out


def request(cursors: dict[str, int] | None = None, limit: int = 100) -> SyncRequest:
    return SyncRequest("B", tuple(sorted((cursors or {}).items())), limit)


def test_timeline_keeps_appends_in_key_order() -> None:
    t = Timeline()
    for i in (item("a", 1), item("b", 5), item("c", 9)):
        t.add(i)
    assert [i.msg_id for i in t.items] == ["a", "b", "c"]
    assert len(t) == 3


def test_timeline_inserts_a_late_smaller_key_where_it_belongs() -> None:
    t = Timeline()
    for i in (item("a", 1), item("b", 9), item("c", 5), item("d", 9)):
        t.add(i)
    assert t.keys == [1, 5, 9, 9]
    assert [i.msg_id for i in t.items] == ["a", "c", "b", "d"]


def test_a_timeline_of_one_item_keeps_a_tuple_and_answers_like_a_longer_one() -> None:
    # Most 1:1 conversations hold one message: a tuple of one, a list from the second.
    t = Timeline()
    t.add(item("b", 5))
    assert type(t.items) is tuple and t.keys == [5] and len(t) == 1
    assert [i.msg_id for i in t.after(4)] == ["b"] and not t.after(5)
    assert [i.msg_id for i in t.after(5, inclusive=True)] == ["b"]
    t.add(item("a", 1))  # a skewed node's smaller key, the second item
    assert type(t.items) is list and t.keys == [1, 5]
    assert [i.msg_id for i in t.after(1)] == ["b"]


def test_after_returns_keys_strictly_above_the_cursor() -> None:
    t = timelines(item("a", 1), item("b", 5), item("c", 9))["A|B"]
    assert [i.msg_id for i in t.after(0)] == ["a", "b", "c"]
    assert [i.msg_id for i in t.after(5)] == ["c"]
    assert list(t.after(9)) == []


def test_sync_returns_from_each_cursor_in_conversation_then_key_order() -> None:
    tl = timelines(item("g1", 1, "G"), item("g2", 2, "G"), item("a", 10), item("b", 20))
    response = answer_sync(request({"A|B": 10}), ["G", "A|B"], tl)
    # 1:1 pages start AT the cursor key (a second node may have stamped it too).
    assert [i.msg_id for i in response.items] == ["a", "b", "g1", "g2"]
    skipped = SyncRequest("B", (("A|B", 10),), 100, (("A|B", "a"),))
    assert [i.msg_id for i in answer_sync(skipped, ["G", "A|B"], tl).items] == [
        "b",
        "g1",
        "g2",
    ]
    assert response.complete
    assert response.user == "B"


def test_a_group_with_a_single_message_pages_after_the_cursor() -> None:
    # One stored message already makes the timeline a group's: a reader past its seq
    # gets nothing back, and a group is never listed as covered (that is 1:1 only).
    tl = timelines(item("g1", 1, "G"))
    assert tl["G"].is_group
    past = answer_sync(request({"G": 1}), ["G"], tl)
    assert (past.items, past.covered) == ((), ())
    fresh = answer_sync(request(), ["G"], tl)
    assert ([i.msg_id for i in fresh.items], fresh.covered) == (["g1"], ())


def test_a_conversation_the_request_does_not_name_starts_at_zero() -> None:
    tl = timelines(item("a", 1))
    assert [i.msg_id for i in answer_sync(request(), ["A|B"], tl).items] == ["a"]


def test_conversations_without_messages_and_of_other_users_are_skipped() -> None:
    tl = timelines(item("a", 1), item("x", 1, "C|D"))
    response = answer_sync(request(), ["A|B", "G-empty"], tl)
    assert [i.msg_id for i in response.items] == ["a"]


def test_a_page_cut_at_the_limit_is_incomplete() -> None:
    tl = timelines(item("a", 1), item("b", 2), item("c", 3))
    response = answer_sync(request(limit=2), ["A|B"], tl)
    assert [i.msg_id for i in response.items] == ["a", "b"]
    assert not response.complete
    assert response.covered == (("A|B", 2),)  # complete up to the last key it carries


def test_a_page_filled_exactly_with_more_waiting_elsewhere_is_incomplete() -> None:
    tl = timelines(item("a", 1), item("b", 2), item("g", 1, "G"))
    response = answer_sync(request(limit=2), ["A|B", "G"], tl)
    assert [i.msg_id for i in response.items] == ["a", "b"]
    assert not response.complete


def test_a_conversation_left_for_the_next_page_is_not_listed_as_covered() -> None:
    # "A|B" fills the page; "B|C" waits for the next one: nothing of it is covered yet
    # (covering it would move the client's cursor over messages it never got).
    tl = timelines(item("a", 1), item("b", 2), item("c", 3, "B|C"))
    response = answer_sync(request(limit=2), ["A|B", "B|C"], tl)
    assert [i.msg_id for i in response.items] == ["a", "b"] and not response.complete
    assert response.covered == (("A|B", 2),)


def test_a_page_filled_exactly_with_nothing_left_is_complete() -> None:
    tl = timelines(item("a", 1), item("b", 2))
    assert answer_sync(request(limit=2), ["A|B"], tl).complete


def test_empty_answer_is_complete() -> None:
    response = answer_sync(request(), ["A|B"], {})
    assert response.items == ()
    assert response.complete


def test_scanned_counts_the_conversations_looked_through_up_to_the_cut() -> None:
    # B's conversations in repr order: "A|B" (two new), "B|C" (nothing stored), "G"
    # (nothing past the cursor): all three are looked through for a full page; a page
    # cut inside "A|B" stops there, after one.
    tl = timelines(item("a", 1), item("b", 2), item("g1", 1, "G"))
    convs = ["G", "B|C", "A|B"]
    full = answer_sync(request({"G": 1}), convs, tl)
    assert [i.msg_id for i in full.items] == ["a", "b"] and full.scanned == 3
    cut = answer_sync(request({"G": 1}, limit=1), convs, tl)
    assert [i.msg_id for i in cut.items] == ["a"] and cut.scanned == 1


def test_pages_list_conversations_in_repr_order_as_the_store_keeps_them() -> None:
    # Ids are opaque: with int conversation ids repr order (10 before 2) is not numeric
    # order, and the store's page (its own list, in_order) must equal a sorted answer.
    store = MessageStore()
    for conv in (2, 10):
        store.join("B", conv)
        store.append(Stored(Message(f"m{conv}", "A", conv, False), 5))
    request = SyncRequest("B", (), 1)
    page = store.answer_sync(request)
    assert [i.msg_id for i in page.items] == ["m10"] and not page.complete
    assert answer_sync(request, [2, 10], store.timelines) == page


def test_a_conversation_with_nothing_past_the_cursor_is_not_listed_as_covered() -> None:
    # The one item at the cursor key is one the client merged: nothing new, nothing covered.
    tl = timelines(item("a", 100))
    merged = SyncRequest("B", (("A|B", 100),), 100, (("A|B", "a"),))
    page = answer_sync(merged, ["A|B"], tl)
    assert (page.items, page.covered, page.complete) == ((), (), True)
    past = answer_sync(request({"A|B": 150}), ["A|B"], tl)  # a cursor above the top key
    assert (past.items, past.covered, past.complete) == ((), (), True)


def test_a_page_at_the_cursor_key_leaves_out_only_the_ids_the_client_merged_there() -> None:
    # Two nodes stamped 100; the request names only the later item as merged there:
    # the earlier one still comes (the page starts at the cursor key, less merged ids).
    tl = timelines(item("a", 100), item("b", 100))
    page = answer_sync(SyncRequest("B", (("A|B", 100),), 100, (("A|B", "b"),)), ["A|B"], tl)
    assert [i.msg_id for i in page.items] == ["a"]
    assert page.covered == (("A|B", 100),)


@given(
    st.lists(st.sampled_from(["A|B", "B|C", "G"]), max_size=30),
    st.integers(min_value=1, max_value=4),
    st.lists(st.integers(min_value=0, max_value=3), max_size=30),
)
def test_paging_with_cursors_pulls_every_stored_message_exactly_once(
    conversations: list[str], limit: int, sends_between_pages: list[int]
) -> None:
    """One stamping node: keys strictly increase per conversation, so every page is a
    prefix of what is to come, even with messages stored between the pages."""
    store = MessageStore()
    for conv in ("A|B", "B|C", "G"):
        store.join("B", conv)
    node = ServerNode(0, store)
    todo = [Message(f"m{i}", "A", c, c == "G") for i, c in enumerate(conversations)]
    pulled: list[Stored] = []
    cursors: dict[str, int] = {}
    at_cursor: dict[str, set[str]] = {}  # what a client tells the server it merged there
    now = 0.0
    for burst in [*sends_between_pages, len(todo)]:
        for message in todo[:burst]:
            node.begin_send(message, now)
            node.commit(message, now)
        del todo[:burst]
        now += 0.0004  # several messages per millisecond
        while True:
            merged = tuple((c, m) for c in sorted(at_cursor) for m in sorted(at_cursor[c]))
            request = SyncRequest("B", tuple(sorted(cursors.items())), limit, merged)
            page = store.answer_sync(request)
            pulled.extend(page.items)
            for i in page.items:
                conv, key = i.conversation, i.order_key
                if key > cursors.get(conv, 0):
                    cursors[conv] = key
                    at_cursor[conv] = {i.msg_id}
                elif key == cursors[conv]:
                    at_cursor.setdefault(conv, set()).add(i.msg_id)
            if page.complete:
                break
    assert sorted(i.msg_id for i in pulled) == sorted(f"m{i}" for i in range(len(conversations)))


def two_nodes(offset_s: float) -> tuple[MessageStore, ServerNode, ServerNode]:
    store = MessageStore()
    for user in "AB":
        store.join(user, "A|B")
    return store, ServerNode(0, store), ServerNode(1, store, clock_offset_s=offset_s)


def synced(receiver: Receiver, store: MessageStore, now: float) -> None:
    (start,) = receiver.request_sync(now)
    receiver.handle_sync_response(store.answer_sync(start.request), now)


def test_skewed_node_can_stamp_below_a_cursor_and_sync_never_pulls_it() -> None:
    """The documented exception: timestamp order is only as good as the clocks."""
    store, fast, slow = two_nodes(offset_s=-1.0)
    b = Receiver("B")
    mine = Message("B-1", "B", "A|B", False)
    fast.begin_send(mine, 10.0)
    fast.commit(mine, 10.0)  # key 10000
    synced(b, store, 10.0)
    assert b.cursor("A|B") == 10_000
    reply = Message("A-1", "A", "A|B", False)
    slow.begin_send(reply, 10.5)
    late, _ = slow.commit(reply, 10.5)  # key 9500, stored later
    assert late.order_key < b.cursor("A|B")
    (start,) = b.request_sync(11.0)
    assert store.answer_sync(start.request).items == ()


def test_equal_stamps_from_two_nodes_are_both_pulled_by_sync() -> None:
    store, a_node, b_node = two_nodes(offset_s=0.0)
    b = Receiver("B")
    mine = Message("B-1", "B", "A|B", False)
    b_node.begin_send(mine, 10.0)
    b_node.commit(mine, 10.0)  # key 10000
    synced(b, store, 10.0)  # B's cursor passes its own message
    theirs = Message("A-1", "A", "A|B", False)
    a_node.begin_send(theirs, 10.0004)
    a_node.commit(theirs, 10.0004)  # same millisecond, other node: key 10000 too
    (start,) = b.request_sync(11.0)
    page = store.answer_sync(start.request)
    # The page starts at the cursor key, less the id B merged there: A's equal stamp
    # comes back, and only once.
    assert [i.msg_id for i in page.items] == ["A-1"]
    shown = [a.item.msg_id for a in b.handle_sync_response(page, 11.1) if isinstance(a, Show)]
    assert shown == ["A-1"]
    (again,) = b.request_sync(12.0)
    repeat = store.answer_sync(again.request)
    assert not [a for a in b.handle_sync_response(repeat, 12.1) if isinstance(a, Show)]


def _page_by_definition(request: SyncRequest, convs, tl) -> list[str]:
    """A page as the module docstring defines it, computed the slow, obvious way."""
    cursors = dict(request.cursors)
    merged = set(request.merged_at_cursor)
    out: list[str] = []
    for conv in sorted(convs, key=repr):
        cur = cursors.get(conv, 0)
        for i in tl.get(conv, Timeline()).items:
            if i.is_group:
                wanted = i.order_key > cur  # seqs are unique: after the cursor
            else:
                wanted = i.order_key >= cur and (conv, i.msg_id) not in merged
            if wanted:
                out.append(i.msg_id)
    return out[: request.limit]


@given(
    st.lists(st.tuples(st.sampled_from(["A|B", "B|C", "G", "H"]), st.integers(1, 6)), max_size=25),
    st.dictionaries(st.sampled_from(["A|B", "B|C", "G", "H"]), st.integers(0, 7)),
    st.sets(st.integers(0, 24)),
    st.integers(min_value=1, max_value=30),
)
def test_the_shortcut_for_conversations_with_nothing_new_never_changes_a_page(
    stored: list[tuple[str, int]], cursors: dict[str, int], merged_idx: set[int], limit: int
) -> None:
    """The page skips a conversation without slicing it when its top key is at or below
    the cursor; equal 1:1 keys (two nodes, one millisecond) and merged ids included,
    the page must be exactly the one the definition gives."""
    items = [item(f"m{n}", key, conv) for n, (conv, key) in enumerate(stored)]
    tl = timelines(*items)
    merged = tuple(
        (items[n].conversation, items[n].msg_id)
        for n in sorted(merged_idx)
        if n < len(items) and not items[n].is_group
    )
    request = SyncRequest("B", tuple(cursors.items()), limit, merged)
    convs = ["H", "G", "B|C", "A|B"]
    page = answer_sync(request, convs, tl)
    expected = _page_by_definition(request, convs, tl)
    assert [i.msg_id for i in page.items] == expected
    in_order = answer_sync(request, sorted(convs, key=repr), tl, in_order=True)
    assert in_order == page

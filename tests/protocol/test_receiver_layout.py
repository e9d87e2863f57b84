"""Receiver: the compact layouts of its per-message state behave like the ones they replace.

The shown-ids window is a plain dict (it was an OrderedDict), a conversation holding one
copy above its cursor keeps a pair (it was a dict of one), and the ids merged at a cursor
key are one id by itself (it was a tuple of one). These tests drive each against the
simpler layout it replaced, and check that what is forgotten is really dropped.
"""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from immodel.protocol import Message, Receiver, Snapshot, StartSync, Stored, SyncResponse
from immodel.protocol.messages import as_ids
from immodel.protocol.server import MessageStore


class _OldShownIds:
    """The shown-ids window as it was: an OrderedDict, pruned from its head on every
    question."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.seen: OrderedDict[str, float] = OrderedDict()

    def show(self, msg_id: str, now: float) -> None:
        self.seen[msg_id] = now + self.window_s
        self.seen.move_to_end(msg_id)

    def was_shown(self, msg_id: str, now: float) -> bool:
        while self.seen:
            oldest, forget_at = next(iter(self.seen.items()))
            if forget_at > now:
                break
            del self.seen[oldest]
        return msg_id in self.seen


_steps = st.lists(
    st.tuples(
        st.booleans(),  # show (True) or ask
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.floats(min_value=0.0, max_value=100.0),  # not always forward: the rule holds anyway
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_steps, st.sampled_from([0.0, 5.0, 30.0]))
def test_the_shown_ids_window_answers_and_forgets_like_the_ordered_dict(steps, window_s) -> None:
    receiver = Receiver("B", dedup_window_s=window_s)
    old = _OldShownIds(window_s)
    for show, msg_id, now in steps:
        if show:  # shown again, too (client dedup off): remembered from now on
            item = Stored(Message(msg_id, "A", "A|B", False), 1)
            receiver._show(item, "push", now, [])
            old.show(msg_id, now)
        else:
            assert receiver._was_shown(msg_id, now) == old.was_shown(msg_id, now)
        # the same ids, in the same order, with the same times: pruned as it was
        assert list((receiver._seen or {}).items()) == list(old.seen.items())


def _held(receiver: Receiver) -> tuple:
    (action,) = receiver.request_sync(0.0)
    assert isinstance(action, StartSync)
    receiver.disconnect()  # the next request starts afresh
    return action.request.held


def test_copies_held_above_the_cursor_are_named_in_order_and_dropped_once_covered() -> None:
    b = Receiver("B")
    b.note_own("A|B", 100, 0.0, msg_id="B-1", is_group=False)
    assert _held(b) == (("A|B", "B-1"),)
    b.note_own("A|B", 100, 0.0, msg_id="B-1", is_group=False)  # told twice: held once
    b.note_own("A|B", 120, 0.0, msg_id="B-2", is_group=False)
    b.note_own("A|C", 130, 0.0, msg_id="B-3", is_group=False)
    assert _held(b) == (("A|B", "B-1"), ("A|B", "B-2"), ("A|C", "B-3"))
    b.request_sync(1.0)
    b.handle_sync_response(SyncResponse("B", (), True, (("A|B", 110),)), 1.0)
    assert _held(b) == (("A|B", "B-2"), ("A|C", "B-3"))  # B-1 is below the key covered
    b.request_sync(2.0)
    b.handle_sync_response(SyncResponse("B", (), True, (("A|B", 120), ("A|C", 130))), 2.0)
    assert b._above is None  # nothing held: nothing kept
    assert b.cursor("A|B") == 120 and b.cursor("A|C") == 130
    # what was held at the key covered is merged there: named, so the page leaves it out
    (action,) = b.request_sync(3.0)
    assert action.request.merged_at_cursor == (("A|B", "B-2"), ("A|C", "B-3"))


def test_an_id_that_is_itself_a_tuple_is_one_id_merged_at_the_cursor() -> None:
    # Ids are opaque: a tuple id must not be taken for the ids merged at a key.
    tuple_id = ("A", 1)
    item = Stored(Message(tuple_id, "A", "A|B", False), 100)
    store = MessageStore()
    for user in ("A", "B"):
        store.join(user, "A|B")
    store.append(item)
    b = Receiver("B")
    (first,) = b.request_sync(0.0)
    b.handle_sync_response(store.answer_sync(first.request), 0.0)
    assert b._edge == {"A|B": (tuple_id,)}
    (again,) = b.request_sync(1.0)
    assert again.request.merged_at_cursor == (("A|B", tuple_id),)
    page = store.answer_sync(again.request)
    assert page.items == () and page.complete  # left out: merged at the cursor key


def test_a_flat_snapshot_reports_one_id_kept_by_itself_like_a_tuple_of_one() -> None:
    assert as_ids("x") == ("x",) and as_ids(("x", "y")) == ("x", "y") and as_ids(()) == ()
    mixed = Snapshot({"c": "x", "d": ("y", "z"), "e": ()}, 3, flat=True)
    assert tuple(mixed) == (("c", "x"), ("d", "y"), ("d", "z"))
    assert mixed == Snapshot({"c": ("x",), "d": ("y", "z")}, 3, flat=True)


def test_the_ids_merged_at_the_cursor_are_kept_as_one_id_or_a_sorted_tuple() -> None:
    b = Receiver("B")
    b.request_sync(0.0)
    one = Stored(Message("A-1", "A", "A|B", False), 100)
    b.handle_sync_response(SyncResponse("B", (one,), True), 0.0)
    assert b._edge == {"A|B": "A-1"}
    b.request_sync(1.0)
    two = Stored(Message("A-0", "A", "A|B", False), 100)  # another node, same millisecond
    b.handle_sync_response(SyncResponse("B", (two,), True), 1.0)
    assert b._edge == {"A|B": ("A-0", "A-1")}

"""The store's sync memory (SyncReader) answers exactly as a look at every conversation.

A store remembers, per user, which conversations may hold something new since the last
request it answered, and looks only at those when a request from the same client state
follows. These tests drive a real Receiver against a store and compare every page with
:func:`answer_sync` over all the user's conversations: the same items, covered and
burnt pairs, completeness and ``scanned`` (what the answer is charged for) — including
requests answered out of order, repeated, after a reset, and pages cut at the limit.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

import immodel.protocol.receiver as receiver_module
from immodel.protocol import (
    Message,
    MessageStore,
    Receiver,
    Snapshot,
    StartSync,
    Stored,
    SyncRequest,
    answer_sync,
)

ONES = ("A|B", "B|C", "B|D")
GROUPS = ("G1", "G2")


def full_answer(store: MessageStore, request: SyncRequest):
    convs = store.conversations_of(request.user)
    return answer_sync(request, convs, store.timelines, in_order=True)


def requests(actions) -> list[SyncRequest]:
    return [a.request for a in actions if isinstance(a, StartSync)]


def test_a_snapshot_reads_the_mapping_as_it_was_when_taken() -> None:
    live = {"a": 1}
    first = Snapshot(live, 1)
    first.keep("a")
    live["a"] = 2
    first.keep("b")
    live["b"] = 5
    second = Snapshot(live, 2)
    first.follow(second)  # changes from now on are kept in the newer one
    second.keep("a")
    live["a"] = 3
    assert (first.get("a"), first.get("b"), first.get("b", 0)) == (1, None, 0)
    assert first == (("a", 1),) and len(first) == 1
    assert (second.get("a"), second.get("b")) == (2, 5)
    assert second == (("a", 2), ("b", 5)) and dict(second) == {"a": 2, "b": 5}
    flat = Snapshot({"c": ("x", "y"), "d": ()}, 2, flat=True)
    assert tuple(flat) == (("c", "x"), ("c", "y")) and flat.get("c") == ("x", "y")


def test_a_request_from_the_same_state_looks_only_at_what_changed() -> None:
    store = MessageStore()
    for conv in ONES:
        store.join("B", conv)
    b = Receiver("B")
    first = Stored(Message("A-1", "A", "A|B", False), 100)
    store.append(first)
    (request,) = requests(b.handle_push(first, 0.0))
    page = store.answer_sync(request)
    assert page == full_answer(store, request)
    assert page.scanned == 3 and page.covered == (("A|B", 100),)
    b.handle_sync_response(page, 0.1)
    reader = store._readers["B"]
    assert reader.unsettled == ["A|B"]  # the page moved the cursor: look again once
    (again,) = requests(b.request_sync(0.2))
    page = store.answer_sync(again)
    assert page == full_answer(store, again) and page.covered == ()
    assert reader.unsettled == []  # nothing new anywhere: the next look is free
    store.append(Stored(Message("C-1", "C", "B|C", False), 50))
    assert reader.unsettled == ["B|C"]  # a write tells the members


def test_a_request_older_than_the_one_answered_is_answered_by_a_full_look() -> None:
    store = MessageStore()
    store.join("B", "A|B")
    b = Receiver("B", sync_timeout_s=10.0)
    item = Stored(Message("A-1", "A", "A|B", False), 100)
    store.append(item)
    (old,) = requests(b.handle_push(item, 0.0))
    (new,) = requests(b.handle_timeout(20.0))  # unanswered: repeated, with a larger number
    assert new.state is old.state and new.state_no > old.state_no
    b.handle_sync_response(store.answer_sync(new), 20.1)
    (newer,) = requests(b.request_sync(20.2))
    assert store.answer_sync(newer).covered == ()  # A|B is settled for this state …
    # … but not for the old request, whose cursor is behind: it arrives late (a
    # duplicate, or a repeat that overtook it) and must be answered by a full look
    late = store.answer_sync(old)
    assert late == full_answer(store, old) and late.covered == (("A|B", 100),)


@st.composite
def scripts(draw):
    ops = st.one_of(
        st.tuples(st.just("one"), st.sampled_from(ONES), st.integers(-2, 3), st.booleans()),
        st.tuples(st.just("group"), st.sampled_from(GROUPS), st.booleans()),
        st.tuples(st.just("burn"), st.sampled_from(GROUPS)),
        st.tuples(st.just("push"), st.integers(0, 40)),
        st.tuples(st.just("sync")),
        st.tuples(st.just("answer"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("timeout")),
        st.tuples(st.just("reset")),
        st.tuples(st.just("join"), st.sampled_from(("B|E", "G3"))),
    )
    # the page limit, the script, and from how many cursors requests carry snapshots
    return (
        draw(st.integers(1, 4)),
        draw(st.lists(ops, max_size=60)),
        draw(st.sampled_from((0, 0, 3, 16))),
    )


@settings(max_examples=300, deadline=None)
@given(scripts())
# a late request behind one that settled its conversation
@example(
    (
        1,
        [
            ("one", "A|B", 1, False),
            ("push", 0),
            ("answer", 0, False),
            ("sync",),
            ("answer", 0, False),
            ("answer", 1, True),
        ],
        0,
    )
)
# a late request that carried snapshots, after a page moved the cursors it names
@example(
    (
        1,
        [
            ("one", "A|B", 1, False),
            ("push", 0),
            ("answer", 0, False),
            ("one", "A|B", 1, False),
            ("push", 1),
            ("answer", 0, False),
            ("answer", 0, True),
        ],
        0,
    )
)
def test_every_page_is_the_page_of_a_full_look(script) -> None:
    limit, ops, snapshot_from = script
    was = receiver_module.SNAPSHOT_FROM_CURSORS
    receiver_module.SNAPSHOT_FROM_CURSORS = snapshot_from
    try:
        _run_script(limit, ops)
    finally:
        receiver_module.SNAPSHOT_FROM_CURSORS = was


def _run_script(limit: int, ops: list) -> None:
    store = MessageStore()
    for conv in (*ONES, *GROUPS):
        store.join("B", conv)
    b = Receiver("B", sync_limit=limit)
    stored: list[Stored] = []
    in_flight: list[SyncRequest] = []
    sent: list[SyncRequest] = []
    tops = dict.fromkeys(ONES, 100)
    now = 0.0
    n = 0

    # each request as plain tuples, taken when it was built: what it must still say
    # when it is answered, however the receiver's cursors moved since
    built: dict[int, SyncRequest] = {}

    def got(actions) -> None:
        new = requests(actions)
        in_flight.extend(new)
        sent.extend(new)
        for r in new:
            built[id(r)] = SyncRequest(
                r.user, tuple(r.cursors), r.limit, tuple(r.merged_at_cursor), r.held
            )

    for op in ops:
        now += 1.0
        kind = op[0]
        if kind == "one":
            _, conv, delta, own = op
            key = tops[conv] = max(1, tops[conv] + delta)  # equal and lower keys too
            n += 1
            sender = "B" if own else conv.replace("|", "").replace("B", "")[:1]
            item = Stored(Message(f"m{n}", sender, conv, False), key)
            store.append(item)
            stored.append(item)
            if own:
                b.note_own(conv, key, now, msg_id=item.msg_id, is_group=False)
        elif kind == "group":
            _, group, own = op
            n += 1
            item = Stored(
                Message(f"m{n}", "B" if own else "A", group, True),
                store.group_sequencer.next_seq(group),
            )
            store.append(item)
            stored.append(item)
            if own:
                got(b.note_own(group, item.order_key, now))
        elif kind == "burn":
            store.burn_seq(op[1])
        elif kind == "push" and stored:
            got(b.handle_push(stored[op[1] % len(stored)], now))
        elif kind == "sync":
            got(b.request_sync(now, "receipt"))
        elif kind == "answer" and sent:
            # any request ever sent may arrive (late, twice, after a later one)
            _, i, late = op
            if late or not in_flight:
                request = sent[-1 - i % len(sent)]
            else:
                request = in_flight.pop(i % len(in_flight))
            page = store.answer_sync(request)
            then = built[id(request)]
            assert request == then  # a snapshot: what it said when it was built
            if isinstance(request.cursors, Snapshot):
                for conv in (*ONES, *GROUPS, "B|E", "G3"):
                    assert request.cursors.get(conv, 0) == dict(then.cursors).get(conv, 0)
            assert len(request.cursors) == len(then.cursors)
            assert len(request.merged_at_cursor) == len(then.merged_at_cursor)
            assert page == full_answer(store, then)
            got(b.handle_sync_response(page, now))
        elif kind == "timeout":
            now += 20.0
            got(b.handle_timeout(now))
        elif kind == "reset":
            b.reset()
        elif kind == "join":
            store.join("B", op[1])
    # and at the end, a page that drains whatever is left
    for _ in range(50):
        (request,) = requests(b.request_sync(now)) or requests(b.handle_timeout(now + 100.0))
        now += 200.0
        page = store.answer_sync(request)
        assert page == full_answer(store, request)
        b.handle_sync_response(page, now)
        if page.complete and not page.items and not page.covered:
            break

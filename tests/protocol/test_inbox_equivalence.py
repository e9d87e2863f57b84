"""Inbox sync delivers what conversation sync delivers — and also what the timestamp
hole of conversation sync loses.

The property: for any interleaving of stores (1:1 and group), burnt group seqs, pushes,
the reader's own sends, sync requests with random page limits and their answers, one
receiver syncing by conversation cursors and one syncing by an inbox cursor end up
showing the same set of messages, each once, every group in seq order — where 1:1
timestamps never go backwards, the only case conversation sync is complete in.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from immodel.protocol import Message, MessageStore, Receiver, Show, StartSync, Stored

READER = "B"
MEMBERS = {"A|B": ("A", "B"), "B|C": ("B", "C"), "A|C": ("A", "C"), "G": ("A", "B", "C")}
CONVS = tuple(MEMBERS)


class Side:
    """One sync mode: its store, the reader's receiver, its requests in flight, what it
    showed."""

    def __init__(self, inbox: bool) -> None:
        self.store = MessageStore(inbox=inbox)
        for conv, members in MEMBERS.items():
            for m in members:
                self.store.join(m, conv)
        self.rx = Receiver(READER, inbox=inbox)
        self.in_flight: list = []
        self.shown: list[Stored] = []

    def take(self, actions) -> None:
        for a in actions:
            if isinstance(a, Show):
                self.shown.append(a.item)
            elif isinstance(a, StartSync):
                self.in_flight.append(a.request)

    def answer_one(self, now: float) -> None:
        if self.in_flight:
            page = self.store.answer_sync(self.in_flight.pop(0))
            self.take(self.rx.handle_sync_response(page, now))


ops = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.sampled_from(CONVS), st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.just("burn")),
        st.tuples(st.just("push"), st.integers(0, 40)),
        st.tuples(st.just("sync"), st.integers(1, 4)),
        st.tuples(st.just("answer")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(ops)
def test_inbox_sync_shows_exactly_what_conversation_sync_shows(script) -> None:
    sides = (Side(inbox=False), Side(inbox=True))
    stored: list[Stored] = []
    stamp = dict.fromkeys(CONVS, 0)
    now = 0.0
    for op in script:
        now += 0.01
        kind = op[0]
        if kind == "store":
            _, conv, who, step = op
            members = MEMBERS[conv]
            sender = members[who % len(members)]
            is_group = conv == "G"
            if is_group:
                keys = {s.store.group_sequencer.next_seq(conv) for s in sides}
                (key,) = keys
            else:
                stamp[conv] += step  # equal stamps allowed: two nodes, one millisecond
                key = stamp[conv]
            item = Stored(Message(f"m{len(stored)}", sender, conv, is_group), key)
            stored.append(item)
            for s in sides:
                s.store.append(item)
                if sender == READER:  # the send reply: the reader's own stored message
                    s.take(s.rx.note_own(conv, key, now, msg_id=item.msg_id, is_group=is_group))
        elif kind == "burn":
            assert len({s.store.burn_seq("G") for s in sides}) == 1
        elif kind == "push":
            mine = [i for i in stored if READER in MEMBERS[i.conversation]]
            if mine:
                item = mine[op[1] % len(mine)]
                for s in sides:
                    s.take(s.rx.handle_push(item, now))
        elif kind == "sync":
            for s in sides:
                s.rx.sync_limit = op[1]
                s.take(s.rx.request_sync(now, "receipt"))
        else:
            for s in sides:
                s.answer_one(now)
    # the end: answer what is in flight, then one last full sync
    # (bounded: each page reads at least one entry or ends the sync, so a sync that still
    # asks after more pages than the script has steps is a receiver that never settles)
    for s in sides:
        for _ in range(2):
            for _ in range(4 * len(script) + 10):
                if not s.in_flight:
                    break
                now += 0.01
                s.answer_one(now)
            assert not s.in_flight, "the sync never settles"
            s.take(s.rx.request_sync(now, "reconnect"))
    expected = {
        i.msg_id for i in stored if READER in MEMBERS[i.conversation] and i.message.sender != READER
    }
    for s in sides:
        counts = Counter(i.msg_id for i in s.shown)
        assert set(counts) == expected
        assert max(counts.values(), default=1) == 1
        seqs = [i.order_key for i in s.shown if i.is_group]
        assert seqs == sorted(seqs)


def test_a_reply_stamped_below_the_cursor_by_a_slow_node_reaches_only_the_inbox_reader() -> None:
    # Theory (immodel.protocol.sync): a 1:1 page is cut by timestamp, so once the cursor
    # passed a fast node's stamp (100), a reply a slow node stamps 50 and stores later is
    # never pulled. The inbox seq is handed out at store time, so the reply lands above
    # the inbox cursor whatever its stamp.
    sides = (Side(inbox=False), Side(inbox=True))
    fast = Stored(Message("fast", "A", "A|B", False), 100)
    slow = Stored(Message("slow", "A", "A|B", False), 50)
    for s in sides:
        s.store.append(fast)
        s.take(s.rx.request_sync(1.0))
        s.answer_one(1.1)
        s.store.append(slow)  # its push is lost: only a sync can bring it
        s.take(s.rx.request_sync(2.0))
        s.answer_one(2.1)
    conversation, inbox = ([i.msg_id for i in s.shown] for s in sides)
    assert conversation == ["fast"]
    assert inbox == ["fast", "slow"]

"""Sync: the client pulls from the server's store by cursor (article, figure 4).

The server's store keeps, per conversation, the stored messages in order-key order.
A :class:`~immodel.protocol.messages.SyncRequest` names the client's cursor per
conversation (absent: 0); :func:`answer_sync` returns every stored message of the user's
conversations with a larger key, in ``(conversation, order_key)`` order, at most
``limit`` per page. The client merges the page (:class:`~immodel.protocol.receiver.
Receiver`) and only then advances its cursors, so a push that arrives while a sync is in
flight can never move a cursor past a gap; an incomplete page makes it ask again.

Why cursors work here: order keys are assigned when a message is stored, strictly
increasing per conversation and stamping node (see :mod:`immodel.protocol.ordering`),
so everything at or below the highest key of a page was already in the store when the
page was cut — a page is a prefix of what is to come. The exception is instructive: with
two nodes whose clocks disagree, a 1:1 reply stamped by the slow node can land *below* a
cursor that already passed the fast node's stamp, and timestamp sync never pulls it
(group seq has no such hole). Pushes and retransmits still deliver it.

A group write that fails after its seq was handed out leaves a burnt seq
(:meth:`Timeline.burn`); pages list the burnt seqs between the cursor and the page's
last item of that group, so the reader steps over them instead of waiting for them.

Two nodes can also stamp the *same* millisecond in one conversation, so for 1:1 a page
starts at the cursor key itself, not after it; the receiver remembers the ids it merged
at its cursor key and names them in the request, so the page leaves them out (a bounded
set: at most one id per stamping node).

A conversation's timeline holds the messages of all its members, the reader's own
included: the receiver skips its own messages but still moves its cursors over them
(a group's seq is contiguous only if the reader counts its own messages too).

**What a page costs to cut.** A request names every conversation of the user (random
1:1 pairs make them pile up with time), and the page is charged per conversation
(``scanned``), but cutting it need not look at each: a store keeps a
:class:`SyncReader` per user that remembers which conversations may hold something the
user has not merged, and a request from a client with many cursors carries them as
:class:`~immodel.protocol.messages.Snapshot` views of the client's own mappings, so
neither side copies or looks through every cursor. The page is the one
:func:`answer_sync` cuts by looking through them all.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter

from immodel.protocol.messages import Id, Snapshot, Stored, SyncRequest, SyncResponse, as_ids

_order_key = attrgetter("order_key")  # a Stored's key, for bisecting a timeline's items


class Timeline:
    """The stored messages of one conversation, in order-key order.

    Appends come in key order for each stamping node; an out-of-order append (a
    skewed node) is inserted where it belongs so the timeline stays sorted.

    With random 1:1 pairs nearly every message opens a conversation, and most hold one
    message, so a timeline is kept small: the keys are read from the items
    (:attr:`keys` lists them for observers; a list of them beside the items cost ~90
    bytes per conversation), and ``items`` is a tuple while it holds one item (48
    bytes, where a list of one costs 88), a list from the second on.
    """

    __slots__ = ("burnt", "is_group", "items", "readers")

    def __init__(self) -> None:
        self.items: list[Stored] | tuple[Stored, ...] = ()
        self.is_group = False  # set by the first item: a conversation is one or the other
        self.burnt: list[int] | None = None  # group seqs no message will carry, ascending
        # the members' sync memories, told of each change (kept by a store, see
        # SyncReader): a list while members join, a tuple (a third smaller) from the
        # first item on
        self.readers: list[SyncReader] | tuple[SyncReader, ...] = ()

    def burn(self, seq: int) -> None:
        """Seq ``seq`` of this group was handed out to a write that failed."""
        self.is_group = True
        if self.burnt is None:
            self.burnt = []
        self.burnt.append(seq)  # seqs are handed out in increasing order

    def burnt_between(self, low: int, high: int) -> list[int]:
        """Burnt seqs ``s`` with ``low < s <= high``."""
        if not self.burnt:
            return []
        return self.burnt[bisect_right(self.burnt, low) : bisect_right(self.burnt, high)]

    @property
    def keys(self) -> list[int]:
        """The items' order keys, ascending (a new list)."""
        return [item.order_key for item in self.items]

    def add(self, item: Stored) -> None:
        items = self.items
        if not items:
            self.is_group = item.message.is_group
            self.readers = tuple(self.readers)  # the members have joined by now
            self.items = (item,)
            return
        if type(items) is tuple:
            items = self.items = list(items)
        if item.order_key >= items[-1].order_key:
            items.append(item)
        else:
            items.insert(bisect_right(items, item.order_key, key=_order_key), item)

    def after(self, cursor: int, *, inclusive: bool = False) -> Sequence[Stored]:
        """Items with a key greater than ``cursor`` (or equal, with ``inclusive``)."""
        find = bisect_left if inclusive else bisect_right
        return self.items[find(self.items, cursor, key=_order_key) :]

    def __len__(self) -> int:
        return len(self.items)


def answer_sync(
    request: SyncRequest,
    conversations: Iterable[Id],
    timelines: Mapping[Id, Timeline],
    *,
    in_order: bool = False,
) -> SyncResponse:
    """One page of everything the user has not merged yet.

    ``conversations`` are the user's conversations (1:1 and groups), ``timelines`` the
    store's timelines by conversation. Pages list conversations in ``repr`` order;
    ``in_order`` says ``conversations`` already come in that order (the store keeps
    them so), which spares a sort per request.

    1:1 items the request names as ``held`` (the client has them already) are left out
    of the page, and ``covered`` tells the client how far each 1:1 conversation is
    complete, so its cursor moves over what it held without the bytes coming down again.
    """
    convs = conversations if in_order else sorted(conversations, key=repr)
    items, covered, burnt, cut, scanned = _page(request, convs, timelines, None)
    return SyncResponse(request.user, items, cut is None, covered, scanned, burnt)


def _page(
    request: SyncRequest,
    conversations: Iterable[Id],
    timelines: Mapping[Id, Timeline],
    unsettled: list[Id] | None,
) -> tuple[tuple[Stored, ...], tuple[tuple[Id, int], ...], tuple[tuple[Id, int], ...], Id, int]:
    """Cut one page from ``conversations`` (in page order): the items, the covered and
    burnt pairs, the conversation the page was cut in (None: complete) and how many
    conversations were looked through. Every conversation that is not *settled* for
    this request — one whose page would be empty and which would not be listed as
    covered — is appended to ``unsettled`` (when given), in order."""
    # Lookups per conversation. Snapshots (a receiver with many cursors) answer them as
    # they are; tuples of pairs are turned into a dict and a set of (conversation, id)
    # pairs to skip: the held ones, and the merged ones unless merged_of has them.
    cursors = request.cursors
    cursors = cursors.current() if type(cursors) is Snapshot else dict(cursors)
    merged = request.merged_at_cursor
    merged_of = None  # conversation → ids merged at its cursor key (see as_ids)
    if type(merged) is Snapshot:
        merged_of = merged.current()
        skip = set(request.held)
    else:
        skip = set(merged)
        if request.held:
            skip.update(request.held)
    out: list[Stored] = []
    covered: list[tuple[Id, int]] = []
    cut = None
    scanned = 0
    burnt: list[tuple[Id, int]] = []
    for conv in conversations:
        scanned += 1
        timeline = timelines.get(conv)
        if timeline is None or not timeline.items:
            continue
        cursor = cursors.get(conv, 0)
        # 1:1 keys are node timestamps: two nodes can stamp the same millisecond, so the
        # page starts AT the cursor, less the ids the client merged there. Group seqs are
        # unique: the page starts after the cursor.
        items = timeline.items
        last = items[-1]
        top = last.order_key
        if top <= cursor:
            # Nothing new — the common case, decided without a slice: a group page
            # starts after the cursor; a 1:1 page at it, and is empty when the one item
            # at the cursor key is among the ids the client merged (or holds) there.
            if top < cursor or timeline.is_group:
                continue
            if len(items) == 1 or items[-2].order_key < top:  # only one item at the top key
                last_id = last.message.msg_id
                if skip and (conv, last_id) in skip:
                    continue
                if merged_of is not None:
                    ids = merged_of.get(conv, ())
                    if last_id in ids if type(ids) is tuple else last_id == ids:
                        continue
        if unsettled is not None:
            unsettled.append(conv)
        if timeline.is_group:
            pending = timeline.after(cursor)
        else:
            pending = timeline.after(cursor, inclusive=True)
            ids = as_ids(merged_of.get(conv, ())) if merged_of is not None else ()
            if skip or ids:
                pending = [
                    i
                    for i in pending
                    if i.message.msg_id not in ids and (conv, i.message.msg_id) not in skip
                ]
        room = request.limit - len(out)
        if len(pending) > room:
            out.extend(pending[:room])
            if room and not timeline.is_group:
                covered.append((conv, pending[room - 1].order_key))
            if room and timeline.burnt:
                burnt += (
                    (conv, s) for s in timeline.burnt_between(cursor, pending[room - 1].order_key)
                )
            cut = conv
            break
        out.extend(pending)
        if timeline.burnt:
            burnt += ((conv, s) for s in timeline.burnt_between(cursor, top))
        if not timeline.is_group:
            covered.append((conv, top))
    return tuple(out), tuple(covered), tuple(burnt), cut, scanned


class SyncReader:
    """What a store keeps about one user's conversation sync, so that answering a request
    costs what changed rather than one look per conversation.

    ``conversations`` are the user's conversations in page (``repr``) order. A
    conversation is *settled* for a request when its page would be empty and it would
    not be listed as covered (nothing at or above the cursor the client lacks). Once
    settled it stays settled for every later request taken from the same client state
    (:attr:`~immodel.protocol.messages.SyncRequest.state`, with a larger ``state_no``):
    a client's cursors only move forward and the ids it names at an unchanged cursor key
    only grow. It becomes *unsettled* only when its timeline changes (the store calls
    :meth:`touch` on every append and burn) or when the user joins it. So the reader
    remembers the unsettled conversations of the last request it answered, and a later
    request from the same state needs to look only at those; a request from another
    state (the app lost its local state, a request built before the one last answered,
    a request that names no state) is answered by looking through every conversation,
    which starts the memory again. Either way the page, and ``scanned`` — what the
    answer is charged for: every conversation up to the one the page was cut in — are
    those of :func:`answer_sync`.
    """

    __slots__ = ("conversations", "state", "state_no", "unsettled")

    def __init__(self) -> None:
        self.conversations: list[Id] = []
        # since the request answered last; a list (usually of one or two: a set of any
        # size costs four times a short list's memory), each conversation once
        self.unsettled: list[Id] = []
        self.state: object = None  # that request's client state (None: remember nothing)
        self.state_no = 0

    def join(self, conversation: Id) -> bool:
        """Add ``conversation`` in page order; False if the user is a member already."""
        convs = self.conversations
        name = repr(conversation)
        i = j = bisect_right(convs, name, key=repr)
        while j and repr(convs[j - 1]) == name:  # printed alike: a member already?
            if convs[j - 1] == conversation:
                return False
            j -= 1
        convs.insert(i, conversation)
        self.unsettled.append(conversation)  # new: not among them yet
        return True

    def touch(self, conversation: Id) -> None:
        """``conversation``'s timeline changed: look at it again on the next request."""
        if conversation not in self.unsettled:
            self.unsettled.append(conversation)

    def answer(self, request: SyncRequest, timelines: Mapping[Id, Timeline]) -> SyncResponse:
        """One page for ``request`` (see :func:`answer_sync`), looking only at the
        conversations that may have changed when the request allows it."""
        convs = self.conversations
        state = request.state
        unsettled: list[Id] = []
        if state is not None and state is self.state and request.state_no >= self.state_no:
            look = sorted(self.unsettled, key=repr) if len(self.unsettled) > 1 else self.unsettled
            items, covered, burnt, cut, _ = _page(request, look, timelines, unsettled)
            if cut is None:
                scanned = len(convs)
            else:  # charged as the full walk would be: up to the conversation cut in
                scanned = bisect_left(convs, repr(cut), key=repr)
                while convs[scanned] != cut:
                    scanned += 1
                scanned += 1
                look = list(look)
                unsettled += look[look.index(cut) + 1 :]  # not looked at
        else:
            items, covered, burnt, cut, scanned = _page(request, convs, timelines, unsettled)
            if cut is not None:  # the rest was not looked at
                unsettled += convs[scanned:]
        self.unsettled = unsettled
        self.state = state
        self.state_no = request.state_no
        return SyncResponse(request.user, items, cut is None, covered, scanned, burnt)

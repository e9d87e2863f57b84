"""The receiving client: ACK, de-duplicate, order, and sync (article, step 4 and figure 4).

What arrives at a client — pushed or polled copies, and pages of sync answers — becomes
:class:`~immodel.protocol.messages.Show` actions: the messages the user sees, each once,
in the order the user would see them.

**ACK.** Every arriving copy is acknowledged (duplicates too: the ACK may have been the
packet that was lost), so the server's pending-ACK entry goes away.

**Client dedup.** The client remembers the ids it has shown for ``dedup_window_s``
seconds and drops a copy it already showed (a retransmission whose ACK was lost). With
``dedup=False`` a copy is shown again: the user sees a duplicate. Sync merges always
check what was shown: merging into the local store is by id.

**Order and cursors.** One cursor per conversation.

* *Groups* — the cursor is the highest seq shown contiguously. A copy with seq = cursor+1
  is shown at once, then any held successors; a larger seq reveals a gap: the copy is held
  back and a sync is requested; nothing is shown past a gap, so a group is always shown in
  seq order. (With sync off a gap could never be filled, so copies are shown on arrival:
  order is then only as good as the network.)
* *1:1* — timestamps have no gaps to detect, so a pushed copy is shown on arrival and,
  as the article says, every receipt triggers a sync by timestamp cursor, which fills in
  what a failed retransmission lost. The client names the 1:1 copies it already holds
  above its cursor (pushed copies it showed, its own messages the server confirmed), so
  the page carries only what it lacks, and the page's ``covered`` keys move the cursor
  over what it held.

**Triggers.** Three things start a sync, each switchable (``sync_on_receipt``,
``sync_on_gap``, ``sync_on_reconnect``; ``sync_enabled`` is the master switch): a 1:1
receipt, a group seq gap, a (re)connect (:meth:`Receiver.handle_connected`). Every
message a sync page shows carries the trigger that started the sync, so a run can say
which mechanism repaired what. With ``sync_on_gap`` off a group gap still holds later
copies back (the order is kept) until a sync started otherwise fills it.

**Gap wait.** Real group fan-out runs on several workers that finish out of order, so
seq n+1 often arrives a few milliseconds before seq n: a gap that fills by itself. With
``gap_wait_s`` > 0 the receiver does not sync at once on a gap seen in a pushed or
polled copy: it sets a gap deadline (:meth:`Receiver.next_deadline`), cancels it when
the missing seqs arrive, and syncs only if the gap is still open when the deadline
passes (:meth:`Receiver.handle_timeout`). ``gap_wait_s`` = 0 syncs at once.

**Burnt seqs.** A write that fails after the sequencer handed out its seq leaves a seq
that no message will ever carry. A sync page lists the burnt seqs of each group above
the reader's cursor (``SyncResponse.burnt``); the receiver steps its cursor over them
as over its own messages, so a burnt seq is a gap that closes instead of one waited on
forever.

A cursor moves only when a sync page is merged (or, for groups, contiguously), never
because a push arrived, so a push that overtakes a sync cannot carry a cursor past a
gap. Syncs are coalesced: one in flight at a time; a receipt during a sync asks for one
more when it completes; an incomplete page asks for the next page; an unanswered sync is
repeated after ``sync_timeout_s``. A page carries no request id, so the page merged may
answer an earlier request (the late answer to a sync that was repeated, or a duplicate):
merging it is safe (a page is a prefix of the store), but it may have been cut before a
gap's message was stored, so a page that leaves a copy held behind a gap asks again.

**What a request promises.** Within one local state (until :meth:`Receiver.reset`)
a cursor never moves back, and the ids merged at a cursor key only grow while the key
stays (a held copy at that key moves into them when a page covers it). So a request
names its state and its number in it (``SyncRequest.state``, ``state_no``): whatever a
store found nothing new in for an earlier request of the same state it finds nothing
new in for this one unless the conversation changed since, and it may skip looking
(:class:`~immodel.protocol.sync.SyncReader`). A reset starts a new state. From
:data:`SNAPSHOT_FROM_CURSORS` cursors on, the cursors and the ids merged at them travel
as :class:`~immodel.protocol.messages.Snapshot` views of the receiver's mappings:
building a request copies nothing, and a request in flight still reads the cursors it
left with (a group push may move one meanwhile); fewer are copied.

The reader's own messages appear in sync pages (a conversation's timeline holds every
member's messages): they are never shown, but they count for a group's contiguity. The
sender also reports its own stored group messages (:meth:`Receiver.note_own`) so its
cursor does not stall at its own seq.

**Inbox sync** (``inbox=True``, ``reliability.sync_cursor = "inbox"``; see
:mod:`immodel.protocol.inbox`). The request carries one inbox cursor instead of a cursor
per conversation, and names what the client holds above it (pushed copies, its own
stored messages) so the page leaves them out. The cursor moves only when a page is
merged, to the page's ``inbox_top``. What a page brings is merged by the same rules:
group items through the seq cursor (contiguity, gap hold-back, burnt seqs), 1:1 items
shown in server-timestamp order, each id once, own messages skipped. The per-group seq
cursors stay (they are what orders a group); 1:1 conversations need no cursor of their
own.
"""

from __future__ import annotations

from immodel.protocol.messages import (
    Id,
    SendAck,
    Show,
    Snapshot,
    StartSync,
    Stored,
    SyncRequest,
    SyncResponse,
    as_ids,
)

Action = Show | SendAck | StartSync

#: From how many cursors a sync request carries snapshots of them instead of copies
#: (:class:`~immodel.protocol.messages.Snapshot`): a copy costs a step per cursor on
#: both sides, a snapshot a few calls per request whatever their number; about equal
#: at a few dozen cursors (counted in instructions), and a copy also touches every
#: cursor's objects in memory, which costs more in a large run.
SNAPSHOT_FROM_CURSORS = 16


class Receiver:
    """One client's receiving side (one device).

    Configuration: ``ack`` (send ACKs), ``dedup`` (client dedup of pushed copies),
    ``sync_enabled`` (cursor sync on receipt, on a gap and on :meth:`request_sync`),
    ``dedup_window_s``, ``sync_limit`` (page size), ``sync_timeout_s``, ``gap_wait_s``
    (how long a group gap may stay open before it triggers a sync; 0: sync at once),
    ``inbox`` (sync by one inbox cursor instead of one cursor per conversation).
    Containers are created on first use: an idle client costs a few hundred bytes.
    """

    __slots__ = (
        "_above",
        "_again_trigger",
        "_cursor",
        "_cursor_snap",
        "_edge",
        "_edge_snap",
        "_gap_deadline",
        "_held",
        "_inbox_cursor",
        "_inbox_held",
        "_inbox_sent",
        "_merged_ids",
        "_seen",
        "_seen_next",
        "_state",
        "_state_no",
        "_sync_again",
        "_sync_deadline",
        "_trigger",
        "ack",
        "dedup",
        "dedup_window_s",
        "gap_wait_s",
        "inbox",
        "sync_enabled",
        "sync_limit",
        "sync_on_gap",
        "sync_on_receipt",
        "sync_on_reconnect",
        "sync_timeout_s",
        "user",
    )

    def __init__(
        self,
        user: Id,
        *,
        ack: bool = True,
        dedup: bool = True,
        sync_enabled: bool = True,
        dedup_window_s: float = 600.0,
        sync_limit: int = 100,
        sync_timeout_s: float = 10.0,
        sync_on_receipt: bool = True,
        sync_on_gap: bool = True,
        sync_on_reconnect: bool = True,
        gap_wait_s: float = 0.0,
        inbox: bool = False,
    ) -> None:
        self.user = user
        self.ack = ack
        self.dedup = dedup
        self.sync_enabled = sync_enabled
        self.sync_on_receipt = sync_on_receipt
        self.sync_on_gap = sync_on_gap
        self.sync_on_reconnect = sync_on_reconnect
        self.dedup_window_s = dedup_window_s
        self.sync_limit = sync_limit
        self.sync_timeout_s = sync_timeout_s
        self.gap_wait_s = gap_wait_s
        self._gap_deadline: float | None = None  # when an open gap asks for a sync
        # msg_id → forget-at time, oldest first: a plain dict keeps insertion order, and
        # a shown id shown again (client dedup off) is deleted and put back at the end; an
        # OrderedDict kept a node per id beside the table (~80 bytes more per client
        # holding a few ids). The forget-at time of the oldest id is kept beside it, so
        # an arrival looks at the table's head only when something is due to be forgotten
        # (a dict's iteration walks over the slots deleted at its head).
        self._seen: dict[Id, float] | None = None
        self._seen_next = 0.0  # the oldest id's forget-at time (while _seen holds any)
        self._cursor: dict[Id, int] | None = None
        # 1:1 only: ids merged at the cursor key (pages start at that key; see sync.py):
        # one id (the common case) by itself, else a tuple sorted by repr (the order a
        # request names them in; see messages.as_ids) — a tuple of one cost 48 bytes per
        # conversation, a set five times that
        self._edge: dict[Id, Id | tuple[Id, ...]] | None = None
        # how many ids _edge holds (what a request names), counted once snapshots are
        # taken (a copy counts itself)
        self._merged_ids = 0
        # The newest snapshots of _cursor and _edge that a request carries (Snapshot):
        # each change to either is first kept in them, so a request in flight still
        # reads the cursors it was built with, and building one copies nothing.
        self._cursor_snap: Snapshot | None = None
        self._edge_snap: Snapshot | None = None
        self._held: dict[Id, dict[int, Stored | None]] | None = None  # group → seq → item
        # 1:1 only: copies held above the cursor, conversation → (msg_id, key) for one
        # (the common case: a dict of one cost three times the pair) or {msg_id: key} for
        # several; None when none is held
        self._above: dict[Id, tuple[Id, int] | dict[Id, int]] | None = None
        self._sync_deadline: float | None = None
        self._sync_again = False
        self._trigger = ""  # what started the sync in flight
        self._again_trigger = ""  # what asked for one more while it was in flight
        self.inbox = inbox
        self._inbox_cursor = 0  # inbox mode: the inbox seq merged up to
        # inbox mode: what the client holds above its inbox cursor, as the pairs a request
        # names — (conversation, msg_id) for 1:1, (group, seq) for groups (a message
        # stored twice has two seqs, and each must reach the group's seq cursor)
        self._inbox_held: dict[tuple[Id, Id], None] | None = None
        self._inbox_sent: tuple[tuple[Id, Id], ...] = ()  # the held pairs last requested
        # what the requests promise (SyncRequest.state): this local state, replaced when
        # it is lost, and the number of the last request taken from it
        self._state: object = None
        self._state_no = 0

    # -- arrivals -------------------------------------------------------------------------
    def handle_push(self, item: Stored, now: float) -> list[Action]:
        """A pushed or polled copy arrived."""
        message = item.message  # its fields read once: this runs for every copy
        msg_id, is_group = message.msg_id, message.is_group
        actions: list[Action] = [SendAck((msg_id,))] if self.ack else []
        if message.sender == self.user:
            return actions
        if is_group and self.sync_enabled:
            if self.inbox:
                self._inbox_hold(message.conversation, item.order_key)
            # even a copy already shown moves the cursor over its seq (a message stored
            # twice has two seqs), else it would stand as a gap
            self._arrive_in_group(item, "push", now, actions)
            return actions
        if not is_group and self.sync_enabled:
            self._hold_above(message.conversation, msg_id, item.order_key)
        if self.dedup and self._was_shown(msg_id, now):
            return actions
        self._show(item, "push", now, actions)
        if not is_group and self.sync_enabled and self.sync_on_receipt:
            actions.extend(self.request_sync(now, "receipt"))
        return actions

    def handle_sync_response(self, response: SyncResponse, now: float) -> list[Action]:
        """Merge one page of a sync answer, then advance the cursors it covered."""
        actions: list[Action] = []
        if self._sync_deadline is None:
            return actions  # an answer to a sync abandoned by a disconnect
        self._sync_deadline = None
        if self.inbox:
            return self._merge_inbox_page(response, now, actions)
        advanced: dict[Id, int] = {}
        at_top: dict[Id, set[Id]] = {}  # ids merged at each conversation's highest key
        cursor = self._cursors()
        edge = self._edge
        if edge is None:
            edge = self._edge = {}
        trigger = self._trigger
        for conv, seq in response.burnt:
            self._burnt(conv, seq, now, actions)
        for item in response.items:
            if item.is_group:
                self._arrive_in_group(item, "sync", now, actions, trigger)
                continue
            conv, key = item.conversation, item.order_key
            cur = cursor.get(conv, 0)
            if key <= cur:
                if key < cur:
                    continue  # merged by an earlier page
                ids = edge.get(conv, ())
                if item.msg_id in ids if type(ids) is tuple else item.msg_id == ids:
                    continue  # merged at the cursor key by an earlier page
            if item.message.sender != self.user and not self._was_shown(item.msg_id, now):
                self._show(item, "sync", now, actions, trigger)
            top = advanced.get(conv)
            if top is None or key > top:
                advanced[conv] = key
                at_top[conv] = {item.msg_id}
            elif key == top:
                at_top[conv].add(item.msg_id)
        above = self._above
        for conv, key in response.covered:
            top = advanced.get(conv)
            if top is None or key > top:
                advanced[conv] = key
                at_top[conv] = set()
            held = above.get(conv) if above else None
            if held is None:
                continue
            if type(held) is tuple:
                msg_id, k = held
                if k <= key:
                    del above[conv]
                    if k == key:
                        at_top[conv].add(msg_id)
                continue
            for msg_id, k in list(held.items()):
                if k <= key:
                    del held[msg_id]
                    if k == key:
                        at_top[conv].add(msg_id)
            if not held:
                del above[conv]
        if above is not None and not above:
            self._above = None  # nothing held: the empty table is not kept
        cursor_snap, edge_snap = self._cursor_snap, self._edge_snap
        for conv, key in advanced.items():
            old = as_ids(edge.get(conv, ()))
            if key > cursor.get(conv, 0):
                if cursor_snap is not None:
                    cursor_snap.keep(conv)
                cursor[conv] = key
                ids = at_top[conv]
            else:
                ids = at_top[conv].union(old)
            if len(ids) == 1:  # the common case: the id itself (see as_ids), no sort
                (new,) = ids
                if type(new) is tuple:
                    new = (new,)
            else:
                new = tuple(sorted(ids, key=repr))
            if edge_snap is not None:  # and the count its successor will report
                edge_snap.keep(conv)
                self._merged_ids += len(ids) - len(old)
            edge[conv] = new
        self._next_sync_if_needed(response.complete, trigger, now, actions)
        return actions

    def handle_connected(self, now: float) -> list[Action]:
        """A (re)connect completed: sync what was missed while away (``sync_on_reconnect``)."""
        if not self.sync_on_reconnect:
            return []
        return self.request_sync(now, "reconnect")

    def note_own(
        self,
        conversation: Id,
        order_key: int,
        now: float,
        *,
        msg_id: Id = None,
        is_group: bool = True,
    ) -> list[Action]:
        """The server stored one of this user's own messages under ``order_key``.

        Group: returns the :class:`Show` actions of held copies that this seq unblocks
        (the own message may be the gap that held them back). 1:1 (``is_group=False``,
        with ``msg_id``): the client holds it, so later sync pages leave it out.
        """
        actions: list[Action] = []
        if not self.sync_enabled:
            return actions
        if not is_group:
            self._hold_above(conversation, msg_id, order_key)
            return actions
        if self.inbox:
            self._inbox_hold(conversation, order_key)
        cursor = self._cursors()
        cur = cursor.get(conversation, 0)
        if order_key <= cur:
            return actions
        if order_key == cur + 1:
            if self._cursor_snap is not None:
                self._cursor_snap.keep(conversation)
            cursor[conversation] = order_key
            self._release(conversation, now, actions)
        else:
            self._held_for(conversation)[order_key] = None
        return actions

    # -- sync -----------------------------------------------------------------------------
    def request_sync(self, now: float, trigger: str = "reconnect") -> list[Action]:
        """Ask for a sync (coalesced with one already in flight); ``trigger`` says why."""
        if not self.sync_enabled:
            return []
        if self._sync_deadline is not None:
            self._sync_again = True
            if not self._again_trigger:
                self._again_trigger = trigger
            return []
        return self._start_sync(now, trigger)

    def _start_sync(self, now: float, trigger: str) -> list[Action]:
        self._sync_deadline = now + self.sync_timeout_s
        self._trigger = trigger
        if self.inbox:
            sent = self._inbox_sent = tuple(self._inbox_held) if self._inbox_held else ()
            request = SyncRequest(self.user, (), self.sync_limit, (), sent, self._inbox_cursor)
            return [StartSync(request)]
        # The request names every cursor, in the mappings' insertion order (which the
        # run decides deterministically). A handful are copied; beyond that the request
        # carries snapshots of the two mappings, which copy nothing but cost a few calls
        # per request and per change (once snapshots are taken, they stay: the number of
        # cursors only grows, until a reset).
        cursor = self._cursor
        edge = self._edge
        cursors: tuple[tuple[Id, int], ...] | Snapshot = ()
        merged: tuple[tuple[Id, Id], ...] | Snapshot = ()
        if cursor is None or len(cursor) < SNAPSHOT_FROM_CURSORS:
            if cursor:
                cursors = tuple(cursor.items())
            if edge:  # flat, as a Snapshot with flat=True reports them
                merged = tuple([(conv, m) for conv, ids in edge.items() for m in as_ids(ids)])
        else:
            if edge is None:
                edge = self._edge = {}
            if self._edge_snap is None:  # the first snapshot: count from here on
                self._merged_ids = sum(len(as_ids(ids)) for ids in edge.values())
            cursors = Snapshot(cursor, len(cursor))
            merged = Snapshot(edge, self._merged_ids, flat=True)
            if self._cursor_snap is not None:  # changes from now on are kept in the new
                self._cursor_snap.follow(cursors)
                self._edge_snap.follow(merged)
            self._cursor_snap, self._edge_snap = cursors, merged
        held: tuple[tuple[Id, Id], ...] = ()
        if self._above:  # a loop, not a generator: a receipt sync names one or two
            pairs = []
            for conv, ids in self._above.items():
                if type(ids) is tuple:  # one held: (msg_id, key)
                    pairs.append((conv, ids[0]))
                    continue
                for m in ids:
                    pairs.append((conv, m))
            held = tuple(pairs)
        state = self._state
        if state is None:
            state = self._state = object()
        self._state_no += 1
        request = SyncRequest(
            self.user, cursors, self.sync_limit, merged, held, -1, state, self._state_no
        )
        return [StartSync(request)]

    def handle_timeout(self, now: float) -> list[Action]:
        """Repeat a sync that was not answered in time; sync on a gap that stayed open
        for ``gap_wait_s``."""
        actions: list[Action] = []
        if self._sync_deadline is not None and self._sync_deadline <= now:
            self._sync_deadline = None
            actions.extend(self._start_sync(now, self._trigger))
        if self._gap_deadline is not None and self._gap_deadline <= now:
            self._gap_deadline = None
            if self._gap_open():
                actions.extend(self.request_sync(now, "gap"))
        return actions

    def next_deadline(self) -> float | None:
        """The earliest of: when an unanswered sync must be repeated, when an open gap
        asks for a sync (None: neither)."""
        sync, gap = self._sync_deadline, self._gap_deadline
        if gap is None:
            return sync
        return gap if sync is None or gap < sync else sync

    @property
    def syncing(self) -> bool:
        return self._sync_deadline is not None

    def disconnect(self) -> None:
        """The connection dropped: an in-flight sync's answer will never come."""
        self._sync_deadline = None
        self._sync_again = False
        self._again_trigger = ""
        self._gap_deadline = None  # the reconnect sync fills what the gap lacked

    def reset(self) -> None:
        """The app restarted without its local state (cursors, shown ids, held copies)."""
        self._seen = self._cursor = self._held = self._edge = self._above = None
        self._cursor_snap = self._edge_snap = None  # requests in flight keep the old ones
        self._merged_ids = 0
        self._state = None  # the cursors start again: no later request extends the old
        self._inbox_cursor = 0
        self._inbox_held = None
        self._inbox_sent = ()
        self.disconnect()

    # -- inspection -----------------------------------------------------------------------
    def cursor(self, conversation: Id) -> int:
        """The conversation's cursor (0 before anything was merged)."""
        return self._cursor.get(conversation, 0) if self._cursor else 0

    def held(self, conversation: Id) -> int:
        """Group copies held back behind a gap."""
        return len(self._held.get(conversation, ())) if self._held else 0

    @property
    def inbox_cursor(self) -> int:
        """Inbox mode: the inbox seq merged up to (0 before the first page)."""
        return self._inbox_cursor

    # -- internals ------------------------------------------------------------------------
    def _cursors(self) -> dict[Id, int]:
        if self._cursor is None:
            self._cursor = {}
        return self._cursor

    def _held_for(self, group: Id) -> dict[int, Stored | None]:
        if self._held is None:
            self._held = {}
        return self._held.setdefault(group, {})

    def _was_shown(self, msg_id: Id, now: float) -> bool:
        seen = self._seen
        if not seen:
            return False
        if self._seen_next <= now:
            self._forget_shown(now)
        return msg_id in seen

    def _forget_shown(self, now: float) -> None:
        """Forget the shown ids whose window ended, oldest first, up to the first that
        is still remembered (in the order they were shown)."""
        seen = self._seen
        due = []
        for msg_id, forget_at in seen.items():
            if forget_at > now:
                self._seen_next = forget_at
                break
            due.append(msg_id)
        for msg_id in due:
            del seen[msg_id]

    def _hold_above(self, conv: Id, msg_id: Id, key: int) -> None:
        """Remember a 1:1 item the client has above its cursor (left out of pages)."""
        if self.inbox:
            self._inbox_hold(conv, msg_id)
            return
        cursor = self._cursor  # self.cursor(conv), written out
        if key < (cursor.get(conv, 0) if cursor else 0):
            return  # a page already covered it
        above = self._above
        if above is None:
            above = self._above = {}
        held = above.get(conv)
        if held is None:
            above[conv] = (msg_id, key)
        elif type(held) is not tuple:
            held[msg_id] = key
        elif held[0] == msg_id:  # held again: its key replaced, as in a dict
            above[conv] = (held[0], key)
        else:
            above[conv] = {held[0]: held[1], msg_id: key}

    def _show(
        self, item: Stored, via: str, now: float, actions: list[Action], trigger: str = ""
    ) -> None:
        seen = self._seen
        msg_id = item.message.msg_id
        forget_at = now + self.dedup_window_s
        if not seen:
            if seen is None:
                seen = self._seen = {}
            seen[msg_id] = self._seen_next = forget_at
        elif msg_id in seen:  # shown again (client dedup off): remembered from now on
            del seen[msg_id]
            seen[msg_id] = forget_at
            self._seen_next = next(iter(seen.values()))
        else:
            seen[msg_id] = forget_at
        actions.append(Show(item, via, trigger))

    def _arrive_in_group(
        self, item: Stored, via: str, now: float, actions: list[Action], trigger: str = ""
    ) -> None:
        conv, seq = item.conversation, item.order_key
        cursor = self._cursors()
        cur = cursor.get(conv, 0)
        own = item.message.sender == self.user
        if seq <= cur:
            if via == "push" and not self.dedup and not own:
                self._show(item, via, now, actions)  # no client dedup: the user sees it again
            return
        held = self._held_for(conv)
        if seq in held:
            return
        if seq == cur + 1:
            if self._cursor_snap is not None:
                self._cursor_snap.keep(conv)
            cursor[conv] = seq
            # a sync merge is always by id; a pushed copy only with client dedup on
            shown = (via == "sync" or self.dedup) and self._was_shown(item.msg_id, now)
            if not own and not shown:
                self._show(item, via, now, actions, trigger)
            self._release(conv, now, actions)
            return
        held[seq] = None if own else item
        if via == "push" and self.sync_on_gap:
            if self.gap_wait_s <= 0.0:
                actions.extend(self.request_sync(now, "gap"))
            elif self._gap_deadline is None and not own:
                self._gap_deadline = now + self.gap_wait_s

    def _burnt(self, conv: Id, seq: int, now: float, actions: list[Action]) -> None:
        """A sync page says no message will ever carry ``seq`` of group ``conv``."""
        cursor = self._cursors()
        cur = cursor.get(conv, 0)
        if seq <= cur:
            return
        if seq == cur + 1:
            if self._cursor_snap is not None:
                self._cursor_snap.keep(conv)
            cursor[conv] = seq
            self._release(conv, now, actions)
        else:
            self._held_for(conv).setdefault(seq, None)

    def _next_sync_if_needed(
        self, complete: bool, trigger: str, now: float, actions: list[Action]
    ) -> None:
        """After a page is merged: ask for the next one when the page was cut, a sync
        was asked for meanwhile, or a group gap is still open (the trigger carried on:
        the one asked for meanwhile, "gap", or this sync's own)."""
        gap = self.sync_on_gap and self._gap_open()
        if not complete or self._sync_again or gap:
            again = self._again_trigger or ("gap" if gap and complete else trigger)
            self._sync_again = False
            self._again_trigger = ""
            actions.extend(self._start_sync(now, again))

    def _gap_open(self) -> bool:
        """A copy of someone else's message is held behind a gap."""
        return bool(self._held) and any(
            item is not None for held in self._held.values() for item in held.values()
        )

    def _release(self, conv: Id, now: float, actions: list[Action]) -> None:
        held = self._held.get(conv) if self._held else None
        if not held:
            return
        cursor = self._cursors()
        nxt = cursor[conv] + 1
        if nxt in held and self._cursor_snap is not None:
            self._cursor_snap.keep(conv)
        while nxt in held:
            item = held.pop(nxt)
            if item is not None and not self._was_shown(item.msg_id, now):
                self._show(item, "push", now, actions)
            cursor[conv] = nxt
            nxt += 1
        if not held:
            del self._held[conv]
        if self._gap_deadline is not None and not self._gap_open():
            self._gap_deadline = None  # the gap filled by itself: no sync needed

    # -- inbox sync -----------------------------------------------------------------------
    def _inbox_hold(self, conv: Id, key: Id) -> None:
        """Inbox mode: the client holds this item; the next request names it."""
        if self._inbox_held is None:
            self._inbox_held = {}
        self._inbox_held[(conv, key)] = None

    def _merge_inbox_page(
        self, response: SyncResponse, now: float, actions: list[Action]
    ) -> list[Action]:
        """Inbox mode: merge one page, move the inbox cursor to its top, ask again if
        it was cut, a gap stayed open or a receipt came meanwhile."""
        trigger = self._trigger
        for conv, seq in response.burnt:
            self._burnt(conv, seq, now, actions)
        ones: list[Stored] = []
        for item in response.items:
            if item.is_group:
                self._arrive_in_group(item, "sync", now, actions, trigger)
            elif item.message.sender != self.user:
                ones.append(item)
        if len(ones) > 1:
            # inbox order is store order; a 1:1 chat is shown by server timestamp (stable:
            # equal stamps keep store order)
            ones.sort(key=_order_key)
        for item in ones:
            if not self._was_shown(item.msg_id, now):
                self._show(item, "sync", now, actions, trigger)
        if response.inbox_top > self._inbox_cursor:
            self._inbox_cursor = response.inbox_top
        if response.complete and self._inbox_sent:
            # everything the request named was stored before it left: this page covers it
            held = self._inbox_held
            if held:
                for pair in self._inbox_sent:
                    held.pop(pair, None)
            self._inbox_sent = ()
        self._next_sync_if_needed(response.complete, trigger, now, actions)
        return actions


def _order_key(item: Stored) -> int:
    return item.order_key

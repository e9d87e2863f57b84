"""The server's side of delivery: dedup, store, order, route, pending ACKs, crash.

Durable and volatile state are kept apart because the article's whole argument turns on
which survives a crash:

* :class:`MessageStore` — **durable**, shared by all nodes: the conversations'
  timelines (what sync reads), each user's conversations, the offline queues of users
  who were not connected, and the group sequencers.
* :class:`ServerNode` — one node's **volatile** state: its dedup window (durable only if
  configured so), its pending-ACK table, its 1:1 timestamp clock. :meth:`ServerNode.crash`
  drops it.

A send goes through a node like this (the simulator adds the time each step takes)::

    begin_send ─► NEW ──► (admission stages) ─► commit ─► SendReply(accepted, key)
         │                         └─reject──► SendReply(rejected, reason)   [final]
         │                         └─store_failed ─► SendReply(retryable)    [not final]
         ├─► IN_PROGRESS: drop this copy (the first one's reply will answer)
         └─► DONE: resend the original reply (same key) — nothing stored twice

then :meth:`ServerNode.route` hands the stored message to each recipient: pushed now
(pending-ACK with retransmit), put in a polling recipient's outbox, or kept in the
durable offline queue for a recipient who is not connected. On login, the offline queue
moves to the downlink (:meth:`ServerNode.login`); on a clean disconnect, what was not
acknowledged moves back to it (:meth:`ServerNode.disconnect`).
"""

from __future__ import annotations

from collections.abc import Iterable

from immodel.protocol.dedup import DedupWindow, Verdict
from immodel.protocol.inbox import Inboxes
from immodel.protocol.messages import (
    Deliver,
    Id,
    Message,
    SendReply,
    Stored,
    SyncRequest,
    SyncResponse,
)
from immodel.protocol.ordering import Sequencer
from immodel.protocol.pending_ack import PendingAcks
from immodel.protocol.sync import SyncReader, Timeline, answer_sync


class MessageStore:
    """Durable storage: timelines, memberships, offline queues, group seq.

    Each user's conversations are kept by a :class:`~immodel.protocol.sync.SyncReader`,
    which also remembers which of them changed since the user's last sync, and each
    conversation's timeline (made when its first member joins) knows its readers, so
    that a write can tell them: a sync then costs what changed, not a look at every
    conversation of the user.

    With ``inbox`` (``reliability.sync_cursor = "inbox"``) the store also keeps each
    member's inbox (:class:`~immodel.protocol.inbox.Inboxes`) and answers a sync request
    that carries an inbox cursor from it.
    """

    __slots__ = (
        "_readers",
        "group_sequencer",
        "inboxes",
        "offline",
        "timelines",
    )

    def __init__(self, *, inbox: bool = False) -> None:
        self.inboxes: Inboxes | None = Inboxes() if inbox else None
        self.timelines: dict[Id, Timeline] = {}
        self._readers: dict[Id, SyncReader] = {}  # user → its conversations and sync memory
        self.offline: dict[Id, list[Stored]] = {}
        self.group_sequencer = Sequencer()

    def join(self, user: Id, conversation: Id) -> None:
        """Make ``user`` a member of ``conversation`` (what sync looks through)."""
        reader = self._readers.get(user)
        if reader is None:
            reader = self._readers[user] = SyncReader()
        if reader.join(conversation):
            timeline = self._timeline(conversation)
            # its readers: a list while members join, a tuple from the first item on
            readers = timeline.readers
            if type(readers) is list:
                readers.append(reader)
            elif not timeline.items:
                timeline.readers = [*readers, reader]
            else:  # a member joining after the first item (rare): the tuple rebuilt
                timeline.readers = (*readers, reader)
            if self.inboxes is not None:
                self.inboxes.join(user, conversation)

    def conversations_of(self, user: Id) -> Iterable[Id]:
        reader = self._readers.get(user)
        return reader.conversations if reader is not None else ()

    def _timeline(self, conversation: Id) -> Timeline:
        """The conversation's timeline, made empty if it has none yet."""
        timeline = self.timelines.get(conversation)
        if timeline is None:
            timeline = self.timelines[conversation] = Timeline()
        return timeline

    def append(self, item: Stored) -> None:
        """Store ``item`` in its conversation's timeline."""
        conversation = item.message.conversation
        timeline = self.timelines.get(conversation)
        if timeline is None:  # _timeline(), written out: one call less on every write
            timeline = self.timelines[conversation] = Timeline()
        timeline.add(item)
        for reader in timeline.readers:
            unsettled = reader.unsettled  # SyncReader.touch, written out
            if conversation not in unsettled:
                unsettled.append(conversation)
        if self.inboxes is not None:
            self.inboxes.append(item)

    @property
    def stored_copies(self) -> dict[Id, int]:
        """msg_id → times stored (1 unless a retry outlived the dedup window), counted from
        the timelines when asked: a table kept up to date cost ~30 bytes per message for
        the life of the run, and only tests and observers read it (the simulator's
        records count the copies themselves)."""
        copies: dict[Id, int] = {}
        for timeline in self.timelines.values():
            for item in timeline.items:
                msg_id = item.message.msg_id
                copies[msg_id] = copies.get(msg_id, 0) + 1
        return copies

    def burn_seq(self, group: Id) -> int:
        """A group write failed after taking its seq: the seq is burnt (never carried by
        a message, listed in sync pages so readers step over it). Returns the seq."""
        seq = self.group_sequencer.next_seq(group)
        timeline = self._timeline(group)
        timeline.burn(seq)
        for reader in timeline.readers:
            reader.touch(group)
        if self.inboxes is not None:
            self.inboxes.burn(group, seq)
        return seq

    def answer_sync(self, request: SyncRequest) -> SyncResponse:
        """One page of what ``request.user`` has not merged yet."""
        if request.inbox_cursor >= 0:
            if self.inboxes is None:
                raise ValueError("an inbox sync request to a store kept without inboxes")
            return self.inboxes.answer(request)
        reader = self._readers.get(request.user)
        if reader is None:
            return answer_sync(request, (), self.timelines, in_order=True)
        return reader.answer(request, self.timelines)


def login_pushes_queue(*, one_transfer: bool, sync_follows: bool) -> bool:
    """Whether a login pushes the offline queue to the device.

    Today's deployments push the queue **and** let the reconnect sync run with the
    device's stale cursors, so each message of the backlog crosses the network twice
    (``one_transfer=False``). For a backlog to cross once, one of the two must carry it:
    when a reconnect sync follows the login (``sync_follows``), the sync page does — it
    reads the same durable store, in order, leaves out what the device already holds
    (``SyncRequest.held``, its group cursors) and batches up to a page per response, where
    the queue costs a frame and an ACK per message — and the queue is dropped. Without a
    reconnect sync the queue is the only carrier and is pushed.
    """
    return not (one_transfer and sync_follows)


class ServerNode:
    """One server node: the decisions of the send path and the downlink.

    ``clock_offset_s`` skews this node's clock for 1:1 timestamps (``clock_skew``).
    ``member_copies`` false is read diffusion: a group message is kept only on the group
    timeline, never per member, so a member who is not connected gets no offline copy
    (its reconnect sync reads the timeline).
    """

    __slots__ = (
        "clock_offset_s",
        "dedup",
        "dedup_durable",
        "member_copies",
        "node_id",
        "pending",
        "stamper",
        "store",
    )

    def __init__(
        self,
        node_id: int,
        store: MessageStore,
        *,
        dedup: DedupWindow | None = None,
        pending: PendingAcks | None = None,
        dedup_durable: bool = False,
        clock_offset_s: float = 0.0,
        member_copies: bool = True,
    ) -> None:
        self.node_id = node_id
        self.member_copies = member_copies
        self.store = store
        self.dedup = dedup if dedup is not None else DedupWindow()
        self.pending = pending if pending is not None else PendingAcks()
        self.dedup_durable = dedup_durable
        self.clock_offset_s = clock_offset_s
        self.stamper = Sequencer()

    # -- send path ------------------------------------------------------------------------
    def begin_send(self, message: Message, now: float) -> tuple[Verdict, SendReply | None]:
        """A copy of a send arrived: process it, drop it, or answer with the original reply."""
        return self.dedup.begin(message.msg_id, now)

    def commit(self, message: Message, now: float) -> tuple[Stored, SendReply]:
        """Admission passed and the write succeeded: assign the order key and store."""
        if message.is_group:
            key = self.store.group_sequencer.next_seq(message.conversation)
        else:
            key = self.stamper.stamp(message.conversation, now + self.clock_offset_s)
        item = Stored(message, key)
        self.store.append(item)
        reply = SendReply(message.msg_id, True, key)
        self.dedup.complete(message.msg_id, reply, now)
        return item, reply

    def reject(self, message: Message, reason: str, now: float) -> SendReply:
        """Admission said no: a final answer, remembered like a success."""
        reply = SendReply(message.msg_id, False, None, reason)
        self.dedup.complete(message.msg_id, reply, now)
        return reply

    def store_failed(self, message: Message, *, burn_seq: bool = False) -> SendReply:
        """The write failed: the sender must not hear "success" and may retry.

        ``burn_seq``: a group write failed after the sequencer handed out its seq, which
        no message will carry now (:meth:`MessageStore.burn_seq`)."""
        if burn_seq and message.is_group:
            self.store.burn_seq(message.conversation)
        self.dedup.abort(message.msg_id)
        return SendReply(message.msg_id, False, None, "store_failed", retryable=True)

    # -- downlink -------------------------------------------------------------------------
    def route(self, item: Stored, recipient: Id, mode: str | None, now: float) -> list[Deliver]:
        """Hand ``item`` to ``recipient``: ``mode`` is "push", "poll" or None (offline)."""
        if mode == "push":
            return self.pending.push(recipient, item, now)
        if mode == "poll":
            self.pending.enqueue(recipient, item)
            return []
        if item.is_group and not self.member_copies:
            return []  # read diffusion: the group timeline is the only copy
        self.store.offline.setdefault(recipient, []).append(item)
        return []

    def login(
        self,
        user: Id,
        mode: str,
        now: float,
        *,
        one_transfer: bool = False,
        sync_follows: bool = False,
    ) -> list[Deliver]:
        """``user`` connected: its offline queue moves to the downlink.

        With ``one_transfer`` and a reconnect sync that ``sync_follows`` the login, the
        queue is not pushed (see :func:`login_pushes_queue`)."""
        waiting = self.store.offline.pop(user, [])
        if not login_pushes_queue(one_transfer=one_transfer, sync_follows=sync_follows):
            return []
        out: list[Deliver] = []
        for item in waiting:
            out.extend(self.route(item, user, mode, now))
        return out

    def disconnect(self, user: Id) -> None:
        """``user`` left cleanly: unacknowledged messages go to the durable offline queue."""
        left = self.pending.drain(user)
        if left and not self.member_copies:
            left = [item for item in left if not item.is_group]
        if left:
            self.store.offline.setdefault(user, []).extend(left)

    def crash(self) -> int:
        """The node fails: volatile state is gone; returns the pending-ACK entries lost."""
        lost = self.pending.clear()
        if self.dedup_durable:
            self.dedup.forget_in_progress()  # the processing they mark died with the node
        else:
            self.dedup.clear()
        return lost

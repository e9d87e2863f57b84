"""Inbox sync: one per-user sequence and one cursor (``reliability.sync_cursor = "inbox"``).

Large deployments do not sync per conversation. Each user has one **inbox** — a
per-user sequence (a "sync key" or "user seq") that a sequencer hands out when a message
is stored — and every copy addressed to the user, and the user's own sent messages (for
its other devices), is appended to it with the next inbox seq. A device syncs with ONE
cursor: "everything in my inbox after seq N". What a sync costs is then what is new,
not how many conversations the user has — the per-conversation cursors of
:mod:`immodel.protocol.sync` cost one lookup per conversation on every request, and
random 1:1 pairs make conversations pile up with time.

:class:`Inboxes` is the store's side (kept by :class:`~immodel.protocol.server.
MessageStore` when inbox mode is on): each member of a conversation — its recipients
and its sender — gets every stored item of it appended to its inbox; seq ``n`` of an
inbox is its ``n``-th entry (append-only, so seqs are contiguous from 1). A group seq
that a failed write burnt (:meth:`~immodel.protocol.server.MessageStore.burn_seq`) is
appended to each member's inbox as a burnt marker, so a page lists it
(``SyncResponse.burnt``) and the reader steps over it as in conversation sync.
:func:`answer_inbox_sync` cuts one page. The receiving side is
:class:`~immodel.protocol.receiver.Receiver` with ``inbox=True``: one inbox cursor per
device (each device is its own receiver), moved only when a page is merged.

**What the client holds: a held list, not duplicate pages.** A page could simply carry
every entry after the cursor and let client dedup drop what the client already has. But
with ``sync_on_receipt`` every 1:1 push starts a sync, and a push never moves the
cursor, so that page would carry the pushed message itself again: nearly every 1:1
message would cross the downlink twice. So the request names, as ``held``
``(conversation, msg_id)`` pairs, what the client holds above its cursor (pushed copies
it took in, its own messages the server confirmed; a group item is named by its seq,
as ``(group, seq)``, because a message stored twice has two seqs and the client may
hold only one of them); the page leaves them out but still
counts them as read (``scanned``: the server reads those entries). The receiver forgets
the pairs a request named once a complete page is merged: everything named was stored
before the request left (a push or a send reply comes after the store), so a complete
page's ``inbox_top`` covers it. A page carries no request id, so a late page may make
the receiver forget pairs it did not cover; those come down again in a later page and
client dedup drops them — bytes, never a loss or a duplicate shown.

**Why the inbox has no skew hole.** Conversation sync of 1:1 chats pages by server
timestamp, so a reply stamped by a node whose clock is slow can be stored *below* a
cursor that already passed a fast node's stamp and is never pulled (see
:mod:`immodel.protocol.sync`). An inbox seq is handed out at store time by the one
sequencer of that user's inbox, strictly increasing in store order, so anything stored
after a page was cut lands above the page's top whatever its timestamp: a page is always
a prefix of the inbox. Group seqs keep their contiguity too: a group's seqs reach every
member's inbox in seq order (the seq is handed out and appended in one step).

Read diffusion (one group timeline, no per-member copy) has no inbox to append a group
message to; scenario validation refuses it with inbox sync.

An inbox belongs to whoever the store knows as a member: with several devices per user
the simulator joins each device, so each device has an inbox of its own. Their contents
are the same entries in the same order (the devices join together), so this is one
per-user inbox read by a cursor per device, kept once per device.

Pure: no clock, no randomness, no I/O.
"""

from __future__ import annotations

from immodel.protocol.messages import Id, Stored, SyncRequest, SyncResponse

#: An inbox entry: a stored message, or a burnt group seq as ``(group, seq)``.
Entry = Stored | tuple[Id, int]


class Inboxes:
    """The per-user inboxes of one store, and who each conversation's items go to.

    Lifecycle: :meth:`join` as users join conversations (before their items are
    stored), :meth:`append` / :meth:`burn` as the store writes, :meth:`answer` per sync
    request. Entries are never removed (a model run is bounded).
    """

    __slots__ = ("_entries", "_members")

    def __init__(self) -> None:
        self._entries: dict[Id, list[Entry]] = {}  # user → entries, inbox seq n at [n-1]
        # conversation → members, in join order (a dict used as an ordered set)
        self._members: dict[Id, dict[Id, None]] = {}

    def join(self, user: Id, conversation: Id) -> None:
        """Make ``user`` a member: the conversation's later items go to its inbox."""
        members = self._members.get(conversation)
        if members is None:
            members = self._members[conversation] = {}
        members[user] = None

    def append(self, item: Stored) -> None:
        """Append ``item`` to the inbox of each member of its conversation."""
        entries = self._entries
        for member in self._members.get(item.conversation, ()):
            inbox = entries.get(member)
            if inbox is None:
                inbox = entries[member] = []
            inbox.append(item)

    def burn(self, group: Id, seq: int) -> None:
        """Group seq ``seq`` is burnt: a marker in each member's inbox."""
        marker = (group, seq)
        for member in self._members.get(group, ()):
            self._entries.setdefault(member, []).append(marker)

    def top(self, user: Id) -> int:
        """The highest inbox seq of ``user`` (0: an empty inbox)."""
        return len(self._entries.get(user, ()))

    def entries(self, user: Id) -> list[Entry]:
        """``user``'s inbox, seq ``n`` at index ``n - 1`` (for inspection; do not modify)."""
        return self._entries.get(user, [])

    def answer(self, request: SyncRequest) -> SyncResponse:
        """One page of ``request.user``'s inbox after ``request.inbox_cursor``."""
        return answer_inbox_sync(request, self._entries.get(request.user, ()))


def answer_inbox_sync(request: SyncRequest, inbox: list[Entry] | tuple = ()) -> SyncResponse:
    """One page: the entries of ``inbox`` after ``request.inbox_cursor``, in inbox order.

    Stored items the request names as ``held`` are left out (the client has them);
    burnt markers go to ``burnt``. The page holds at most ``request.limit`` items and is
    cut right after the last one when more entries follow (``complete`` false);
    ``inbox_top`` is the inbox seq of the last entry read, ``scanned`` how many entries
    were read (left-out held items and burnt markers included: the server read them).
    """
    cursor = request.inbox_cursor
    end = len(inbox)
    if cursor >= end:  # nothing new: the common case
        return SyncResponse(request.user, (), True, (), 0, (), cursor)
    held = set(request.held) if request.held else None
    limit = request.limit
    items: list[Stored] = []
    burnt: list[tuple[Id, int]] = []
    pos = cursor
    while pos < end and len(items) < limit:
        entry = inbox[pos]
        pos += 1
        if type(entry) is tuple:
            burnt.append(entry)
        elif held is None:
            items.append(entry)
        else:
            # held pairs name a 1:1 item by id, a group item by seq (a message stored
            # twice has two seqs, and the client may hold only one of them)
            message = entry.message
            key = entry.order_key if message.is_group else message.msg_id
            if (message.conversation, key) not in held:
                items.append(entry)
    return SyncResponse(request.user, tuple(items), pos == end, (), pos - cursor, tuple(burnt), pos)


__all__ = ["Entry", "Inboxes", "answer_inbox_sync"]

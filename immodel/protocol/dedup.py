"""Server-side de-duplication of retries by client message id (article, steps 1–3).

The server remembers every message id it has started or finished processing for
``window_s`` seconds (the vendor keeps 120 s). :meth:`DedupWindow.begin` classifies an
arriving send:

* ``NEW`` — never seen (or forgotten): process it;
* ``IN_PROGRESS`` — the first copy is still in the processing pipeline: drop this copy,
  the first copy's reply will answer the sender;
* ``DONE`` — already stored or rejected: answer with the *original* reply (same order
  key), never store a second copy.

**After the window.** An id whose entry expired is indistinguishable from a new one, so a
retry that arrives more than ``window_s`` after the first copy was processed is stored a
second time (under a new order key). This is the real system's behaviour, kept explicit:
:meth:`begin` returns ``NEW`` and the copy's deliveries carry the same ``msg_id``, which
the analysis counts as duplicates (and client dedup may still hide). Nothing else in the
model forgets ids silently.

With ``enabled=False`` every copy is ``NEW``: retries are stored again.
The window is volatile unless the caller keeps it with the store (``dedup_durable``): a
server crash calls :meth:`clear`. A durable window still loses its in-progress marks in a
crash (:meth:`forget_in_progress`): the processing they stand for died with the node, and
a mark that outlived it would make every retry ``IN_PROGRESS`` forever.
"""

from __future__ import annotations

from array import array
from collections import deque
from enum import Enum

from immodel.protocol.messages import Id, SendReply


class Verdict(Enum):
    """How the server treats an arriving copy of a send."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    DONE = "done"


_IN_PROGRESS = None  # marker value in the table for ids still being processed
# spent expiry times are cut off the array once there are this many and they are at
# least half of it: an O(n) move every n/2 expiries, not one per expiry
_COMPACT_AT = 4096


class DedupWindow:
    """Processed message ids with their original replies, kept for ``window_s`` seconds.

    Expiry is lazy (on every call) and FIFO: every entry lives exactly ``window_s``
    after it was completed, so the ids in completion order with their expiry times
    suffice.

    The window is the one per-message structure of the server that lives for minutes at
    the send rate (a million users sending 0.01 msg/s keep ~1.2 M ids in a 120 s window),
    so an entry is kept small: an accepted send keeps its order key, from which
    :meth:`begin` rebuilds the equal :class:`SendReply` on the rare retry (a final
    rejection keeps its reply), and the expiry times are machine numbers in an array
    beside a deque of ids, not a tuple and a boxed float per entry (~85 instead of ~250
    bytes per id, the table's slot included).
    """

    __slots__ = ("_expiry_at", "_expiry_head", "_expiry_ids", "_table", "enabled", "window_s")

    def __init__(self, window_s: float = 120.0, enabled: bool = True) -> None:
        self.window_s = window_s
        self.enabled = enabled
        # msg_id → None (in progress), the order key (accepted: SendReply(msg_id, True,
        # key)), or the final SendReply itself (anything else)
        self._table: dict[Id, int | SendReply | None] = {}
        # completed ids in completion order; _expiry_at[_expiry_head + i] is when the
        # i-th expires (the array's spent prefix is cut off now and then, not per entry)
        self._expiry_ids: deque[Id] = deque()
        self._expiry_at = array("d")
        self._expiry_head = 0

    def _expire(self, now: float) -> None:
        ids, at = self._expiry_ids, self._expiry_at
        head = start = self._expiry_head
        if not ids or at[head] > now:
            return
        table = self._table
        while ids and at[head] <= now:
            table.pop(ids.popleft(), None)
            head += 1
        if not ids:
            del at[:]
            head = 0
        elif head >= _COMPACT_AT and 2 * head >= len(at):
            del at[:head]
            head = 0
        if head != start:
            self._expiry_head = head

    def begin(self, msg_id: Id, now: float) -> tuple[Verdict, SendReply | None]:
        """Classify an arriving copy; a ``NEW`` id is marked in progress."""
        if not self.enabled:
            return Verdict.NEW, None
        self._expire(now)
        if msg_id not in self._table:
            self._table[msg_id] = _IN_PROGRESS
            return Verdict.NEW, None
        reply = self._table[msg_id]
        if reply is _IN_PROGRESS:
            return Verdict.IN_PROGRESS, None
        if type(reply) is int:  # an accepted send, kept as its order key
            return Verdict.DONE, SendReply(msg_id, True, reply)
        return Verdict.DONE, reply

    def complete(self, msg_id: Id, reply: SendReply, now: float) -> None:
        """Processing ended with a final reply: remember it for ``window_s``."""
        if not self.enabled:
            return
        key = reply.order_key
        if (
            type(key) is int
            and reply.accepted
            and reply.reason == "ok"
            and not reply.retryable
            and reply.msg_id == msg_id
        ):
            self._table[msg_id] = key  # begin() rebuilds the equal reply from it
        else:
            self._table[msg_id] = reply
        self._expiry_ids.append(msg_id)
        self._expiry_at.append(now + self.window_s)

    def abort(self, msg_id: Id) -> None:
        """Processing ended without a final answer (the store failed): a retry is NEW."""
        if self.enabled and self._table.get(msg_id, 0) is _IN_PROGRESS:
            del self._table[msg_id]

    def forget_in_progress(self) -> int:
        """Processing stopped without an answer (a crash): in-progress ids become NEW again.

        Completed entries stay. Returns how many marks were dropped.
        """
        marks = [m for m, reply in self._table.items() if reply is _IN_PROGRESS]
        for msg_id in marks:
            del self._table[msg_id]
        return len(marks)

    def clear(self) -> None:
        """A crash: everything remembered is gone."""
        self._table.clear()
        self._expiry_ids.clear()
        del self._expiry_at[:]
        self._expiry_head = 0

    def next_deadline(self) -> float | None:
        """When the oldest entry expires (expiry is lazy; this is for observers)."""
        return self._expiry_at[self._expiry_head] if self._expiry_ids else None

    def __len__(self) -> int:
        return len(self._table)

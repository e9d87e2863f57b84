"""The pending-ACK queue: the server keeps what it sent until the client ACKs (article, step 4).

One table per server node holds, per recipient, every stored message handed to the
downlink and not yet acknowledged. Two ways out of the server, one table:

* **push** (:meth:`PendingAcks.push`) — the message is sent at once and a retransmit
  deadline ``now + ack_timeout_s`` is set; :meth:`handle_timeout` resends everything
  whose deadline passed (constant timeout: the theory of a stop-and-wait ARQ applies);
* **poll** (:meth:`PendingAcks.enqueue` + :meth:`take_for_poll`) — the message waits in
  the recipient's outbox; every poll response carries the oldest waiting messages, and a
  message stays until an ACK (riding on a later request) names it, so a lost response is
  repaired by the next poll.

An ACK removes the entries it names (:meth:`handle_ack`). With ``enabled=False`` there
is no queue: a pushed message is forgotten once sent and a polled one once handed to a
response, so a lost packet is a lost message.

The table is volatile: a server crash (:meth:`clear`) loses it — the failure that the
article's sync mechanism repairs. A recipient who disconnects cleanly is different: the
server moves their unacknowledged messages to the durable offline store
(:meth:`drain`), where the next login finds them.
"""

from __future__ import annotations

import heapq

from immodel.protocol.messages import Deliver, Id, Stored


class _Entry:
    __slots__ = ("attempts", "deadline", "item")

    def __init__(self, item: Stored, deadline: float | None) -> None:
        self.item = item
        self.attempts = 0
        self.deadline = deadline


class PendingAcks:
    """Unacknowledged downlink messages of one server node, per recipient."""

    __slots__ = ("_by_user", "_heap", "ack_timeout_s", "enabled")

    def __init__(self, ack_timeout_s: float = 5.0, enabled: bool = True) -> None:
        self.ack_timeout_s = ack_timeout_s
        self.enabled = enabled
        self._by_user: dict[Id, dict[Id, _Entry]] = {}
        # (deadline, recipient, msg_id); stale rows are skipped when popped.
        self._heap: list[tuple[float, Id, Id]] = []

    # -- push -----------------------------------------------------------------------------
    def push(self, recipient: Id, item: Stored, now: float) -> list[Deliver]:
        """Send ``item`` to a connected push recipient now; keep it until ACKed."""
        if not self.enabled:
            return [Deliver(recipient, item, 1)]
        msg_id = item.message.msg_id
        entries = self._by_user.setdefault(recipient, {})
        entry = entries.get(msg_id)
        if entry is None:
            entry = entries[msg_id] = _Entry(item, None)
        entry.attempts += 1
        entry.deadline = now + self.ack_timeout_s
        heapq.heappush(self._heap, (entry.deadline, recipient, msg_id))
        return [Deliver(recipient, item, entry.attempts)]

    def handle_timeout(self, now: float) -> list[Deliver]:
        """Retransmit every pushed message whose ACK is overdue."""
        out: list[Deliver] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, recipient, msg_id = heapq.heappop(heap)
            entry = self._by_user.get(recipient, {}).get(msg_id)
            if entry is None or entry.deadline != deadline:
                continue  # acked, drained, or rescheduled since
            entry.attempts += 1
            entry.deadline = now + self.ack_timeout_s
            heapq.heappush(heap, (entry.deadline, recipient, msg_id))
            out.append(Deliver(recipient, entry.item, entry.attempts))
        return out

    def next_deadline(self) -> float | None:
        """The earliest retransmit deadline (may be stale; :meth:`handle_timeout` skips it)."""
        heap = self._heap
        while heap:
            deadline, recipient, msg_id = heap[0]
            entry = self._by_user.get(recipient, {}).get(msg_id)
            if entry is not None and entry.deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    # -- poll -----------------------------------------------------------------------------
    def enqueue(self, recipient: Id, item: Stored) -> None:
        """Put ``item`` in a polling recipient's outbox (no timer: the next poll takes it)."""
        self._by_user.setdefault(recipient, {}).setdefault(item.msg_id, _Entry(item, None))

    def take_for_poll(self, recipient: Id, limit: int) -> list[Deliver]:
        """The oldest ``limit`` waiting messages for a poll response.

        With the queue on they stay until ACKed (a lost response is repaired by the next
        poll); with it off they leave the server now.
        """
        entries = self._by_user.get(recipient)
        if not entries:
            return []
        out: list[Deliver] = []
        for msg_id in list(entries)[:limit]:
            entry = entries[msg_id]
            entry.attempts += 1
            out.append(Deliver(recipient, entry.item, entry.attempts))
            if not self.enabled:
                del entries[msg_id]
        if not entries:
            del self._by_user[recipient]
        return out

    # -- both -----------------------------------------------------------------------------
    def handle_ack(self, recipient: Id, msg_ids) -> int:
        """The recipient acknowledged these ids; returns how many entries were removed."""
        entries = self._by_user.get(recipient)
        if not entries:
            return 0
        removed = 0
        for msg_id in msg_ids:
            if entries.pop(msg_id, None) is not None:
                removed += 1
        if not entries:
            del self._by_user[recipient]
        return removed

    def waiting(self, recipient: Id) -> int:
        """How many messages wait for ``recipient``."""
        return len(self._by_user.get(recipient, ()))

    def drain(self, recipient: Id) -> list[Stored]:
        """The recipient went away cleanly: hand back what it never acknowledged."""
        entries = self._by_user.pop(recipient, None)
        return [e.item for e in entries.values()] if entries else []

    def clear(self) -> int:
        """A crash: the whole table is gone. Returns how many entries were lost."""
        lost = sum(len(v) for v in self._by_user.values())
        self._by_user.clear()
        self._heap.clear()
        return lost

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_user.values())

"""Live-broadcast rooms: the server's rate cap with priorities and the recent buffer.

A live room (a live stream's chat, a large broadcast channel) is a different delivery
contract from a group chat: the audience is large and comes and goes, there is no
per-viewer ACK, no offline store and no retransmit; what the server cannot or will not
carry is dropped by design. Two decisions make that contract, and both live here, pure
(no SimPy, no clock, no randomness; ``now`` and window indices are passed in):

:class:`RateCap`
    the per-room cap: messages offered to a room are admitted one **window** at a time
    (``window_s``, by default 1 s). When a window closes, at most ``cap_per_window``
    of its messages are accepted, by priority: every ``high`` message first, then
    ``normal``, then ``low``, each in arrival order. So low priority is dropped first,
    and a high-priority message is dropped only when the high-priority messages of its
    window alone exceed the cap. Every dropped message is answered to its sender
    (``Dropped``: the sender is told), and the accepted ones get the room's next
    sequence numbers in arrival order. Deciding at the window's end, rather than
    admitting on arrival, is what lets a late high-priority message displace an early
    low one; it costs each message up to one window of delay before it is published.
:class:`RecentBuffer`
    the bounded buffer of a room's most recent accepted messages (``capacity``
    messages). A viewer asks for what follows its cursor (the last seq it has seen);
    what has already left the buffer is *skipped*: the viewer never sees it, and nothing
    retransmits it.

Lifecycle: one :class:`RateCap` and one :class:`RecentBuffer` per room, for the whole
run; :meth:`RateCap.offer` for each message that reaches the room's server,
:meth:`RateCap.close` when a window ends (``next_deadline`` says when), then
:meth:`RecentBuffer.publish` for the accepted messages.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

#: The priorities, highest first (the order in which a full window keeps messages).
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")

#: Why a dropped message was dropped, as its sender is told.
DROP_REASON = "rate_limited"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message the cap let through: its id, priority and the room's seq for it."""

    msg_id: str
    priority: str
    seq: int


@dataclass(frozen=True, slots=True)
class Dropped:
    """A message the cap dropped; the sender is told, with :data:`DROP_REASON`."""

    msg_id: str
    priority: str
    reason: str = DROP_REASON


@dataclass(frozen=True, slots=True)
class WindowDecision:
    """What the cap decided for one window: accepted in seq order, and the dropped."""

    window: int
    accepted: tuple[Accepted, ...]
    dropped: tuple[Dropped, ...]


def keep_by_priority(offered: dict[str, int], cap: int) -> dict[str, int]:
    """How many messages of each priority a window keeps, given how many were offered.

    The rule in counts: high takes ``min(high, cap)``, normal what is left of the cap,
    low what is left after that. ``offered`` maps priority → count (missing: 0).
    """
    if cap < 0:
        raise ValueError(f"cap must be ≥ 0, got {cap}")
    left = cap
    kept = {}
    for p in PRIORITIES:
        kept[p] = min(offered.get(p, 0), left)
        left -= kept[p]
    return kept


class RateCap:
    """One room's admission: windows of ``window_s`` seconds, ``cap_per_window`` each."""

    __slots__ = ("_closed", "_open", "cap_per_window", "next_seq", "window_s")

    def __init__(self, cap_per_window: int, window_s: float, first_seq: int = 1) -> None:
        if cap_per_window < 1:
            raise ValueError(f"cap_per_window must be ≥ 1, got {cap_per_window}")
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.cap_per_window = cap_per_window
        self.window_s = window_s
        self.next_seq = first_seq
        # window index → offers in arrival order (msg_id, priority)
        self._open: dict[int, list[tuple[str, str]]] = {}
        self._closed = -1  # the last window decided

    def window_of(self, now: float) -> int:
        """The index of the window that contains time ``now`` (s)."""
        return math.floor(now / self.window_s)

    def offer(self, now: float, msg_id: str, priority: str) -> int:
        """A message reaches the room's server at ``now``; returns its window index.

        A message that arrives at a window's end after that window was decided (the
        caller's clock and the window boundary meet at the same instant) joins the next
        window: a decided window never changes."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        w = max(self.window_of(now), self._closed + 1)
        self._open.setdefault(w, []).append((msg_id, priority))
        return w

    def next_deadline(self) -> float | None:
        """When the earliest window with offers ends (s), or None when none is open."""
        if not self._open:
            return None
        return (min(self._open) + 1) * self.window_s

    def close(self, window: int) -> WindowDecision:
        """Decide window ``window``: accept by priority up to the cap, drop the rest.

        Closing a window with no offers (or twice) gives an empty decision.
        """
        offers = self._open.pop(window, [])
        self._closed = max(self._closed, window)
        counts: dict[str, int] = {}
        for _, p in offers:
            counts[p] = counts.get(p, 0) + 1
        quota = keep_by_priority(counts, self.cap_per_window)
        accepted: list[Accepted] = []
        dropped: list[Dropped] = []
        for msg_id, p in offers:  # arrival order within each priority
            if quota[p] > 0:
                quota[p] -= 1
                accepted.append(Accepted(msg_id, p, self.next_seq))
                self.next_seq += 1
            else:
                dropped.append(Dropped(msg_id, p))
        return WindowDecision(window, tuple(accepted), tuple(dropped))


class RecentBuffer:
    """A room's last ``capacity`` accepted messages, by seq (consecutive, from 1)."""

    __slots__ = ("_items", "capacity", "head")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self.head = 0  # the last seq published (0: nothing yet)
        self._items: deque[tuple[int, object]] = deque(maxlen=capacity)

    def publish(self, seq: int, item: object) -> None:
        """Add the message with ``seq`` (the next one: ``head + 1``); the oldest leaves
        when the buffer is full."""
        if seq != self.head + 1:
            raise ValueError(f"seq {seq} does not follow head {self.head}")
        self._items.append((seq, item))
        self.head = seq

    @property
    def oldest(self) -> int:
        """The oldest seq still held (``head + 1`` when the buffer is empty)."""
        return self._items[0][0] if self._items else self.head + 1

    def since(self, cursor: int) -> tuple[list[tuple[int, object]], int]:
        """``(messages after cursor still held, how many after cursor have left)``.

        ``cursor`` is the last seq the viewer has seen; the second value is what it has
        missed for good (seqs in ``(cursor, oldest)``).
        """
        if cursor >= self.head:
            return [], 0
        oldest = self.oldest
        skipped = max(0, oldest - cursor - 1)
        start = max(cursor + 1, oldest) - oldest  # index into the deque
        items = list(self._items)[start:] if start else list(self._items)
        return items, skipped


__all__ = [
    "DROP_REASON",
    "PRIORITIES",
    "Accepted",
    "Dropped",
    "RateCap",
    "RecentBuffer",
    "WindowDecision",
    "keep_by_priority",
]

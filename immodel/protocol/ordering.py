"""Reference order: server timestamps for 1:1 chat, per-group seq for groups.

* **1:1** — each message gets the stamping node's clock in integer milliseconds. Two
  messages of one conversation stamped by the same node in the same millisecond would tie,
  so the node's clock is made strictly monotonic per conversation: a stamp is
  ``max(clock_ms, previous stamp + 1)``, and the first one is at least 1 (a sync cursor
  starts at 0 and pulls keys above it, so a stamp of 0 or less — a message stored in the
  first millisecond, or by a node whose clock runs behind — would never be synced).
  This is the deterministic tie-break; across
  nodes, ties (equal keys) are broken by message id wherever an order is needed. Nodes
  whose clocks disagree (``clock_skew``) can stamp a later message with a smaller key:
  timestamp order is only as good as the clocks.
* **Groups** — a sequence number per group, strictly +1 from 1, assigned when the message
  is stored. Gaps are therefore meaningful to a receiver: a missing seq is a missing
  message.

The sequencer is durable state (it lives with the message store): a crash that lost it
would hand out a seq twice.
"""

from __future__ import annotations

import math

from immodel.protocol.messages import Id


class Sequencer:
    """Hands out order keys; one per server node (1:1) and shared for groups."""

    __slots__ = ("_last_seq", "_last_stamp")

    def __init__(self) -> None:
        self._last_stamp: dict[Id, int] = {}
        self._last_seq: dict[Id, int] = {}

    def stamp(self, conversation: Id, clock_s: float) -> int:
        """A 1:1 server timestamp (ms) from this node's clock, monotonic per conversation."""
        clock_ms = math.floor(clock_s * 1000.0)
        key = max(clock_ms, self._last_stamp.get(conversation, 0) + 1)
        self._last_stamp[conversation] = key
        return key

    def next_seq(self, group: Id) -> int:
        """The next seq of ``group``: 1 for its first message, then +1 each time."""
        seq = self._last_seq.get(group, 0) + 1
        self._last_seq[group] = seq
        return seq

    def assign(self, conversation: Id, is_group: bool, clock_s: float) -> int:
        """The order key of a message being stored now."""
        return self.next_seq(conversation) if is_group else self.stamp(conversation, clock_s)

    def last_seq(self, group: Id) -> int:
        """The highest seq handed out in ``group`` (0 if none)."""
        return self._last_seq.get(group, 0)

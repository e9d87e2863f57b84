"""The uplink sender: unique ids and retry until the server replies (article, steps 1–3).

Lifecycle of one message at the sender::

    submit ──► in flight ──reply(accepted)──────────────► succeeded (app: "sent")
                  │  ▲     reply(rejected, final) ───────► failed (app: reason)
        deadline  │  │ retransmit (same msg_id)
                  ▼  │
               attempts < max? ── no ──────────────────► failed (app: "timeout")

Every attempt carries the same client message id, so the server's dedup window turns a
retry of a stored message into the original reply instead of a second copy. The timeout
grows by ``backoff`` after each attempt (1.0: constant; 2.0: doubling). With retry off,
the first attempt is the only one. A reply for a message no longer in flight (late, or a
duplicate reply to a retransmission) is ignored. A retryable rejection (the server could
not store the message) is never reported as success: the sender simply waits for its
deadline and retries.

**No retries into a dead connection.** Attempts are spent only while the client is
connected. :meth:`UplinkSender.handle_disconnect` suspends every message in flight (no
deadline; the attempt that died with the connection is not charged), a message submitted
while disconnected waits, and :meth:`UplinkSender.handle_connected` sends them all again
(same ids) on the new connection. A reconnect that lands on another server node may
store a retry twice when the dedup window is per node — that is the deployment's
behaviour, and the simulator shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from immodel.protocol.messages import (
    Id,
    Message,
    SendFailed,
    SendReply,
    SendSucceeded,
    Transmit,
)

Action = Transmit | SendSucceeded | SendFailed


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the sender retries: ``timeout_s`` for the first reply, multiplied by ``backoff``
    after each attempt, at most ``max_attempts`` attempts; ``enabled=False`` means one."""

    enabled: bool = True
    timeout_s: float = 5.0
    backoff: float = 1.0
    max_attempts: int = 5

    @property
    def attempts_allowed(self) -> int:
        return self.max_attempts if self.enabled else 1


class _InFlight:
    __slots__ = ("attempts", "charged", "deadline", "message", "timeout_s")

    def __init__(self, message: Message, deadline: float | None, timeout_s: float) -> None:
        self.message = message
        # transmissions so far / attempts counted against max_attempts (an attempt that
        # died with its connection is not counted)
        self.attempts = 1 if deadline is not None else 0
        self.charged = self.attempts
        self.deadline = deadline  # None: suspended until the client is connected
        self.timeout_s = timeout_s


class UplinkSender:
    """One client's sending side.

    :meth:`submit` names a new message (``"{client}-{n}"``-style ids come from the
    caller's ``client_id`` and a counter) and returns the first :class:`Transmit`;
    :meth:`handle_reply` and :meth:`handle_timeout` return the next actions;
    :meth:`next_deadline` says when :meth:`handle_timeout` must be called next.
    """

    __slots__ = ("_counter", "_in_flight", "client_id", "connected", "policy")

    def __init__(self, client_id: Id, policy: RetryPolicy | None = None) -> None:
        self.client_id = client_id
        self.policy = policy or RetryPolicy()
        self.connected = True
        self._counter = 0
        self._in_flight: dict[Id, _InFlight] = {}

    def submit(
        self, *, conversation: Id, is_group: bool, now: float, payload_bytes: int = 0
    ) -> tuple[Message, list[Action]]:
        """The app submits a message: name it and send the first attempt."""
        self._counter += 1
        # positional: a keyword call costs a third more than the fields themselves
        msg_id = f"{self.client_id}-{self._counter}"
        message = Message(msg_id, self.client_id, conversation, is_group, payload_bytes)
        timeout = self.policy.timeout_s
        if not self.connected:
            self._in_flight[message.msg_id] = _InFlight(message, None, timeout)
            return message, []
        self._in_flight[message.msg_id] = _InFlight(message, now + timeout, timeout)
        return message, [Transmit(message, 1)]

    def handle_disconnect(self, now: float) -> None:
        """The connection is gone: suspend what is in flight; its last attempt is not
        charged (it died with the connection, not for want of a reply)."""
        self.connected = False
        for entry in self._in_flight.values():
            if entry.deadline is not None:
                entry.deadline = None
                entry.charged -= 1

    def handle_connected(self, now: float) -> list[Action]:
        """Connected (again): send every suspended message, same ids, fresh timeouts."""
        self.connected = True
        actions: list[Action] = []
        for entry in self._in_flight.values():
            if entry.deadline is None:
                entry.attempts += 1
                entry.charged += 1
                entry.deadline = now + entry.timeout_s
                actions.append(Transmit(entry.message, entry.attempts))
        return actions

    def handle_reply(self, reply: SendReply, now: float) -> list[Action]:
        """A reply arrived. Final replies end the message; late ones are ignored."""
        entry = self._in_flight.get(reply.msg_id)
        if entry is None:
            return []  # late, or a second reply to a retransmission
        if reply.accepted:
            del self._in_flight[reply.msg_id]
            assert reply.order_key is not None
            return [SendSucceeded(reply.msg_id, reply.order_key, entry.attempts)]
        if reply.retryable and entry.charged < self.policy.attempts_allowed:
            return []  # not stored: wait for the deadline, then retry
        del self._in_flight[reply.msg_id]
        return [SendFailed(reply.msg_id, reply.reason, entry.attempts)]

    def handle_timeout(self, now: float) -> list[Action]:
        """Retransmit every message whose deadline passed, or give up on it."""
        actions: list[Action] = []
        due = [
            m for m, e in self._in_flight.items() if e.deadline is not None and e.deadline <= now
        ]
        for msg_id in due:
            entry = self._in_flight[msg_id]
            if entry.charged >= self.policy.attempts_allowed:
                del self._in_flight[msg_id]
                actions.append(SendFailed(msg_id, "timeout", entry.attempts))
                continue
            entry.attempts += 1
            entry.charged += 1
            entry.timeout_s *= self.policy.backoff
            entry.deadline = now + entry.timeout_s
            actions.append(Transmit(entry.message, entry.attempts))
        return actions

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` is next needed (None: nothing in flight)."""
        # a loop, not min() over a list: asked after every action of the client
        earliest = None
        for entry in self._in_flight.values():
            deadline = entry.deadline
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    @property
    def in_flight(self) -> int:
        """Messages sent but not yet answered."""
        return len(self._in_flight)

    def forget(self) -> list[Message]:
        """The app was restarted without local state: unanswered messages are dropped.

        Returns them so the caller can record them (the app never learned their fate).
        """
        lost = [e.message for e in self._in_flight.values()]
        self._in_flight.clear()
        return lost

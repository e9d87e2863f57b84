"""The server's REST API for business backends: the per-app rate limit and the caller's retries.

A business backend (an admin console, a notification service) does not use the SDK: it
calls the server's REST API over HTTPS, each call signed with the **admin account's**
UserSig (:mod:`immodel.protocol.usersig`, verified like a login's) and carrying its own
message ids (the vendor's ``MsgRandom``), so a call retried after a timeout is recognised
by the server's dedup window like an SDK retry. Three kinds of call send messages:

* ``single`` — one message to one user (the vendor's ``sendmsg``);
* ``batch`` — the same content to a list of users, one 1:1 message each
  (``batchsendmsg``);
* ``broadcast`` — one message to every user of the app, one call that the server fans
  out itself (the vendor's all-member push).

**The rate limit** is per app and per second, as the vendor documents it ("200 calls per
second" by default): a call is admitted while fewer than ``max_calls_per_s`` calls have
been admitted in the current whole second of the server's clock, and refused otherwise
with a ``retry_after_s`` that points at the start of the next second
(:class:`FixedWindowLimiter`). So the accepted calls of any whole second never exceed the
limit, and under a sustained overload every second admits exactly the limit.

**The caller** (:class:`RestCaller`) keeps every call until the server answers it: a
refusal is retried after ``retry_after_s``; a call with no answer within ``timeout_s``
is re-sent with the same call id and message ids; an answer that is not "accepted" and
not a refusal (a bad UserSig) ends the call. With ``max_retries`` the caller gives up
on a call whose attempt is refused once more after ``max_retries`` retries after
refusals (:data:`GAVE_UP`: its messages fail), as a real backend's retry budget does; a
re-send after a timeout is not counted against it (that attempt may have got through).
Decisions only: the caller returns actions (:class:`CallNow`, :class:`CallAt`,
:class:`CallDone`) and the simulator (or real I/O) carries them out. Nothing here keeps
a clock; ``now`` comes in.

Lifecycle of one call at the backend::

    start ─► CallNow(attempt 1) ─► answer "accepted" ─────────────► CallDone(accepted)
                 ▲         │      answer "rate_limited" ─► CallAt(now + retry_after_s)
                 │         │        └ refused max_retries + 1 times ─► CallDone(GAVE_UP)
                 │         │      answer "auth_*"  ──────────────► CallDone(reason)
                 │         └ no answer by the deadline ─► CallNow(attempt + 1)
                 └──────── CallAt due ─────────────────────────────────┘
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from immodel.protocol.messages import Id

#: The admin account's user id in the simulator's records (outside ``0..users-1``).
ADMIN_UID = -1
#: The admin account's identifier in its UserSig (the vendor's default admin name).
ADMIN_IDENTIFIER = "administrator"
#: The vendor's default REST API limit per app (calls per second).
DEFAULT_MAX_CALLS_PER_S = 200
CALL_KINDS = ("single", "batch", "broadcast")
ACCEPTED = "accepted"
RATE_LIMITED = "rate_limited"
#: A call's end when the backend gave up after ``max_retries`` retries that were refused.
GAVE_UP = "rest_gave_up"


@dataclass(frozen=True, slots=True)
class Admission:
    """The rate limiter's answer to one call: admitted, or refused with when to retry."""

    admitted: bool
    retry_after_s: float = 0.0


class FixedWindowLimiter:
    """The per-app REST rate limit: at most ``max_calls_per_s`` calls admitted in each
    whole second ``[k, k + 1)`` of the server's clock (seconds).

    Lifecycle: one per app on the server; :meth:`admit` is called once per arriving call,
    in arrival order (``now`` never decreases).
    """

    __slots__ = ("admitted_in_window", "max_calls_per_s", "window")

    def __init__(self, max_calls_per_s: int = DEFAULT_MAX_CALLS_PER_S) -> None:
        if max_calls_per_s < 1:
            raise ValueError("max_calls_per_s must be ≥ 1")
        self.max_calls_per_s = max_calls_per_s
        self.window = -math.inf  # start of the current window (s)
        self.admitted_in_window = 0

    def admit(self, now: float) -> Admission:
        """Admit a call arriving at ``now`` or refuse it until the next window opens."""
        window = math.floor(now)
        if window != self.window:
            self.window = window
            self.admitted_in_window = 0
        if self.admitted_in_window < self.max_calls_per_s:
            self.admitted_in_window += 1
            return Admission(True)
        return Admission(False, retry_after_s=(window + 1) - now)


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """The server's HTTP answer to one attempt of a call: ``status`` is ``accepted``,
    ``rate_limited`` (with ``retry_after_s``) or an auth reason (``auth_expired`` …)."""

    call_id: Id
    attempt: int
    status: str
    retry_after_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CallNow:
    """Caller → network: send attempt ``attempt`` of call ``call_id`` now."""

    call_id: Id
    attempt: int


@dataclass(frozen=True, slots=True)
class CallAt:
    """Caller → timer: call :meth:`RestCaller.retry_due` for ``call_id`` at ``at_s``."""

    call_id: Id
    at_s: float


@dataclass(frozen=True, slots=True)
class CallDone:
    """Caller → app: the call is over, ``status`` ``accepted`` or why it was refused."""

    call_id: Id
    status: str
    attempts: int


class _Call:
    __slots__ = ("attempt", "deadline", "refusals", "waiting_retry")

    def __init__(self) -> None:
        self.attempt = 0
        self.deadline = math.inf
        self.waiting_retry = False
        self.refusals = 0  # refusals of the call's current attempts (not stale answers)


class RestCaller:
    """The backend's side of its REST calls (see the module docstring).

    ``timeout_s`` is how long an attempt waits for its answer before it is re-sent;
    ``max_retries`` how many retries after a refusal a call gets before the caller gives
    up on it (None: it retries until admitted).
    Counters: ``refused`` (rate-limited answers received), ``retries`` (attempts after the
    first), ``timeouts`` (attempts re-sent because no answer came), ``gave_up`` (calls
    ended with :data:`GAVE_UP`).
    """

    def __init__(self, timeout_s: float, max_retries: int | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if max_retries is not None and max_retries < 0:
            raise ValueError("max_retries must be >= 0 or None")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.gave_up = 0
        self._calls: dict[Id, _Call] = {}
        self.refused = 0
        self.retries = 0
        self.timeouts = 0

    def __len__(self) -> int:
        """Calls not finished yet."""
        return len(self._calls)

    def _send(self, call_id: Id, call: _Call, now: float) -> CallNow:
        call.attempt += 1
        if call.attempt > 1:
            self.retries += 1
        call.deadline = now + self.timeout_s
        call.waiting_retry = False
        return CallNow(call_id, call.attempt)

    def start(self, call_id: Id, now: float) -> list[CallNow]:
        """A new call: its first attempt goes out now."""
        if call_id in self._calls:
            raise ValueError(f"call {call_id!r} already started")
        call = self._calls[call_id] = _Call()
        return [self._send(call_id, call, now)]

    def deadline(self, call_id: Id) -> float | None:
        """When the current attempt of ``call_id`` times out (None: finished or waiting
        for its retry-after)."""
        call = self._calls.get(call_id)
        if call is None or call.waiting_retry:
            return None
        return call.deadline

    def handle_answer(self, answer: RestAnswer, now: float) -> list[CallNow | CallAt | CallDone]:
        """The server answered an attempt. An answer to an older attempt than the current
        one still counts (the call was done by the first attempt that got through)."""
        call = self._calls.get(answer.call_id)
        if call is None:
            return []  # an answer to a call already finished (a late duplicate)
        if answer.status == RATE_LIMITED:
            self.refused += 1
            if answer.attempt != call.attempt or call.waiting_retry:
                return []  # a newer attempt is out (or a retry already planned)
            call.refusals += 1
            if self.max_retries is not None and call.refusals > self.max_retries:
                del self._calls[answer.call_id]
                self.gave_up += 1
                return [CallDone(answer.call_id, GAVE_UP, call.attempt)]
            call.waiting_retry = True
            return [CallAt(answer.call_id, now + answer.retry_after_s)]
        del self._calls[answer.call_id]
        return [CallDone(answer.call_id, answer.status, call.attempt)]

    def retry_due(self, call_id: Id, now: float) -> list[CallNow]:
        """A retry-after has passed: send the call again."""
        call = self._calls.get(call_id)
        if call is None or not call.waiting_retry:
            return []
        return [self._send(call_id, call, now)]

    def handle_timeout(self, call_id: Id, attempt: int, now: float) -> list[CallNow]:
        """Attempt ``attempt`` of ``call_id`` reached its deadline: re-send the call with
        the same ids when that attempt is still the current one and unanswered."""
        call = self._calls.get(call_id)
        if call is None or call.waiting_retry or call.attempt != attempt or now < call.deadline:
            return []
        self.timeouts += 1
        return [self._send(call_id, call, now)]


__all__ = [
    "ACCEPTED",
    "ADMIN_IDENTIFIER",
    "ADMIN_UID",
    "CALL_KINDS",
    "DEFAULT_MAX_CALLS_PER_S",
    "GAVE_UP",
    "RATE_LIMITED",
    "Admission",
    "CallAt",
    "CallDone",
    "CallNow",
    "FixedWindowLimiter",
    "RestAnswer",
    "RestCaller",
]

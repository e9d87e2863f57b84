"""Backend senders: a business backend calls the server's REST API over HTTPS.

The second entry of the article's uplink. A business backend (an admin console, a
notification service) sends messages as the **admin account** (user id
:data:`~immodel.protocol.rest.ADMIN_UID`, outside ``0..users-1``; the records mark its
messages ``origin = "rest"``), with no SDK and no long connection:

* **single sends** — Poisson calls at ``workload.rest_rate_per_s`` during the sending
  period, each one 1:1 message to a user drawn uniformly; with
  ``workload.rest_batch_size`` > 1 each call is a **batch send** to that many distinct
  users (one 1:1 message each);
* **broadcasts** — at each time of ``workload.rest_broadcasts``, one call carrying one
  message to every user, which the server fans out itself (the vendor's all-member push
  is one call, not one per user). Its conversation is ``broadcast``, sequenced like a
  group that every user belongs to, so a missed broadcast is a seq gap that sync repairs.

One call, end to end::

    backend ─(HTTPS: TCP + TLS handshake unless keep-alive, then the request)─► access node
      access stage: [TLS] + UserSig check + forward ─► rate limit (per app, per second)
        refused ─► 429 + retry-after ─► backend waits, calls again
        admitted ─► each message: sender's logic node (the admin's): dedup (the backend's
                    own ids) ─► auth ─► checks ─► … ─► store ─► fan-out, as SDK messages
                 ─► the HTTP answer once every message of the call has its reply
    no answer within transport.request_timeout_s ─► the same call again (same ids)

What is decided (the rate limit and its retry-after, when the backend calls again) lives
in :mod:`immodel.protocol.rest`; the UserSig check is
:func:`immodel.protocol.admission.authenticate`. This module adds the time (the backend's
network latency ``workload.rest_latency_ms``, ``transport.handshake_rtts`` round trips per
handshake, the access node's ``server.tls_handshake_ms`` + ``server.auth_ms`` +
``server.access_request_ms``) and the randomness (streams ``rest``, ``rest_latency``,
``rest_pick``). A send's time (``t_send``) is when the backend starts the call, so the
latency of a REST message includes its handshake, its rate-limit waits and its retries.

Lifecycle: built with the world; :meth:`Backend.start` schedules the calls. With the
default keys (no rate, no broadcasts) it draws nothing and schedules nothing, so a
default run is unchanged.
"""

from __future__ import annotations

import math
from typing import Any

from immodel.protocol import admission
from immodel.protocol.messages import Message, SendReply
from immodel.protocol.rest import (
    ACCEPTED,
    ADMIN_IDENTIFIER,
    ADMIN_UID,
    RATE_LIMITED,
    CallAt,
    CallDone,
    CallNow,
    FixedWindowLimiter,
    RestAnswer,
    RestCaller,
)
from immodel.protocol.usersig import generate_usersig
from immodel.sim.kernel import at_time, later
from immodel.sim.network import latency_sampler
from immodel.sim.security import SDKAPPID, USERSIG_KEY

#: A REST call's URL and headers beyond the body: the admin UserSig, app id, identifier,
#: random and content type in the query string (bytes).
REST_URL_BYTES = 400
#: The conversation of admin broadcasts (every user is a member; sequenced like a group).
BROADCAST_CONVERSATION = "broadcast"


def rest_backlog_s(sc: Any) -> float:
    """How long after the sending period the backend's calls over the rate limit take to
    be admitted (s; 0 without an overload): the calls offered (``rest_rate_per_s`` ×
    ``duration_s``, plus one per broadcast) beyond ``L`` per second of the sending period,
    admitted at ``L`` per second. The offered count is Poisson: four standard deviations
    are added so that the drain covers the backlog of nearly every run, plus one second
    for the window boundary."""
    limit = sc["server.rest_max_calls_per_s"]
    mean = sc["workload.rest_rate_per_s"] * sc["duration_s"]
    calls = mean + 4.0 * math.sqrt(mean) + len(sc["workload.rest_broadcasts"])
    excess = calls - limit * sc["duration_s"]
    return 0.0 if excess <= 0 else excess / limit + 1.0


class AdminSender:
    """Who the logic tier sees as the sender of a REST message (it has no connection:
    the logic tier hands its replies to :meth:`Backend.message_replied`)."""

    __slots__ = ("uid",)

    def __init__(self) -> None:
        self.uid = ADMIN_UID


class _Call:
    __slots__ = ("kind", "messages", "t_start")

    def __init__(self, kind: str, messages: tuple[Message, ...], t_start: float) -> None:
        self.kind = kind
        self.messages = messages
        self.t_start = t_start


class Backend:
    """The business backend and the server's REST entry (see the module docstring)."""

    def __init__(self, world: Any) -> None:
        sc = world.sc
        self.w = world
        self.env = world.env
        self.rate_per_s = sc["workload.rest_rate_per_s"]
        self.batch_size = sc["workload.rest_batch_size"]
        self.broadcast_times = sc["workload.rest_broadcasts"]
        self.enabled = self.rate_per_s > 0 or bool(self.broadcast_times)
        self.max_calls_per_s = sc["server.rest_max_calls_per_s"]
        # counters (summary keys rest_*)
        self.calls_offered = 0
        self.calls_accepted = 0
        self.calls_refused = 0
        self.messages_sent = 0
        self.accepted_t: list[float] = []  # when each admitted call was admitted (s)
        if not self.enabled:
            return
        self.keep_alive = sc["workload.rest_keep_alive"]
        self.warm = False  # keep-alive: the backend's connection pool is open
        self.handshake_rtts = sc["transport.handshake_rtts"]
        self.payload = sc["workload.payload_bytes"]
        self.header = sc["network.header_bytes"]
        self.cost_call = sc["server.auth_ms"] + sc["server.access_request_ms"]
        self.cost_tls = sc["server.tls_handshake_ms"]
        self.epoch_s = sc["security.epoch_s"]
        self.ttl_s = sc["security.usersig_ttl_s"]
        self.latency = latency_sampler(
            sc["workload.rest_latency_ms"], world.streams["rest_latency"]
        )
        self.limiter = FixedWindowLimiter(self.max_calls_per_s)
        max_retries = sc["workload.rest_max_retries"]  # -1: retry until admitted
        self.caller = RestCaller(
            timeout_s=sc["transport.request_timeout_s"],
            max_retries=None if max_retries < 0 else max_retries,
        )
        self.sender = AdminSender()
        self.calls: dict[str, _Call] = {}
        self.msg_call: dict[str, str] = {}
        # the server's side: admitted calls whose HTTP answer waits for message replies
        self.answering: dict[str, tuple[int, set[str]]] = {}
        self._n_calls = 0
        self._n_msgs = 0
        self._token = ""
        self._token_at = -math.inf
        if self.broadcast_times:
            for u in range(world.n_users):
                world.store.join(u, BROADCAST_CONVERSATION)

    # ------------------------------------------------------------------------------------
    # the backend
    def start(self) -> None:
        """Schedule the Poisson single/batch calls and the broadcasts."""
        if not self.enabled:
            return
        if self.rate_per_s > 0:
            gap = self.w.streams["rest"].exponential(1.0 / self.rate_per_s)
            later(self.env, gap, self._tick, None)
        for t in self.broadcast_times:
            later(self.env, t, self._broadcast, None)

    def _tick(self, _arg) -> None:
        if self.env.now >= self.w.duration_s:
            return
        stream = self.w.streams["rest"]
        n = self.w.n_users
        if self.batch_size == 1:
            users: tuple[int, ...] = (stream.below(n),)
            kind = "single"
        else:
            picks = stream.generator.choice(n, size=self.batch_size, replace=False)
            users = tuple(int(u) for u in picks)
            kind = "batch"
        messages = []
        for u in users:
            conv = self.w._one_to_one(ADMIN_UID, u)
            messages.append(self._message(conv, False, (u,)))
        self._start_call(kind, tuple(messages))
        later(self.env, stream.exponential(1.0 / self.rate_per_s), self._tick, None)

    def _broadcast(self, _arg) -> None:
        everyone = tuple(range(self.w.n_users))
        self._start_call("broadcast", (self._message(BROADCAST_CONVERSATION, True, everyone),))

    def _message(self, conv: str, is_group: bool, recipients: tuple[int, ...]) -> Message:
        self._n_msgs += 1
        msg = Message(f"rest-{self._n_msgs}", ADMIN_UID, conv, is_group, self.payload)
        self.w.rec.sent(self.env.now, msg, recipients)
        self.messages_sent += 1
        return msg

    def _start_call(self, kind: str, messages: tuple[Message, ...]) -> None:
        self._n_calls += 1
        call_id = f"call-{self._n_calls}"
        self.calls[call_id] = _Call(kind, messages, self.env.now)
        for m in messages:
            self.msg_call[m.msg_id] = call_id
        self.calls_offered += 1
        self._act(self.caller.start(call_id, self.env.now))

    def _act(self, actions) -> None:
        for a in actions:
            if type(a) is CallNow:
                self._transmit(a.call_id, a.attempt)
            elif type(a) is CallAt:
                at_time(self.env, a.at_s, self._retry_due, a.call_id)
            elif type(a) is CallDone:
                self._done(a)

    def _transmit(self, call_id: str, attempt: int) -> None:
        call = self.calls[call_id]
        if attempt > 1:
            for m in call.messages:
                self.w.rec.set_attempts(m.msg_id, attempt)
        handshake = not (self.keep_alive and self.warm)
        self.warm = True
        delay = self.latency()
        if handshake:  # TCP + TLS round trips before the request goes out
            for _ in range(self.handshake_rtts):
                delay += self.latency() + self.latency()
        later(self.env, delay, self._arrives, (call_id, attempt, handshake))
        later(self.env, self.caller.timeout_s, self._timeout, (call_id, attempt))

    def _retry_due(self, call_id: str) -> None:
        self._act(self.caller.retry_due(call_id, self.env.now))

    def _timeout(self, arg) -> None:
        call_id, attempt = arg
        self._act(self.caller.handle_timeout(call_id, attempt, self.env.now))

    def _answer_arrives(self, answer: RestAnswer) -> None:
        self._act(self.caller.handle_answer(answer, self.env.now))

    def _done(self, done: CallDone) -> None:
        call = self.calls.pop(done.call_id)
        now = self.env.now
        for m in call.messages:
            self.w.rec.outcome(m.msg_id, now, "" if done.status == ACCEPTED else done.status)
            self.msg_call.pop(m.msg_id, None)

    # ------------------------------------------------------------------------------------
    # the server's REST entry
    def _token_now(self) -> str:
        """The admin UserSig the backend signs with (it holds the app's key and signs a
        fresh one when half of the current one's lifetime has passed)."""
        now = math.floor(self.env.now)
        if now - self._token_at >= self.ttl_s / 2:
            self._token_at = now
            self._token = generate_usersig(
                sdkappid=SDKAPPID,
                key=USERSIG_KEY,
                identifier=ADMIN_IDENTIFIER,
                expire_s=self.ttl_s,
                now=self.epoch_s + now,
            )
        return self._token

    def _arrives(self, arg) -> None:
        call_id, attempt, handshake = arg
        nodes = [n for n in self.w.access.nodes if n.up]
        if not nodes:
            return  # no access node answers: the backend's timeout calls again
        node = nodes[0] if len(nodes) == 1 else nodes[self.w.streams["rest_pick"].below(len(nodes))]
        token = self._token_now()
        cost = self.cost_call + (self.cost_tls if handshake else 0.0)
        node.stage.submit(self._served, (node, call_id, attempt, token), cost)

    def _answer(self, answer: RestAnswer) -> None:
        later(self.env, self.latency(), self._answer_arrives, answer)

    def _served(self, job) -> None:
        node, call_id, attempt, token = job
        if not node.up:
            return
        now = self.env.now
        call = self.calls.get(call_id)
        n_msgs = len(call.messages) if call is not None else 0
        size = self.header + REST_URL_BYTES + n_msgs * self.payload
        verdict = self.limiter.admit(now)
        if not verdict.admitted:
            self.calls_refused += 1
            self.w.rec.request(now, ADMIN_UID, "rest_refused", 0, size)
            self._answer(RestAnswer(call_id, attempt, RATE_LIMITED, verdict.retry_after_s))
            return
        decision = admission.authenticate(
            token,
            sdkappid=SDKAPPID,
            key=USERSIG_KEY,
            identifier=ADMIN_IDENTIFIER,
            now=self.epoch_s + math.floor(now),
        )
        if not decision.accepted:
            self.calls_refused += 1
            self.w.rec.request(now, ADMIN_UID, "rest_refused", 0, size)
            self._answer(RestAnswer(call_id, attempt, str(decision.reason)))
            return
        self.calls_accepted += 1
        self.accepted_t.append(now)
        self.w.rec.request(now, ADMIN_UID, "rest", n_msgs, size)
        if call is None:
            return  # the backend is done with it (answered by an earlier attempt)
        self.answering[call_id] = (attempt, {m.msg_id for m in call.messages})
        send = self.w.logic.send_arrives
        for m in call.messages:
            send((self.sender, m))

    def message_replied(self, reply: SendReply) -> None:
        """The logic tier's reply for a REST message: the call is answered once every
        message of it has a final reply (a retryable one waits for the call's retry)."""
        if reply.retryable:
            return
        call_id = self.msg_call.get(reply.msg_id)
        entry = self.answering.get(call_id) if call_id is not None else None
        if entry is None:
            return
        if not reply.accepted:
            self.w.rec.set_failure(reply.msg_id, reply.reason)
        attempt, waiting = entry
        waiting.discard(reply.msg_id)
        if not waiting:
            del self.answering[call_id]
            self._answer(RestAnswer(call_id, attempt, ACCEPTED))

    # ------------------------------------------------------------------------------------
    # measurement
    def summary(self) -> dict[str, Any]:
        """The run's ``rest_*`` counters (docs/metrics.md)."""
        per_second: dict[int, int] = {}
        for t in self.accepted_t:
            k = math.floor(t)
            per_second[k] = per_second.get(k, 0) + 1
        caller = getattr(self, "caller", None)
        return {
            "rest_calls": self.calls_accepted,
            "rest_refused": self.calls_refused,
            "rest_retries": caller.retries if caller is not None else 0,
            "rest_gave_up": caller.gave_up if caller is not None else 0,
            "rest_calls_offered": self.calls_offered,
            "rest_messages": self.messages_sent,
            "rest_calls_max_per_s": max(per_second.values(), default=0),
        }


__all__ = ["BROADCAST_CONVERSATION", "AdminSender", "Backend"]

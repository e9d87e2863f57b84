"""REST senders in ``immodel real``: the business backend's calls and the access node's
REST endpoint, on real HTTPS.

The simulator's backend (:mod:`immodel.sim.backend`) on real sockets:

* **The plan** (:func:`make_rest_plan`): the calls the simulated backend makes, replayed
  from the run's stream ``rest`` with its rules — Poisson calls at
  ``workload.rest_rate_per_s`` during the sending period, each one user drawn uniformly
  (``stream.below``) or, with ``workload.rest_batch_size`` > 1, that many distinct users
  (``generator.choice``), the next gap drawn after the users; one broadcast to every user
  at each time of ``workload.rest_broadcasts``. Messages are numbered ``rest-1``,
  ``rest-2`` … in call order, as the simulator numbers them, so a real run sends the
  simulated run's messages to the same users.
* **The backend** (:class:`RestBackend`): tasks in the load generator's event loop (a
  handful of calls per second next to thousands of client tasks; its CPU is counted in
  ``cpu_s_loadgen``). Each call is one HTTPS ``POST /rest`` to an access node, signed with
  the admin account's UserSig (:data:`~immodel.protocol.rest.ADMIN_IDENTIFIER`, a fresh one
  every half lifetime, as the simulated backend signs), with a new TCP + TLS connection per
  call unless ``workload.rest_keep_alive``. What to do with each answer — retry after a
  refusal's retry-after, send the call again (same message ids) after
  ``transport.request_timeout_s`` without an answer, give up after
  ``workload.rest_max_retries`` — is the protocol's :class:`~immodel.protocol.rest.
  RestCaller`.
* **The network.** The backend's link is not the users' mobile network: the simulator
  gives it ``workload.rest_latency_ms`` and not ``network.latency_ms``. So the backend does
  not go through the fault proxy (which adds ``network.latency_ms`` to the users' links);
  it connects to the access node's HTTPS port directly and waits a draw of
  ``workload.rest_latency_ms`` (stream ``rest_latency``) before each request and after
  each answer, plus two draws per round trip of ``transport.handshake_rtts`` before a call
  that opens a connection — the simulator's delays, added by the harness, with the real
  TLS handshake and HTTP on loopback on top.
* **The access node's endpoint** (:class:`RestEndpoint`, on the HTTPS port the web clients
  use): the per-app rate limit (the protocol's :class:`~immodel.protocol.rest.
  FixedWindowLimiter`, on the seconds since the sending period began, as the simulator's
  clock), then the admin UserSig check (:func:`immodel.protocol.admission.authenticate`),
  then each message of the call goes to the admin's logic node (the rendezvous hash of
  :data:`~immodel.protocol.rest.ADMIN_UID`) as a send; the answer leaves once every message
  has a final reply (none within ``transport.request_timeout_s``: the answer says so and
  the backend's own timeout sends the call again, as a simulated call left unanswered).
  The limiter is one per access process: the harness runs REST senders with one access
  node (:func:`immodel.real.orchestrator.check_supported`), so that it is the app's one
  limit, as in the simulator.

The logic servers store and fan out admin messages as SDK messages: a 1:1 message in the
simulator's conversation ``d-1-<user>``, a broadcast in the group ``broadcast`` of every
user (:func:`rest_recipients`).
"""

from __future__ import annotations

import asyncio
import math
import ssl
from dataclasses import dataclass
from typing import Any

from immodel.protocol import admission
from immodel.protocol.messages import Message
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
from immodel.real import wire
from immodel.real.common import HOST
from immodel.sim.backend import BROADCAST_CONVERSATION, REST_URL_BYTES
from immodel.sim.network import latency_sampler
from immodel.sim.rng import Streams

#: Seconds an HTTP answer may take beyond the call's timeout before its request is
#: abandoned (the endpoint answers within ``transport.request_timeout_s`` of admission).
ANSWER_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class RestCall:
    """One planned call: at ``t_s`` (seconds into the sending period), ``kind`` (single,
    batch or broadcast), its messages with each one's recipients."""

    t_s: float
    kind: str
    messages: tuple[tuple[Message, tuple[int, ...]], ...]


def rest_enabled(sc) -> bool:
    """Whether the scenario's business backend sends anything."""
    return sc["workload.rest_rate_per_s"] > 0 or bool(sc["workload.rest_broadcasts"])


def make_rest_plan(sc) -> list[RestCall]:
    """The simulated backend's calls for this scenario and seed, in time order (see the
    module docstring; :meth:`immodel.sim.backend.Backend._tick` draws the same way)."""
    if not rest_enabled(sc):
        return []
    n = sc["workload.users"]
    rate = sc["workload.rest_rate_per_s"]
    batch = sc["workload.rest_batch_size"]
    payload = sc["workload.payload_bytes"]
    events: list[tuple[float, int, tuple[int, ...] | None]] = []  # (t, order, users)
    if rate > 0:
        stream = Streams(sc["seed"])["rest"]
        t = stream.exponential(1.0 / rate)
        while t < sc["duration_s"]:
            if batch == 1:
                users: tuple[int, ...] = (stream.below(n),)
            else:
                picks = stream.generator.choice(n, size=batch, replace=False)
                users = tuple(int(u) for u in picks)
            events.append((t, len(events), users))
            t += stream.exponential(1.0 / rate)
    for t in sc["workload.rest_broadcasts"]:
        events.append((float(t), len(events), None))
    events.sort()
    calls: list[RestCall] = []
    n_msgs = 0
    for t, _, users in events:
        if users is None:
            n_msgs += 1
            msg = Message(f"rest-{n_msgs}", ADMIN_UID, BROADCAST_CONVERSATION, True, payload)
            calls.append(RestCall(t, "broadcast", ((msg, tuple(range(n))),)))
            continue
        msgs = []
        for u in users:
            n_msgs += 1
            conv = f"d{ADMIN_UID}-{u}"  # the simulator's 1:1 name (ADMIN_UID < every user)
            msgs.append((Message(f"rest-{n_msgs}", ADMIN_UID, conv, False, payload), (u,)))
        calls.append(RestCall(t, "single" if batch == 1 else "batch", tuple(msgs)))
    return calls


def rest_recipients(msg: Message, groups: dict[str, list[int]]) -> list[int]:
    """Who an admin message goes to: every member of ``broadcast`` (every user), or the
    user of its 1:1 conversation ``d-1-<user>``."""
    if msg.is_group:
        return list(groups.get(msg.conversation, ()))
    return [int(msg.conversation.rsplit("-", 1)[1])]


class _Call:
    __slots__ = ("kind", "messages", "t_start")

    def __init__(self, plan: RestCall, t_start: float) -> None:
        self.kind = plan.kind
        self.messages = plan.messages
        self.t_start = t_start


class RestBackend:
    """The business backend of a real run (module docstring). ``gen`` is the load
    generator (its clock and records); ``access_https`` returns the live access nodes'
    ``(index, HTTPS port)``."""

    def __init__(self, gen, ssl_context: ssl.SSLContext, access_https) -> None:
        sc = gen.sc
        self.gen = gen
        self.sc = sc
        self.ssl_context = ssl_context
        self.access_https = access_https
        streams = Streams(sc["seed"])
        self.latency_s = latency_sampler(sc["workload.rest_latency_ms"], streams["rest_latency"])
        self.pick = streams["rest_pick"]
        self.keep_alive = sc["workload.rest_keep_alive"]
        self.warm = False  # keep-alive: the pool has a connection (the simulator's rule)
        self.handshake_rtts = sc["transport.handshake_rtts"]
        self.timeout_s = sc["transport.request_timeout_s"]
        max_retries = sc["workload.rest_max_retries"]  # -1: retry until admitted
        self.caller = RestCaller(
            timeout_s=self.timeout_s, max_retries=None if max_retries < 0 else max_retries
        )
        self.ttl_s = sc["security.usersig_ttl_s"]
        self.epoch_s = sc["security.epoch_s"]
        self.calls: dict[str, _Call] = {}
        self.calls_offered = 0
        self.messages_sent = 0
        self._token = ""
        self._token_at = -math.inf
        self._http = None
        self._tasks: set[asyncio.Task] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    # -- the plan -------------------------------------------------------------------------
    async def play(self, calls: list[RestCall], t_start: float) -> None:
        """Start each planned call at ``t_start`` + its time (run clock)."""
        if calls:  # the pool (and aiohttp's client imports) before the first call is due
            self._session()
        for i, call in enumerate(calls):
            wait = t_start + call.t_s - self.gen.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._start(f"call-{i + 1}", call)

    def _start(self, call_id: str, plan: RestCall) -> None:
        now = self.gen.clock()
        self.calls[call_id] = _Call(plan, now)
        for msg, rcpt in plan.messages:
            self.gen.events.sent.append((now, msg, rcpt))
            self.messages_sent += 1
        self.calls_offered += 1
        self._act(self.caller.start(call_id, now))

    # -- the caller's actions ---------------------------------------------------------------
    def _act(self, actions) -> None:
        loop = self.gen.loop
        t0 = self.gen.cfg["t0"]
        for a in actions:
            if type(a) is CallNow:
                self._transmit(a.call_id, a.attempt)
            elif type(a) is CallAt:
                self._timer(loop.call_at(t0 + a.at_s, self._retry_due, a.call_id))
            elif type(a) is CallDone:
                self._done(a)

    def _timer(self, handle: asyncio.TimerHandle) -> None:
        self._timers.add(handle)

    def _retry_due(self, call_id: str) -> None:
        self._act(self.caller.retry_due(call_id, self.gen.clock()))

    def _timeout(self, call_id: str, attempt: int) -> None:
        self._act(self.caller.handle_timeout(call_id, attempt, self.gen.clock()))

    def _transmit(self, call_id: str, attempt: int) -> None:
        call = self.calls[call_id]
        if attempt > 1:
            for msg, _ in call.messages:
                self.gen.events.attempts[msg.msg_id] = attempt
        handshake = not (self.keep_alive and self.warm)
        self.warm = True
        delay_s = self.latency_s()
        if handshake:  # TCP + TLS round trips before the request goes out
            for _ in range(self.handshake_rtts):
                delay_s += self.latency_s() + self.latency_s()
        task = asyncio.create_task(self._attempt(call_id, attempt, delay_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # a millisecond past the deadline: the loop may run a timer up to its clock's
        # resolution early, and the caller ignores a timeout before the deadline
        self._timer(
            self.gen.loop.call_later(self.timeout_s + 1e-3, self._timeout, call_id, attempt)
        )

    def _done(self, done: CallDone) -> None:
        call = self.calls.pop(done.call_id)
        now = self.gen.clock()
        failure = "" if done.status == ACCEPTED else done.status
        for msg, _ in call.messages:
            self.gen.events.outcomes.append((msg.msg_id, now, failure))

    # -- HTTPS --------------------------------------------------------------------------------
    def _session(self):
        import aiohttp

        if self._http is None:
            # keep-alive: one pool, connections reused; else a connection per call
            connector = aiohttp.TCPConnector(ssl=self.ssl_context, force_close=not self.keep_alive)
            self._http = aiohttp.ClientSession(connector=connector)
        return self._http

    def _token_now(self) -> str:
        """The admin UserSig, signed afresh when half of the last one's lifetime passed."""
        now = math.floor(self.gen.usersig_clock())
        if now - self._token_at >= self.ttl_s / 2:
            self._token_at = now
            self._token = generate_usersig(
                sdkappid=self.gen.cfg["sdkappid"],
                key=self.gen.cfg["usersig_key"],
                identifier=ADMIN_IDENTIFIER,
                expire_s=self.ttl_s,
                now=self.epoch_s + now,
            )
        return self._token

    async def _attempt(self, call_id: str, attempt: int, delay_s: float) -> None:
        import aiohttp

        await asyncio.sleep(delay_s)
        call = self.calls.get(call_id)
        live = self.access_https()
        if call is None or not live:
            return  # done meanwhile, or no access node: the timeout calls again
        _index, port = live[0] if len(live) == 1 else live[self.pick.below(len(live))]
        body = {
            "sig": self._token_now(),
            "call_id": call_id,
            "attempt": attempt,
            "msgs": [wire.message_to_wire(m) for m, _ in call.messages],
        }
        try:
            async with self._session().post(
                f"https://{HOST}:{port}/rest",
                json=body,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s + ANSWER_GRACE_S),
            ) as response:
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.gen.counters["rest_http_errors"] += 1
            return  # no answer: the caller's timeout sends the call again
        # the server's row: when it admitted or refused the call (run clock)
        kind = "rest" if answer["admitted"] else "rest_refused"
        size = self.sc["network.header_bytes"] + REST_URL_BYTES
        size += len(call.messages) * self.sc["workload.payload_bytes"]
        self.gen.events.requests.append([answer["t"], ADMIN_UID, kind, len(call.messages), size])
        for msg_id, reason in answer.get("failed", {}).items():
            self.gen.events.outcomes.append((msg_id, answer["t"], reason))
        await asyncio.sleep(self.latency_s())  # the answer's way back
        if answer["status"] is None:
            return  # admitted, but a reply is missing: the call times out and goes again
        verdict = RestAnswer(call_id, attempt, answer["status"], answer.get("retry_after_s", 0.0))
        self._act(self.caller.handle_answer(verdict, self.gen.clock()))

    async def aclose(self) -> None:
        """Stop the calls still going and close the HTTP pool."""
        for handle in self._timers:
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    # -- measurement -----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The run's ``rest_*`` counters (docs/metrics.md), from the server's answers (the
        ``rest`` / ``rest_refused`` rows, stamped when the server admitted or refused each
        call) and the caller's counts, as the simulated backend counts them."""
        rows = [r for r in self.gen.events.requests if r[2] in ("rest", "rest_refused")]
        per_second: dict[int, int] = {}
        t_start = self.gen.t_start
        for r in rows:
            if r[2] == "rest":
                k = math.floor(r[0] - t_start)
                per_second[k] = per_second.get(k, 0) + 1
        return {
            "rest_calls": sum(1 for r in rows if r[2] == "rest"),
            "rest_refused": sum(1 for r in rows if r[2] == "rest_refused"),
            "rest_retries": self.caller.retries,
            "rest_gave_up": self.caller.gave_up,
            "rest_calls_offered": self.calls_offered,
            "rest_messages": self.messages_sent,
            "rest_calls_max_per_s": max(per_second.values(), default=0),
        }


class RestEndpoint:
    """The REST API on an access node (module docstring): ``POST /rest`` with the admin
    UserSig, the call's id and attempt and its messages; answered with ``status``
    (``accepted``, ``rate_limited`` with ``retry_after_s``, an auth reason, or None when a
    message's reply did not come in time), ``admitted``, ``t`` (run clock of the
    decision) and ``failed`` (message id → reason, for messages the logic tier refused)."""

    def __init__(self, server) -> None:
        sc = server.cfg["scenario"]
        self.server = server
        self.limiter = FixedWindowLimiter(sc["server.rest_max_calls_per_s"])

    def _seconds(self, now: float) -> float:
        """Run-clock ``now`` in seconds since the sending period began (the simulator's
        clock; the records shift the call's row by the same subtraction, so both put it in
        the same whole second)."""
        origin = self.server.origin_s
        return now if origin is None else now - origin

    async def h_rest(self, request):
        """One REST call (see the class docstring)."""
        from aiohttp import web

        server = self.server
        counts = server.stats.counts
        try:
            data = await request.json()
            sig, msgs = str(data["sig"]), [wire.message_from_wire(m) for m in data["msgs"]]
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text="a JSON object with 'sig' and 'msgs'") from None
        t = server.clock()
        verdict = self.limiter.admit(self._seconds(t))
        if not verdict.admitted:
            counts["rest_refused"] += 1
            return web.json_response(
                {
                    "status": RATE_LIMITED,
                    "retry_after_s": verdict.retry_after_s,
                    "admitted": False,
                    "t": t,
                }
            )
        decision = admission.authenticate(
            sig,
            sdkappid=server.cfg["sdkappid"],
            key=server.cfg["usersig_key"],
            identifier=ADMIN_IDENTIFIER,
            now=server.epoch_s + math.floor(self._seconds(t)),
        )
        if not decision.accepted:
            counts["rest_refused"] += 1
            return web.json_response({"status": str(decision.reason), "admitted": False, "t": t})
        counts["rest_admitted"] += 1
        timeout_s = server.request_timeout_s
        answers = await asyncio.gather(
            *(
                server._ask(
                    ADMIN_UID,
                    "reply:" + m.msg_id,
                    {"op": "send", "user": ADMIN_UID, "msg": wire.message_to_wire(m)},
                    timeout_s,
                )
                for m in msgs
            )
        )
        replies = [None if a is None else wire.reply_from_wire(a["reply"]) for a in answers]
        final = all(r is not None and not r.retryable for r in replies)
        failed = {r.msg_id: r.reason for r in replies if r is not None and not r.accepted}
        return web.json_response(
            {"status": ACCEPTED if final else None, "admitted": True, "t": t, "failed": failed}
        )


__all__ = [
    "RestBackend",
    "RestCall",
    "RestEndpoint",
    "make_rest_plan",
    "rest_enabled",
    "rest_recipients",
]

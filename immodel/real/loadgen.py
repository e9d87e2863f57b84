"""The load generator of ``immodel real``: the scenario's users as real TLS clients,
driven by the protocol's :class:`~immodel.protocol.sender.UplinkSender` and
:class:`~immodel.protocol.receiver.Receiver`.

**The plan** (:func:`make_plan`) — who sends what, when — is drawn before the run from
the run's named random streams (:class:`immodel.sim.rng.Streams`: ``groups``,
``contacts``, ``presence``, ``workload``) with the simulator's own rules (Poisson sends
at ``send_rate_per_user`` × users online, a group message with ``group_share``, else a
1:1 message to a uniformly chosen user or contact), so the same seed gives the same
plan. Timing is wall-clock: a planned send at ``t`` is submitted when the run clock
reaches ``t``.

**The network.** Every client connects through the fault proxy
(:mod:`immodel.real.proxy`), from an address of its own in 127.0.0.0/8
(:func:`~immodel.real.proxy.user_address`): the proxy adds ``network.latency_ms`` to
each direction, holds a ``partition``'s bytes and resets connections. The clients add
no delay of their own. There is no loss: scenarios with loss are refused.

**What is recorded** (client side, run clock): each message when submitted, each copy
shown (with ``via``: push or sync, and what repaired it), each request when its frame is
written to the socket (kind, messages, bytes of the frame), the sender's attempts and
outcome. :mod:`immodel.real.recorder` turns them, with the store's rows, into the
simulator's records.

A client whose connection breaks (an access process killed) suspends its sender,
reconnects to a live access node after the simulator's full-jitter wait (uniform in
[0, ``transport.reconnect_base_s``], the window doubling after each failed attempt up to
``reconnect_max_s``; stream ``reconnect``), logs in again and syncs.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from dataclasses import dataclass, field
from typing import Any

from immodel.protocol.messages import (
    Message,
    SendAck,
    SendFailed,
    SendSucceeded,
    Show,
    StartSync,
    Transmit,
)
from immodel.protocol.receiver import Receiver
from immodel.protocol.sender import UplinkSender
from immodel.protocol.usersig import generate_usersig
from immodel.real import wire
from immodel.real.common import HOST
from immodel.real.proxy import user_address
from immodel.sim import endpoints
from immodel.sim.devices import build_devices
from immodel.sim.network import latency_sampler
from immodel.sim.presence import OnlineSet
from immodel.sim.rng import Streams
from immodel.sim.workload import draw_device, draw_message

#: Seconds any single network wait of a client may take before it is abandoned.
IO_TIMEOUT_S = 10.0
#: How long a web client keeps an idle keep-alive connection (longer than any run).
MAX_IDLE_S = 3600.0
#: How often the load generator's event-loop lag is sampled (:meth:`LoadGen.watch_lag`).
LAG_PERIOD_S = 0.01


@dataclass
class Plan:
    """Who sends what, when: ``sends`` are ``(t, sender, conversation, is_group,
    recipients)`` in time order; ``online`` the users connected at the start; ``flips``
    the presence changes of a run with churn, ``(t, user, online)`` in time order."""

    groups: dict[str, list[int]]
    online: list[int]
    sends: list[tuple[float, int, str, bool, tuple[int, ...]]] = field(default_factory=list)
    flips: list[tuple[float, int, bool]] = field(default_factory=list)
    #: several devices per user (:class:`immodel.sim.devices.DeviceTable`), or None: the
    #: senders, recipients, ``online`` and ``flips`` are then devices (endpoint ids)
    devices: Any = None
    #: the plan's streams, continued at run time by draws whose order real timing decides
    #: (offline push: :mod:`immodel.real.vendor_push`)
    streams: Any = field(default=None, compare=False, repr=False)


def make_plan(sc) -> Plan:
    """The run's plan from its scenario and seed (see the module docstring).

    It replays the simulator's own draws in the simulator's order: the presence stream
    (who is online at the start, then with churn each user's first period in user order
    and each next period when a flip happens), and the workload stream (the wait to the
    next send, drawn at each send with the number of users online then; the sender
    picked among the users online at the send; a second's wait when nobody is online).
    Churn's flips continue through the drain, as the simulator's do."""
    import heapq

    streams = Streams(sc["seed"])
    n = sc["workload.users"]
    groups: dict[str, list[int]] = {}
    if sc["workload.groups"] > 0 and sc["workload.group_share"] > 0:
        grng = streams["groups"].generator
        for g in range(sc["workload.groups"]):
            members = grng.choice(n, size=sc["workload.group_size"], replace=False)
            groups[f"g{g}"] = sorted(int(m) for m in members)
    contacts = None
    if sc["workload.contacts"] > 0:
        crng = streams["contacts"].generator
        contacts = []
        for u in range(n):
            picks = crng.choice(n - 1, size=sc["workload.contacts"], replace=False)
            contacts.append([int(p) + (p >= u) for p in picks])
    devices = build_devices(sc, n, streams)
    n_dev = n if devices is None else len(devices)
    presence = streams["presence"]
    online0 = presence.generator.random(n_dev) < sc["workload.online_fraction"]
    # the simulator's online set (immodel.sim.presence): the same order of changes
    # gives the same "k-th online user" to the sender draws
    online = OnlineSet()
    if devices is not None:
        online.use_devices(devices.user)
    for u in range(n_dev):
        if online0[u]:
            online.set(u, True)
    plan = Plan(groups, list(online.device_list), devices=devices)
    plan.streams = streams
    mean_on_s, mean_off_s = sc["workload.mean_online_s"], sc["workload.mean_offline_s"]
    flips: list[tuple[float, int]] = []  # (when, user): the next flip of each user
    if mean_on_s > 0:
        for u in range(n_dev):
            first_s = presence.exponential(mean_on_s if online0[u] else mean_off_s)
            heapq.heappush(flips, (first_s, u))
    horizon_s = sc["duration_s"] + sc["drain_s"]

    def flip_until(t_s: float) -> None:
        while flips and flips[0][0] < t_s:
            when, u = heapq.heappop(flips)
            now_online = u not in online.device_pos
            online.set(u, now_online)
            plan.flips.append((when, u, now_online))
            mean = mean_on_s if now_online else mean_off_s
            heapq.heappush(flips, (when + presence.exponential(mean), u))

    rate = sc["workload.send_rate_per_user"]
    if rate <= 0 or (not online.users and not flips):
        flip_until(horizon_s)
        return plan
    stream = streams["workload"]
    names = list(groups)
    members = [groups[name] for name in names]
    share = sc["workload.group_share"] if groups else 0.0
    t = 0.0
    wait_for_users = not online.users
    if not wait_for_users:
        t += stream.exponential(1.0 / (len(online.users) * rate))
    while True:
        if wait_for_users:  # nobody online: look again in a second (no draw)
            t += 1.0
        flip_until(t)
        if t >= sc["duration_s"]:
            flip_until(horizon_s)
            return plan
        if not wait_for_users and online.users:
            plan.sends.append(
                _one_send(t, stream, share, members, names, online, contacts, n, devices)
            )
        wait_for_users = not online.users
        if not wait_for_users:
            t += stream.exponential(1.0 / (len(online.users) * rate))


def _one_send(t, stream, share, members, names, online: OnlineSet, contacts, n, devices):
    """One planned send at ``t``: the simulator's draws (:mod:`immodel.sim.workload`) on
    the users online now. The sender and recipients are devices (endpoint ids) with
    several devices per user: the sending device, and every device of each recipient
    plus the sender's other devices."""
    sender, g, users = draw_message(stream, share, members, online, contacts, n)
    if g >= 0:
        conv = names[g]
    else:
        a, b = min(sender, users[0]), max(sender, users[0])
        conv = f"d{a}-{b}"
    if devices is None:
        return (t, sender, conv, g >= 0, users)
    eid = draw_device(stream, devices, online, sender)
    return (t, eid, conv, g >= 0, devices.expand(users, eid))


class Events:
    """What the clients record, in order, on the run clock (see the module docstring)."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, Message, tuple[int, ...]]] = []
        self.shown: list[tuple[float, Message, int, int, str, str]] = []
        self.requests: list[list] = []  # [t, user, kind, messages, bytes(, answered: polls)]
        self.attempts: dict[str, int] = {}
        self.outcomes: list[tuple[str, float, str]] = []
        self.connects: list[tuple[int, float]] = []  # (user, when its login completed)
        self.connected: list[tuple[float, float]] = []  # (from, to) of every connection
        self.reconnects = 0


class RealClient:
    """One user's app: a TLS connection to an access node, its sender and receiver."""

    def __init__(self, gen: LoadGen, uid: int) -> None:
        sc = gen.sc
        self.gen = gen
        self.uid = uid
        self.sender = UplinkSender(
            uid,
            endpoints.retry_policy(sc),
        )
        self.sender.handle_disconnect(0.0)  # nothing goes out before the first login
        self.receiver = Receiver(uid, **endpoints.receiver_options(sc))
        self.writer: asyncio.StreamWriter | None = None
        self.generation = 0
        self.restart_now = False  # a client_crash: the app reconnects at once
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.connected_at: float | None = None
        self.access: int | None = None
        self.stopping = False
        self.task: asyncio.Task | None = None
        # churn: whether the user has the app open, and which of its online periods this
        # is (a connect or reconnect loop of an earlier period stops when it changes)
        self.wanted_online = True
        self.period = 0
        # its UserSig: issued at this run-clock second (None: not yet needed); stale once
        # a login was refused as expired or the server ended the session at its expiry
        self.issued_s: float | None = None
        self.token_stale = False
        self.heard_at = 0.0  # run clock of the last frame from the access node

    via = "push"  # what the records call a copy that arrived without a sync

    @property
    def online(self) -> bool:
        """Logged in on a connection that is still up."""
        return self.writer is not None

    # -- connection ----------------------------------------------------------------------
    async def connect_once(self, initial: bool = False) -> bool:
        """Open a TLS connection to a live access node and log in; True when logged in.

        ``initial``: the population connected at the start of the run, set up before its
        clock starts — like the simulator's start state, its logins are no requests of
        the run and it has missed nothing, so no reconnect sync follows."""
        gen = self.gen
        access = gen.pick_access(self.uid)
        if access is None:
            return False
        index, port, _http = access
        if self.token_stale:  # the SDK fetches a fresh UserSig first (a relogin)
            await self.fetch_token()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    HOST,
                    port,
                    ssl=gen.ssl_context,
                    server_hostname=HOST,
                    local_addr=(user_address(self.uid), 0),  # the proxy's who-is-who
                ),
                # an attempt that gets nothing back (a partition holds its handshake) is
                # given up after the request timeout, then backoff: the simulator's rule
                gen.sc["transport.request_timeout_s"],
            )
        except (OSError, TimeoutError, ssl.SSLError):
            return False
        if not self.wanted_online:  # the app was closed during the handshake
            writer.close()
            return False
        login = wire.encode({"op": "login", "user": self.uid, "sig": self.token()})
        try:
            writer.write(login)
            if not initial:
                gen.events.requests.append([gen.clock(), self.uid, "login", 0, len(login)])
            answer = await asyncio.wait_for(
                wire.read_frame(reader), gen.sc["transport.request_timeout_s"]
            )
        except (OSError, TimeoutError, ssl.SSLError, wire.FrameError):
            writer.close()
            return False
        if answer is not None and answer.get("reason") == "expired":
            self.token_stale = True  # fetch a fresh one and log in again at once
            writer.close()
            return await self.connect_once(initial)
        if answer is None or answer.get("op") != "login_ok":
            writer.close()
            return False
        if not self.wanted_online:  # the app was closed while it was logging in
            writer.close()
            return False
        self.writer = writer
        self.access = index
        self.generation += 1
        now = self.connected_at = gen.clock()
        gen.events.connects.append((self.uid, now))
        actions = self.sender.handle_connected(now)
        if not initial:
            actions += self.receiver.handle_connected(now)
        self.act(actions)
        self.task = asyncio.create_task(self.read_loop(reader, self.generation))
        self.heard_at = now
        self._next_heartbeat(self.generation)
        return True

    # -- heartbeats -----------------------------------------------------------------------
    def _next_heartbeat(self, generation: int) -> None:
        """Schedule this connection's next heartbeat: every ``transport.heartbeat_s`` at
        the client's phase (as the simulator's ``next_phase_time``; the set-up is t =
        0). A heartbeat with no frame back within ``transport.request_timeout_s`` means
        the connection is dead: the app closes it and reconnects (with backoff)."""
        gen = self.gen
        period_s = gen.sc["transport.heartbeat_s"]
        if period_s <= 0:
            return
        origin = gen.t_start or 0.0
        offset = origin + gen.phases[self.uid] * period_s
        k = math.floor((gen.clock() - offset) / period_s) + 1
        at = gen.cfg["t0"] + offset + k * period_s
        gen.loop.call_at(at, self._heartbeat, generation)

    def _heartbeat(self, generation: int) -> None:
        if generation != self.generation or self.writer is None or self.stopping:
            return
        gen = self.gen
        sent_at = gen.clock()
        self.writer.write(wire.encode({"op": "heartbeat"}))  # no request of the records
        timeout_s = gen.sc["transport.request_timeout_s"]
        gen.loop.call_later(timeout_s, self._heartbeat_answered, generation, sent_at)
        self._next_heartbeat(generation)

    def _heartbeat_answered(self, generation: int, sent_at: float) -> None:
        if generation != self.generation or self.writer is None or self.stopping:
            return
        if self.heard_at < sent_at:  # nothing came back: the connection is dead
            self.gen.counters["heartbeat_timeouts"] += 1
            self.writer.transport.abort()  # the read loop ends: connection_lost, reconnect

    def token(self) -> str:
        """The app's current UserSig: the first one issued when the sending period
        began (the simulator's t = 0, also for an app that first logs in later), or with
        ``security.usersig_issued = "steady_state"`` at a uniform point of the lifetime
        before it (stream ``usersig_age``); a fresh one after each fetch."""
        gen = self.gen
        sc = gen.sc
        ttl_s = sc["security.usersig_ttl_s"]
        if self.issued_s is None:
            age_s = 0.0
            if sc["security.usersig_issued"] == "steady_state":
                age_s = gen.streams["usersig_age"].uniform() * ttl_s
            self.issued_s = float(math.floor(-age_s))  # at t = 0, as the simulator's
        return generate_usersig(
            sdkappid=gen.cfg["sdkappid"],
            key=gen.cfg["usersig_key"],
            identifier=str(self.uid),
            expire_s=ttl_s,
            now=sc["security.epoch_s"] + int(self.issued_s),
        )

    async def fetch_token(self) -> None:
        """Fetch a fresh UserSig from the business backend (``security.usersig_fetch_ms``,
        stream ``usersig_fetch``): a relogin, as the simulator counts them."""
        gen = self.gen
        gen.counters["relogins"] += 1
        await asyncio.sleep(gen.usersig_fetch_s())
        self.issued_s = float(math.floor(gen.usersig_clock()))
        self.token_stale = False

    async def read_loop(self, reader: asyncio.StreamReader, generation: int) -> None:
        try:
            while True:
                frame = await wire.read_frame(reader)
                if frame is None:
                    break
                self.on_frame(frame, generation)
        except (OSError, ssl.SSLError, wire.FrameError):
            pass
        if generation == self.generation and not self.stopping:
            self.connection_lost()

    def connection_lost(self) -> None:
        gen = self.gen
        now = gen.clock()
        if self.connected_at is not None:
            gen.events.connected.append((self.connected_at, now))
            self.connected_at = None
        self.generation += 1
        if self.writer is not None:
            self.writer.close()
        self.writer = None
        self.sender.handle_disconnect(now)
        # an in-flight sync's answer will never come: without this the reconnect sync
        # would wait for that sync's timeout (the simulator's clients do the same)
        self.receiver.disconnect()
        gen.events.reconnects += 1
        gen.spawn(self.reconnect())

    async def reconnect(self) -> None:
        """Connect again with the simulator's rule (:mod:`immodel.sim.clients`): after a
        reset, a wait uniform in [0, ``reconnect_base_s``]; after each failed attempt the
        backoff doubles (from ``reconnect_base_s`` up to ``reconnect_max_s``) and the
        wait is uniform in [0, backoff] — full jitter, stream ``reconnect``."""
        sc = self.gen.sc
        base_s, max_s = sc["transport.reconnect_base_s"], sc["transport.reconnect_max_s"]
        backoff_s = 0.0
        window_s = base_s
        period = self.period
        while not self.stopping and period == self.period:
            if self.restart_now:  # a restarted app connects at once (as the simulator's)
                self.restart_now = False
            else:
                await asyncio.sleep(self.gen.streams["reconnect"].uniform() * window_s)
            if self.stopping or period != self.period or await self.connect_once():
                return
            backoff_s = min(max_s, max(base_s, backoff_s * 2.0))
            window_s = backoff_s

    # -- presence churn ---------------------------------------------------------------
    def go_offline(self) -> None:
        """The user closes the app (a churn flip): the connection is closed cleanly — the
        access node sees it end and the logic node moves what was not acknowledged to
        the offline queue, as the simulator's clean close does — and nothing is sent
        until the next login."""
        gen = self.gen
        now = gen.clock()
        self.wanted_online = False
        self.period += 1
        self.restart_now = False
        if self.connected_at is not None:
            gen.events.connected.append((self.connected_at, now))
            self.connected_at = None
        self.generation += 1  # the read loop's end is not a lost connection
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.sender.handle_disconnect(now)
        self.receiver.disconnect()
        self.arm()

    def come_online(self) -> None:
        """The user opens the app (a churn flip): connect at once, log in and sync what
        was missed; a failed attempt retries with the reconnect backoff."""
        self.wanted_online = True
        self.period += 1
        self.gen.spawn(self._come_online(self.period))

    async def _come_online(self, period: int) -> None:
        if await self.connect_once() or period != self.period or self.stopping:
            return
        await self.reconnect()

    def forget_local_state(self) -> None:
        """A reinstalled app (``keep_local_state = false``): the receiver forgets its
        cursors and shown ids (its first sync pulls the history again), the sender what
        it had in flight — reported failed (``app_restart``), as the simulator does."""
        self.receiver.reset()
        now = self.gen.clock()
        for msg in self.sender.forget():
            self.gen.events.outcomes.append((msg.msg_id, now, "app_restart"))

    def crash(self, keep_local_state: bool = True) -> None:
        """A ``client_crash``: the app dies (its connection is reset; the proxy resets
        the access node's side) and starts again at once, with or without its local
        state."""
        if self.writer is None:
            return
        if not keep_local_state:
            self.forget_local_state()
        self.restart_now = True
        self.writer.transport.abort()  # the read loop ends: connection_lost, reconnect

    def close(self) -> None:
        self.stopping = True
        if self.timer is not None:
            self.timer.cancel()
        if self.connected_at is not None:
            self.gen.events.connected.append((self.connected_at, self.gen.clock()))
            self.connected_at = None
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()

    # -- frames ---------------------------------------------------------------------------
    def write(self, obj: dict, kind: str, messages: int) -> None:
        """Send a request frame; it is recorded when written to the socket."""
        self._write_now(wire.encode(obj), kind, messages, self.generation)

    def _write_now(self, data: bytes, kind: str, messages: int, generation: int) -> None:
        if generation != self.generation or self.writer is None or self.writer.is_closing():
            return  # the connection it was meant for is gone
        self.writer.write(data)
        self.gen.events.requests.append([self.gen.clock(), self.uid, kind, messages, len(data)])

    def on_frame(self, frame: dict, generation: int) -> None:
        if generation != self.generation:
            return
        now = self.heard_at = self.gen.clock()
        op = frame["op"]
        if op == "pong":
            return
        if op == "expired":  # the server ends the session: its UserSig expired
            self.token_stale = True
            self.restart_now = True  # the SDK fetches a token and logs in at once
            return
        if op == "push":
            item = wire.stored_from_wire(frame["item"])
            repair = "retransmit" if int(frame["attempt"]) > 1 else ""
            self.act(self.receiver.handle_push(item, now), repair)
        elif op == "reply":
            self.act(self.sender.handle_reply(wire.reply_from_wire(frame["reply"]), now))
        elif op == "sync_resp":
            response = wire.sync_response_from_wire(frame["resp"])
            self.act(self.receiver.handle_sync_response(response, now))

    # -- the protocol's actions ---------------------------------------------------------
    def submit(self, conv: str, is_group: bool, recipients: tuple[int, ...]) -> None:
        now = self.gen.clock()
        msg, actions = self.sender.submit(
            conversation=conv,
            is_group=is_group,
            now=now,
            payload_bytes=self.gen.sc["workload.payload_bytes"],
        )
        self.gen.events.sent.append((now, msg, recipients))
        self.gen.messages[msg.msg_id] = msg
        self.act(actions)

    def act(self, actions: list, repair: str = "") -> None:
        gen = self.gen
        ev = gen.events
        now = gen.clock()
        for a in actions:
            t = type(a)
            if t is Show:
                item = a.item
                if a.via == "sync":
                    ev.shown.append(
                        (now, item.message, item.order_key, self.uid, "sync", "sync_" + a.trigger)
                    )
                else:
                    via = self.via
                    ev.shown.append((now, item.message, item.order_key, self.uid, via, repair))
            elif t is SendAck:
                self.write({"op": "ack", "ids": list(a.msg_ids)}, "ack", len(a.msg_ids))
            elif t is StartSync:
                gen.counters["sync_pages"] += 1
                self.write({"op": "sync", "req": wire.sync_request_to_wire(a.request)}, "sync", 0)
            elif t is Transmit:
                msg = a.message
                if a.attempt > 1:
                    ev.attempts[msg.msg_id] = a.attempt
                    gen.counters["retransmits_uplink"] += 1
                body = "x" * msg.payload_bytes  # the message's bytes travel with the send
                self.write(
                    {"op": "send", "msg": wire.message_to_wire(msg), "body": body}, "send", 1
                )
            elif t is SendSucceeded:
                ev.outcomes.append((a.msg_id, now, ""))
                m = gen.sent_message(a.msg_id)
                released = self.receiver.note_own(
                    m.conversation, a.order_key, now, msg_id=m.msg_id, is_group=m.is_group
                )
                if released:
                    self.act(released)
            elif t is SendFailed:
                ev.outcomes.append((a.msg_id, now, a.reason))
        self.arm()

    def arm(self) -> None:
        d1 = self.sender.next_deadline()
        d2 = self.receiver.next_deadline()
        deadline = d2 if d1 is None else (d1 if d2 is None else min(d1, d2))
        if deadline == self.timer_at or self.stopping:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = deadline
        if deadline is None:
            self.timer = None
            return
        self.timer = self.gen.loop.call_at(self.gen.cfg["t0"] + deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self.timer_at = None
        now = self.gen.clock()
        actions = self.sender.handle_timeout(now)
        actions.extend(self.receiver.handle_timeout(now))
        self.act(actions)


class LoadGen:
    """All clients of a run, in the orchestrator's event loop."""

    def __init__(self, sc, cfg: dict, ssl_context: ssl.SSLContext, access_ports) -> None:
        from collections import Counter

        self.sc = sc
        self.cfg = cfg
        self.loop = asyncio.get_running_loop()
        self.ssl_context = ssl_context
        self.access_ports = access_ports  # callable: the live access nodes' (index, port)
        self.streams = Streams(sc["seed"])
        # each user's transport as the simulator draws it (a hybrid run puts the same
        # users on the web); from a stream of its own so that the phases drawn below from
        # self.streams stay as they are
        self.phases, self.kinds = endpoints.phases_and_transports(
            sc, sc["workload.users"], Streams(sc["seed"])["phase"].generator
        )
        # several devices per user: one client per device, on the device kind's transport,
        # the other devices' phases drawn after the table (as the simulator does)
        device_streams = Streams(sc["seed"])
        self.devices = build_devices(sc, sc["workload.users"], device_streams)
        if self.devices is not None:
            self.kinds = list(self.devices.transport)
            extra = len(self.kinds) - sc["workload.users"]
            self.phases += device_streams["devices"].generator.random(extra).tolist()
        self.events = Events()
        self.t_start: float | None = None  # run clock when the sending period began
        self.usersig_fetch_s = latency_sampler(
            sc["security.usersig_fetch_ms"], self.streams["usersig_fetch"]
        )
        self.counters: Counter[str] = Counter()
        self.clients: dict[int, RealClient] = {}
        self.messages: dict[str, Message] = {}
        self._tasks: set[asyncio.Task] = set()
        self.poll_returns_s: list[float] = []  # access node's answer -> client has it
        self.lags_s: list[float] = []  # the event loop's lateness (see watch_lag)
        # offline push: the devices' side (immodel.real.vendor_push), set by the orchestrator
        self.pushes = None

    def clock(self) -> float:
        return self.loop.time() - self.cfg["t0"]

    def usersig_clock(self) -> float:
        """Seconds on the UserSigs' clock: since the sending period began (``t_start``,
        set by the orchestrator), as the simulator's t; the set-up is second 0."""
        return 0.0 if self.t_start is None else max(0.0, self.clock() - self.t_start)

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def pick_access(self, uid: int) -> tuple[int, int, int] | None:
        """The access node a client connects to, ``(index, TLS port, HTTPS port)``:
        ``uid`` modulo the live ones."""
        live = self.access_ports()
        return live[uid % len(live)] if live else None

    def sent_message(self, msg_id: str) -> Message:
        return self.messages[msg_id]

    def new_client(self, uid: int) -> RealClient:
        """User ``uid``'s app: a push client or a web client, as the simulator draws."""
        return RealClient(self, uid) if self.kinds[uid] == "push" else WebClient(self, uid)

    async def connect_all(self, users: list[int], parallel: int = 50) -> None:
        """Connect and log in ``users`` (at most ``parallel`` handshakes at once)."""
        gate = asyncio.Semaphore(parallel)

        async def one(uid: int) -> None:
            client = self.clients[uid] = self.new_client(uid)
            async with gate:
                for _ in range(3):
                    if await client.connect_once(initial=True):
                        return
                    await asyncio.sleep(0.1)
            raise ConnectionError(f"user {uid} could not connect to the access tier")

        await asyncio.gather(*(one(u) for u in users))

    async def watch_lag(self, period_s: float = LAG_PERIOD_S) -> None:
        """Record how late this event loop wakes a task that sleeps ``period_s``: a
        load generator that keeps up wakes within a millisecond or so; a late wake
        delays every client's timer and read by as much (its timing is then the
        harness's, not the system's)."""
        loop = self.loop
        expected = loop.time() + period_s
        while True:
            await asyncio.sleep(max(0.0, expected - loop.time()))
            now = loop.time()
            self.lags_s.append(now - expected)
            expected = now + period_s

    async def play(self, plan: Plan, t_start: float) -> None:
        """Submit the plan's sends and make its presence flips at ``t_start`` + their
        planned times (run clock), in the plan's time order."""
        events = sorted(
            [(t, 1, i) for i, (t, *_rest) in enumerate(plan.sends)]
            + [(t, 0, i) for i, (t, _u, _on) in enumerate(plan.flips)]
        )
        for t, is_send, i in events:
            wait = t_start + t - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            if not is_send:
                _t, uid, online = plan.flips[i]
                if self.pushes is not None and self.pushes.skips_flip(uid):
                    continue  # opened on a notification: the device flips on its own clock
                client = self.clients.get(uid)
                if online:
                    if client is None:  # offline at the start: its first login
                        client = self.clients[uid] = self.new_client(uid)
                    client.come_online()
                elif client is not None:
                    client.go_offline()
                continue
            _t, sender, conv, is_group, rcpt = plan.sends[i]
            if self.pushes is not None and self.pushes.skips_send(sender):
                continue
            client = self.clients.get(sender)
            if client is None:
                continue
            client.submit(conv, is_group, rcpt)

    async def aclose(self) -> None:
        self.close()
        for client in self.clients.values():
            if isinstance(client, WebClient):
                await client.close_session()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        for task in list(self._tasks):
            task.cancel()


class _SessionExpired(Exception):
    """A web request answered 401 ``expired``: the session ended at its UserSig's expiry
    (or a login's token had expired); the SDK fetches a fresh UserSig and logs in."""


class WebClient(RealClient):
    """A web app: HTTPS requests (aiohttp) to an access node instead of a connection of
    its own — ``/login``, ``/send`` (answered with the reply), ``/sync`` (answered with
    the page), ``/poll`` (ACKs ride on it; answered with what waits, or held up to
    ``transport.long_poll_hold_s`` for a long poll). Short polls go out every
    ``transport.poll_interval_s`` from a random phase (stream ``phase``), long polls
    again as soon as the last one is answered. A failed request (the access node is
    gone) is a lost connection: the client logs in again elsewhere."""

    def __init__(self, gen: LoadGen, uid: int) -> None:
        super().__init__(gen, uid)
        sc = gen.sc
        self.long = gen.kinds[uid] == "long_poll"
        self.hold_s = sc["transport.long_poll_hold_s"] if self.long else 0.0
        self.interval_s = sc["transport.poll_interval_s"]
        self.fixed_delay = sc["transport.poll_schedule"] == "fixed_delay"
        self.base = ""
        self.logged_in = False
        self.acks: list[str] = []
        self._http = None  # its own aiohttp session: its connections carry its address

    via = "poll"

    @property
    def online(self) -> bool:
        return self.logged_in

    def http(self):
        """This app's aiohttp session (TLS to the access node, keep-alive), bound to the
        user's address so the proxy knows its connections."""
        if self._http is None:
            import aiohttp

            connector = aiohttp.TCPConnector(
                ssl=self.gen.ssl_context,
                limit=0,
                local_addr=(user_address(self.uid), 0),
                # an app keeps its connections for the run (aiohttp's default closes
                # one idle for 15 s: a handshake again at the next send)
                keepalive_timeout=MAX_IDLE_S,
            )
            self._http = aiohttp.ClientSession(connector=connector)
        return self._http

    async def close_session(self) -> None:
        if self._http is not None:
            session, self._http = self._http, None
            await session.close()

    def crash(self, keep_local_state: bool = True) -> None:
        """A ``client_crash``: the app's requests and connections die (the proxy resets
        them) and it logs in again at once, with or without its local state."""
        if not self.logged_in:
            return
        if not keep_local_state:
            self.forget_local_state()
        if self.task is not None:
            self.task.cancel()
        session, self._http = self._http, None  # a new app: new connections
        if session is not None:
            self.gen.spawn(session.close())
        self.restart_now = True
        self.connection_lost()

    async def _post(self, path: str, body: dict, timeout_s: float) -> dict:
        import aiohttp

        async with self.http().post(
            self.base + path, json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            if response.status == 401 and await response.text() == "expired":
                raise _SessionExpired(path)
            response.raise_for_status()
            return await response.json()

    async def _ping(self) -> None:
        import aiohttp

        async with self.http().get(
            self.base + "/ping", timeout=aiohttp.ClientTimeout(total=IO_TIMEOUT_S)
        ) as response:
            response.raise_for_status()
            await response.read()

    async def connect_once(self, initial: bool = False) -> bool:
        import aiohttp

        gen = self.gen
        access = gen.pick_access(self.uid)
        if access is None:
            return False
        index, _port, http_port = access
        self.base = f"https://{HOST}:{http_port}"
        if self.token_stale:  # the SDK fetches a fresh UserSig first (a relogin)
            await self.fetch_token()
        body = {"user": self.uid, "sig": self.token()}
        if not initial:
            gen.events.requests.append([gen.clock(), self.uid, "login", 0, len(wire.encode(body))])
        try:
            if initial:
                # the start population has been using the service: its keep-alive pool
                # holds a connection for each request that can be outstanding at once —
                # the held poll, a send, a sync — made here, before the clock starts,
                # rather than by TLS handshakes in the run's first seconds
                answer, _, _ = await asyncio.gather(
                    self._post("/login", body, IO_TIMEOUT_S), self._ping(), self._ping()
                )
            else:
                answer = await self._post("/login", body, IO_TIMEOUT_S)
        except _SessionExpired:  # refused as expired: fetch a fresh one, log in at once
            self.token_stale = True
            return await self.connect_once(initial)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        if answer.get("op") != "login_ok":
            return False
        if not self.wanted_online:  # the app was closed while it was logging in
            session, self._http = self._http, None
            gen.spawn(self._logout(session))
            return False
        self.access = index
        self.logged_in = True
        self.generation += 1
        now = gen.clock()
        gen.events.connects.append((self.uid, now))
        actions = self.sender.handle_connected(now)
        if not initial:
            actions += self.receiver.handle_connected(now)
        self.act(actions)
        self.task = asyncio.create_task(self.poll_loop(self.generation, initial))
        return True

    def connection_lost(self) -> None:
        if not self.logged_in or self.stopping:
            return
        self.logged_in = False
        self.generation += 1
        now = self.gen.clock()
        self.sender.handle_disconnect(now)
        self.receiver.disconnect()  # as the push client's (an in-flight sync is gone)
        self.gen.events.reconnects += 1
        self.gen.spawn(self.reconnect())

    def _session_expired(self, generation: int) -> None:
        """The access node ended this session at its UserSig's expiry (the request of
        ``generation`` was refused as expired): as the push client's ``expired`` frame,
        the SDK fetches a fresh UserSig and logs in again at once, over the same
        keep-alive connections (only the session ended)."""
        if generation != self.generation or not self.logged_in:
            return  # an earlier session's request: this one is handled already
        self.token_stale = True
        self.restart_now = True
        self.connection_lost()

    def go_offline(self) -> None:
        """The user closes the web app (a churn flip): its poll and requests end, a
        ``/logout`` tells the access node (which tells the logic nodes: what was not
        acknowledged goes to the offline queue, as the simulator's clean close), and its
        connections close; ACKs that waited for the next poll go with them."""
        now = self.gen.clock()
        self.wanted_online = False
        self.period += 1
        self.restart_now = False
        if self.logged_in:
            self.logged_in = False
            self.generation += 1
            if self.task is not None:
                self.task.cancel()
            self.sender.handle_disconnect(now)
            self.receiver.disconnect()
            self.acks = []
            session, self._http = self._http, None
            self.gen.spawn(self._logout(session))
        self.arm()

    async def _logout(self, session) -> None:
        """Say goodbye on ``session`` (not a request of the run: the simulator's clean
        close is none), then close its connections."""
        import aiohttp

        if session is None:
            return
        try:
            async with session.post(
                self.base + "/logout",
                json={"user": self.uid},
                timeout=aiohttp.ClientTimeout(total=IO_TIMEOUT_S),
            ) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass  # the access node is gone: its logic nodes saw the link end
        finally:
            await session.close()

    def close(self) -> None:
        self.stopping = True
        self.logged_in = False
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None:
            self.task.cancel()

    def write(self, obj: dict, kind: str, messages: int) -> None:
        if kind == "ack":
            self.acks.extend(obj["ids"])  # rides on the next poll
            return
        self.gen.spawn(self._request(obj, kind, messages, self.generation))

    async def _request(self, obj: dict, kind: str, messages: int, generation: int) -> None:
        import aiohttp

        gen = self.gen
        body = {"user": self.uid, **{k: v for k, v in obj.items() if k != "op"}}
        gen.events.requests.append([gen.clock(), self.uid, kind, messages, len(wire.encode(body))])
        try:
            answer = await self._post("/" + kind, body, 2 * gen.sc["transport.request_timeout_s"])
        except _SessionExpired:
            self._session_expired(generation)
            return
        except (aiohttp.ClientError, TimeoutError, ValueError):
            if generation == self.generation:
                self.connection_lost()
            return
        if generation != self.generation or self.stopping:
            return
        now = gen.clock()
        if kind == "send" and answer.get("reply") is not None:
            self.act(self.sender.handle_reply(wire.reply_from_wire(answer["reply"]), now))
        elif kind == "sync" and answer.get("resp") is not None:
            response = wire.sync_response_from_wire(answer["resp"])
            self.act(self.receiver.handle_sync_response(response, now))

    async def poll_loop(self, generation: int, initial: bool = False) -> None:
        import aiohttp

        gen = self.gen
        loop = gen.loop
        # the start population's long polls are spread over their hold, as the
        # simulator's start state has them (a residual hold of phase × H): polls all made
        # at set-up would expire together every H and re-poll in one burst
        hold_s = self.hold_s
        if self.long and initial:
            hold_s = gen.streams["phase"].uniform() * self.hold_s
        if not self.long:  # pollers start spread over their interval
            await asyncio.sleep(gen.streams["phase"].uniform() * self.interval_s)
        next_at = loop.time()
        while generation == self.generation and not self.stopping:
            next_at += self.interval_s
            acks, self.acks = self.acks, []
            body = {"user": self.uid, "acks": acks, "hold_s": hold_s}
            row = [gen.clock(), self.uid, "poll", 0, len(wire.encode(body))]
            gen.events.requests.append(row)
            timeout_s = hold_s + 2 * gen.sc["transport.request_timeout_s"]
            hold_s = self.hold_s
            try:
                answer = await self._post("/poll", body, timeout_s)
            except _SessionExpired:
                self.acks = acks + self.acks  # not delivered: they ride on the next poll
                self._session_expired(generation)
                return
            except (aiohttp.ClientError, TimeoutError, ValueError):
                self.acks = acks + self.acks  # they were not delivered: next time
                if generation == self.generation:
                    self.connection_lost()
                return
            items = answer.get("items") or []
            row[3] = len(items)
            if items and "t" in answer:  # the answer's way back: access node -> shown
                gen.poll_returns_s.append(gen.clock() - float(answer["t"]))
            row.append(gen.clock())  # answered (a poll held across the start is the run's)
            if generation != self.generation or self.stopping:
                return
            now = gen.clock()
            for wire_item, attempt in items:
                item = wire.stored_from_wire(wire_item)
                repair = "retransmit" if int(attempt) > 1 else ""
                self.act(self.receiver.handle_push(item, now), repair)
            if self.long:
                continue
            wait = self.interval_s if self.fixed_delay else next_at - loop.time()
            if self.fixed_delay:
                next_at = loop.time() + wait
            if wait > 0:
                await asyncio.sleep(wait)

"""The simulated IM deployment: clients, network, access layer and server nodes on SimPy.

This module is wiring. Every protocol decision — ids, retries, dedup, order keys,
pending-ACK retransmits, receiver order and sync — is taken by the classes of
:mod:`immodel.protocol`; the world only adds what the reference model leaves out: time
(latency, service times, queueing), loss, load, presence and faults.

Lifecycle of one message (the article's three stages)::

    workload ─► client.sender.submit ─► uplink (loss, latency) ─► node: begin_send
      ─► auth ─► checks ─► [callback] ─► [screening] ─► recent contacts ─► store ─► commit
      ─► reply to sender (downlink)  and  ─► downlink stage (status + fan-out)
      ─► per recipient: push (pending-ACK) │ poll outbox (+ answer a held long poll) │ offline
      ─► client.receiver.handle_push ─► Show (app) + ACK + sync

Cost model of the event loop: SimPy processes only for what has work to do (the
workload's arrival stream, the load sampler, each node's lifecycle — a crash is
``Process.interrupt``). Everything else is a scheduled callback: a packet in flight is
one event, a job in a server stage is one event, a client's retry/sync timer is one event
per deadline. An idle push client has no pending event at all: heartbeats are counted
from its connected time, and after a crash each client notices the dead connection at its
own next heartbeat (its phase is fixed at set-up) plus the request timeout.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL

from immodel.protocol import admission
from immodel.protocol.dedup import DedupWindow, Verdict
from immodel.protocol.messages import (
    Deliver,
    Message,
    SendAck,
    SendFailed,
    SendReply,
    SendSucceeded,
    Show,
    StartSync,
    SyncResponse,
    Transmit,
)
from immodel.protocol.pending_ack import PendingAcks
from immodel.protocol.receiver import Receiver
from immodel.protocol.sender import RetryPolicy, UplinkSender
from immodel.protocol.server import MessageStore, ServerNode
from immodel.protocol.usersig import generate_usersig
from immodel.scenario import Scenario
from immodel.sim.network import Link, latency_mean_s, latency_sampler
from immodel.sim.records import Recorder
from immodel.sim.rng import Streams
from immodel.sim.stage import Stage, service_sampler

PUSH, LONG_POLL, SHORT_POLL = "push", "long_poll", "short_poll"
STAGE_NAMES = (
    "auth",
    "checks",
    "screening",
    "recent_contacts",
    "store",
    "downlink",
    "poll",
    "sync",
)
# Sizes on the wire beyond the per-packet header (bytes).
REPLY_BYTES = 24
ACK_BYTES_PER_ID = 16
CURSOR_BYTES = 16
LOGIN_BYTES = 300  # carries the UserSig
SDKAPPID = 1400000000
USERSIG_KEY = "immodel-simulated-app-secret-key"
USERSIG_TTL_S = 86400 * 180


def _mix64(x: int) -> int:
    """SplitMix64 finaliser: a stable integer hash (Python's hash() is salted)."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def pair_uniform(seed: int, a: int, b: int, salt: int) -> float:
    """A fixed uniform draw in [0, 1) for the ordered pair (a, b): relationship facts
    (friends, blacklists) are properties of a pair, not of a message."""
    h = _mix64(_mix64(_mix64(seed * 1_000_003 + salt) ^ a) ^ (b * 0x2545F4914F6CDD1D))
    return (h >> 11) / float(1 << 53)


def _fire(call: _Call) -> None:
    call.fn(call.arg)


class _Call:
    """A scheduled callback ``fn(arg)``: the event itself, cheaper than a process, an
    :class:`~simpy.events.Event` with a callback list, or a lambda per event.

    ``Environment.step`` needs only what this class has: ``callbacks`` (an iterable it
    calls with the event and then sets to None) and ``_ok`` (the event succeeded). The
    callback is a module function, not a bound method, so no reference cycle is made
    (the cyclic GC is paused during a run).
    """

    __slots__ = ("arg", "callbacks", "fn")
    _ok = True

    def __init__(self, fn: Callable[[Any], None], arg: Any) -> None:
        self.fn = fn
        self.arg = arg
        self.callbacks: tuple | None = _FIRE


_FIRE = (_fire,)


class Client:
    """One user's device: its transport, its protocol machines and its connection.

    ``online`` is the user's presence (the app is open); ``conn_id`` is the connection
    the client believes it has (0: none; it is learned from the login reply).
    """

    __slots__ = (
        "backoff_s",
        "conn_id",
        "connected_since",
        "connected_total_s",
        "connecting",
        "kind",
        "node",
        "online",
        "pending_acks",
        "phase",
        "poll_seq",
        "receiver",
        "sender",
        "timer_at",
        "uid",
    )

    def __init__(self, uid: int, kind: str, node: int, sender, receiver, phase: float) -> None:
        self.uid = uid
        self.kind = kind
        self.node = node
        self.sender: UplinkSender = sender
        self.receiver: Receiver = receiver
        self.phase = phase  # in [0, 1): where in its heartbeat/poll cycle this client is
        self.online = False
        self.conn_id = 0
        self.connecting = False
        self.backoff_s = 0.0
        self.timer_at: float | None = None
        self.pending_acks: list | None = None  # ACKs waiting to ride on the next poll
        self.poll_seq = 0
        self.connected_since = math.nan
        self.connected_total_s = 0.0


class Node:
    """One server node: the protocol's :class:`ServerNode`, its stages, its connections."""

    def __init__(self, world: World, node_id: int) -> None:
        sc, env = world.sc, world.env
        self.world = world
        self.node_id = node_id
        self.core = ServerNode(
            node_id,
            world.store,
            dedup=DedupWindow(sc["reliability.dedup_window_s"], sc["reliability.server_dedup"]),
            pending=PendingAcks(sc["reliability.ack_timeout_s"], sc["reliability.downlink_ack"]),
            dedup_durable=sc["reliability.dedup_durable"],
        )
        unit = service_sampler(sc["server.service_dist"], 0.001, world.streams["service"])
        workers = sc["server.workers"]
        self.stages = {name: Stage(env, name, node_id, workers, unit) for name in STAGE_NAMES}
        self.up = True
        self.conn: dict[int, tuple[int, str]] = {}  # uid → (conn id, "push"/"poll")
        self.held: dict[int, tuple] = {}  # uid → held long poll
        self.retx_at: float | None = None
        self.store_fail_prob = 0.0
        self.extra_delay_s = 0.0
        self.crashes = 0
        self.crashed_at = math.nan
        self.down_until = math.nan  # end of the current outage (a second crash extends it)
        self.epoch = 0  # +1 per crash: work scheduled before a crash is void after it
        # Durable fan-out log: stored messages whose fan-out has not run yet.
        self.unrouted: dict[Any, tuple] = {}
        self.process = env.process(self._lifecycle())

    def _lifecycle(self):
        """The node runs until interrupted; an interrupt is a crash lasting ``cause`` s."""
        env = self.world.env
        while True:
            try:
                yield env.timeout(math.inf)
            except simpy.Interrupt as crash:
                self.down_until = env.now + crash.cause
                self.world.crash_node(self)
                # faults.py never interrupts a node that is down; a crash that overlaps
                # this outage moves ``down_until`` instead, and the node stays down longer.
                while env.now < self.down_until:
                    yield env.timeout(self.down_until - env.now)
                self.world.recover_node(self)


class World:
    """Everything of one run: build it from a :class:`Scenario`, then :meth:`run`."""

    def __init__(self, scenario: Scenario) -> None:
        sc = self.sc = scenario
        self.env = simpy.Environment()
        self.streams = Streams(sc["seed"])
        self.rec = Recorder()
        self.seed = sc["seed"]
        n = self.n_users = sc["workload.users"]
        self.duration_s = sc["duration_s"]
        self.horizon_s = sc["duration_s"] + sc["drain_s"]
        self.header = sc["network.header_bytes"]
        latency = latency_sampler(sc["network.latency_ms"], self.streams["latency"])
        self.one_way_mean_s = latency_mean_s(sc["network.latency_ms"])
        burst = dict(
            burst_enter=sc["network.burst_enter_prob"],
            burst_exit=sc["network.burst_exit_prob"],
            burst_loss=sc["network.burst_loss"],
        )
        self.up = Link(
            users=n,
            loss=sc["network.uplink_loss"],
            latency=latency,
            loss_stream=self.streams["uplink"],
            **burst,
        )
        self.down = Link(
            users=n,
            loss=sc["network.downlink_loss"],
            latency=latency,
            loss_stream=self.streams["downlink"],
            **burst,
        )
        self.store = MessageStore()
        self._next_conn_id = 0
        self.retransmits_downlink = 0
        self._serial = 0
        self._login_waits: dict[int, int] = {}
        self.nodes = [Node(self, i) for i in range(sc["server.nodes"])]
        self.batch_max = sc["transport.batch_max"]
        self.request_timeout_s = sc["transport.request_timeout_s"]
        self.poll_interval_s = sc["transport.poll_interval_s"]
        self.hold_s = sc["transport.long_poll_hold_s"]
        self.heartbeat_s = sc["transport.heartbeat_s"]
        self.fixed_delay = sc["transport.poll_schedule"] == "fixed_delay"
        self.payload = sc["workload.payload_bytes"]
        self.sync_on = sc["reliability.sync"]
        self.ack_on = sc["reliability.downlink_ack"]
        self._setup_admission()
        self._setup_clients()
        self._setup_conversations()
        self.counters = {
            "offline_pushes": 0,
            "offline_pushes_lost": 0,
            "logins": 0,
            "login_failures": 0,
            "crash_pending_lost": 0,
            "stage_jobs_lost": 0,
            "dedup_hits": 0,
            "dedup_in_progress_drops": 0,
            "rejections": 0,
            "store_failures": 0,
            "sync_pages": 0,
            "liveness_drops": 0,
        }
        # Filled when the sending period ends (rates over it, see _close_window).
        self.window_busy: dict[tuple[int, str], float] = {}
        self.window_push_connected_s = 0.0
        # What each fault did (faults.py appends; recovery metrics read it).
        self.fault_log: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------
    # set-up
    def _setup_admission(self) -> None:
        sc = self.sc
        self.policy = admission.AdmissionPolicy(
            require_friendship=sc["server.require_friendship"],
            callback_enabled=sc["server.callback_enabled"],
            callback_timeout_default=sc["server.callback_timeout_default"],
            screening_enabled=sc["server.screening_enabled"],
        )
        self.checks_policy = admission.AdmissionPolicy(
            require_friendship=sc["server.require_friendship"]
        )
        self.friend_fraction = sc["server.friend_fraction"]
        self.blacklist_fraction = sc["server.blacklist_fraction"]
        rng = self.streams["admission"].generator
        muted = rng.random(self.n_users) < sc["server.muted_fraction"]
        self.muted = {int(u) for u in muted.nonzero()[0]}

    def _setup_clients(self) -> None:
        sc = self.sc
        n = self.n_users
        rng = self.streams["phase"].generator
        phases = rng.random(n).tolist()
        kind = sc["transport.kind"]
        if kind == "hybrid":
            web = (rng.random(n) < sc["transport.web_share"]).tolist()
            kinds = [LONG_POLL if w else PUSH for w in web]
        else:
            kinds = [kind] * n
        policy = RetryPolicy(
            enabled=sc["reliability.uplink_retry"],
            timeout_s=sc["reliability.uplink_timeout_s"],
            backoff=sc["reliability.uplink_backoff"],
            max_attempts=sc["reliability.uplink_max_attempts"],
        )
        nodes = len(self.nodes)
        rkw = dict(
            ack=sc["reliability.downlink_ack"],
            dedup=sc["reliability.client_dedup"],
            sync_enabled=sc["reliability.sync"],
            dedup_window_s=sc["reliability.client_dedup_window_s"],
            sync_limit=self.batch_max,
            sync_timeout_s=self.request_timeout_s,
        )
        self.clients = [
            Client(u, kinds[u], u % nodes, UplinkSender(u, policy), Receiver(u, **rkw), phases[u])
            for u in range(n)
        ]
        # Presence: online at the start, an array-backed set for O(1) random picks.
        online0 = self.streams["presence"].generator.random(n) < sc["workload.online_fraction"]
        self.online_list: list[int] = []
        self.online_pos: dict[int, int] = {}
        for u in range(n):
            if online0[u]:
                self._set_online(self.clients[u], True)
                self._attach(self.clients[u])
        self.churn = sc["workload.mean_online_s"] > 0
        # Contacts (1:1 partners): 0 means anyone.
        k = sc["workload.contacts"]
        self.contacts: list[list[int]] | None = None
        if k > 0:
            crng = self.streams["contacts"].generator
            self.contacts = []
            for u in range(n):
                picks = crng.choice(n - 1, size=k, replace=False)
                self.contacts.append([int(p) + (p >= u) for p in picks])

    def _setup_conversations(self) -> None:
        sc = self.sc
        self.groups: list[list[int]] = []
        self.group_names: list[str] = []
        if sc["workload.groups"] > 0 and sc["workload.group_share"] > 0:
            grng = self.streams["groups"].generator
            for g in range(sc["workload.groups"]):
                members = sorted(
                    int(m)
                    for m in grng.choice(
                        self.n_users, size=sc["workload.group_size"], replace=False
                    )
                )
                name = f"g{g}"
                self.groups.append(members)
                self.group_names.append(name)
                for m in members:
                    self.store.join(m, name)
        self.group_members = {
            name: m for name, m in zip(self.group_names, self.groups, strict=True)
        }
        self.known_pairs: set[str] = set()

    # ------------------------------------------------------------------------------------
    # small helpers
    def later(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        """Call ``fn(arg)`` after ``delay`` seconds of simulated time."""
        self.env.schedule(_Call(fn, arg), NORMAL, delay)  # type: ignore[arg-type]

    def _set_online(self, client: Client, online: bool) -> None:
        uid = client.uid
        client.online = online
        if online and uid not in self.online_pos:
            self.online_pos[uid] = len(self.online_list)
            self.online_list.append(uid)
        elif not online and uid in self.online_pos:
            i = self.online_pos.pop(uid)
            last = self.online_list.pop()
            if last != uid:
                self.online_list[i] = last
                self.online_pos[last] = i

    def _mode(self, client: Client) -> str:
        return PUSH if client.kind == PUSH else "poll"

    def _attach(self, client: Client) -> None:
        """Connect ``client`` at once (users online at t = 0 start connected)."""
        node = self.nodes[client.node]
        conn_id = self._new_conn_id()
        node.conn[client.uid] = (conn_id, self._mode(client))
        client.conn_id = conn_id
        client.connected_since = self.env.now
        if client.kind != PUSH:
            self._start_polling(client, at_start=True)

    def _detach_client(self, client: Client) -> None:
        """The client learns its connection is gone."""
        if client.conn_id and not math.isnan(client.connected_since):
            client.connected_total_s += self.env.now - client.connected_since
        client.connected_since = math.nan
        client.conn_id = 0
        client.poll_seq += 1  # any poll in flight is now stale
        client.receiver.disconnect()

    # ------------------------------------------------------------------------------------
    # network
    def send_up(self, client: Client, size: int, fn: Callable[[Any], None], arg: Any) -> None:
        """A packet from ``client`` to its node (the access layer)."""
        if self.up.lost(client.uid, size):
            return
        self.later(self.up.delay(), fn, arg)

    def send_down(self, uid: int, size: int, fn: Callable[[Any], None], arg: Any) -> None:
        """A packet from the server to user ``uid``."""
        if self.down.lost(uid, size):
            return
        self.later(self.down.delay(), fn, arg)

    def _session(self, client: Client) -> Node | None:
        """The node that accepts a request from ``client`` now, if any."""
        node = self.nodes[client.node]
        if not node.up:
            return None
        conn = node.conn.get(client.uid)
        if conn is None or conn[0] != client.conn_id:
            return None
        return node

    # ------------------------------------------------------------------------------------
    # client side: protocol actions
    def act(self, client: Client, actions: list) -> None:
        """Carry out a protocol machine's actions for ``client``."""
        now = self.env.now
        rec = self.rec
        for a in actions:
            t = type(a)
            if t is Show:
                item = a.item
                rec.shown(now, item.message, item.order_key, client.uid, a.via)
            elif t is SendAck:
                if client.kind == PUSH:
                    size = self.header + ACK_BYTES_PER_ID * len(a.msg_ids)
                    self.send_up(client, size, self._ack_arrives, (client, a.msg_ids))
                else:
                    if client.pending_acks is None:
                        client.pending_acks = []
                    client.pending_acks.extend(a.msg_ids)
            elif t is StartSync:
                self.counters["sync_pages"] += 1
                size = self.header + CURSOR_BYTES * (1 + len(a.request.cursors))
                self.send_up(client, size, self._sync_arrives, (client, a.request))
            elif t is Transmit:
                msg = a.message
                if a.attempt > 1:
                    rec.messages[msg.msg_id].attempts = a.attempt
                size = self.header + msg.payload_bytes
                self.send_up(client, size, self._send_arrives, (client, msg))
            elif t is SendSucceeded:
                r = rec.messages[a.msg_id]
                r.t_outcome = now
                m = r.message
                if m.is_group:
                    # Our own seq may be the gap that held later copies back: show them.
                    released = client.receiver.note_own(m.conversation, a.order_key, now)
                    if released:
                        self.act(client, released)
            elif t is SendFailed:
                r = rec.messages[a.msg_id]
                r.failure = a.reason
                r.t_outcome = now
        self._arm(client)

    def _arm(self, client: Client) -> None:
        """Make sure a timer fires at the client's next protocol deadline."""
        d1 = client.sender.next_deadline()
        d2 = client.receiver.next_deadline()
        if d1 is None:
            deadline = d2
        elif d2 is None:
            deadline = d1
        else:
            deadline = min(d1, d2)
        if deadline is None:
            return
        if client.timer_at is None or deadline < client.timer_at:
            client.timer_at = deadline
            self.later(max(0.0, deadline - self.env.now), self._client_timer, client)

    def _client_timer(self, client: Client) -> None:
        now = self.env.now
        if client.timer_at is None or client.timer_at > now:
            return  # superseded by an earlier timer that already ran
        client.timer_at = None
        actions = client.sender.handle_timeout(now)
        actions.extend(client.receiver.handle_timeout(now))
        self.act(client, actions)

    # ------------------------------------------------------------------------------------
    # workload
    def _workload(self):
        env = self.env
        sc = self.sc
        rate = sc["workload.send_rate_per_user"]
        group_share = sc["workload.group_share"] if self.groups else 0.0
        stream = self.streams["workload"]
        if rate <= 0:
            return
        while True:
            n_online = len(self.online_list)
            if n_online == 0:
                yield env.timeout(1.0)
                continue
            yield env.timeout(stream.exponential(1.0 / (n_online * rate)))
            if env.now >= self.duration_s:
                return
            if not self.online_list:
                continue
            self._submit_one(stream, group_share)

    def _submit_one(self, stream, group_share: float) -> None:
        now = self.env.now
        sender_uid = None
        if group_share > 0 and stream.uniform() < group_share:
            g = stream.below(len(self.groups))
            members = self.groups[g]
            for _ in range(4 * len(members)):
                m = members[stream.below(len(members))]
                if m in self.online_pos:
                    sender_uid = m
                    break
            if sender_uid is not None:
                conv = self.group_names[g]
                recipients = tuple(x for x in members if x != sender_uid)
                self._submit(self.clients[sender_uid], conv, True, recipients, now)
                return
        sender_uid = self.online_list[stream.below(len(self.online_list))]
        if self.contacts is not None:
            cl = self.contacts[sender_uid]
            other = cl[stream.below(len(cl))]
        else:
            other = stream.below(self.n_users - 1)
            other += other >= sender_uid
        conv = self._one_to_one(sender_uid, other)
        self._submit(self.clients[sender_uid], conv, False, (other,), now)

    def _one_to_one(self, a: int, b: int) -> str:
        """The 1:1 conversation of users a and b (both become members on first use)."""
        if a > b:
            a, b = b, a
        conv = f"d{a}-{b}"
        if conv not in self.known_pairs:
            self.known_pairs.add(conv)
            self.store.join(a, conv)
            self.store.join(b, conv)
        return conv

    def inject(self, at_s: float, sender: int, recipient: int) -> None:
        """Schedule one 1:1 message from ``sender`` to ``recipient`` at ``at_s`` (on top of
        the Poisson workload): for tests and notebooks that follow a single message."""

        def submit(_arg) -> None:
            conv = self._one_to_one(sender, recipient)
            self._submit(self.clients[sender], conv, False, (recipient,), self.env.now)

        self.later(at_s - self.env.now, submit, None)

    def _submit(self, client: Client, conv: str, is_group: bool, recipients, now: float) -> None:
        msg, actions = client.sender.submit(
            conversation=conv, is_group=is_group, now=now, payload_bytes=self.payload
        )
        self.rec.sent(now, msg, recipients)
        self.act(client, actions)

    # ------------------------------------------------------------------------------------
    # server: the send path
    def _send_arrives(self, arg) -> None:
        client, msg = arg
        node = self._session(client)
        if node is None:
            return
        now = self.env.now
        self.rec.request(now, client.uid, "send", 1, self.header + msg.payload_bytes)
        verdict, reply = node.core.begin_send(msg, now)
        if verdict is Verdict.DONE:
            self.counters["dedup_hits"] += 1
            self._reply(node, client, reply)
        elif verdict is Verdict.IN_PROGRESS:
            self.counters["dedup_in_progress_drops"] += 1
        else:
            node.stages["auth"].submit(
                self._after_auth, (node, client, msg), self.sc["server.auth_ms"]
            )

    def _after_auth(self, job) -> None:
        node, _client, _msg = job
        node.stages["checks"].submit(self._after_checks, job, self.sc["server.checks_ms"])

    def _facts(self, msg: Message, callback: str | None, screening: str | None):
        """What the check stages look up for ``msg``: mute, blacklist, friendship.

        Relationship facts are fixed per pair (:func:`pair_uniform`); a fraction of 0 or 1
        needs no draw, which keeps the common plain deployment cheap."""
        sender = msg.sender
        friends, black = True, False
        if not msg.is_group:
            other = self.rec.messages[msg.msg_id].recipients[0]
            friend_fraction = self.friend_fraction
            if friend_fraction < 1.0:
                a, b = (sender, other) if sender < other else (other, sender)
                friends = pair_uniform(self.seed, a, b, 1) < friend_fraction
            if self.blacklist_fraction > 0.0:
                black = pair_uniform(self.seed, other, sender, 2) < self.blacklist_fraction
        return admission.MessageFacts(
            sender_muted=sender in self.muted,
            blacklisted_by_recipient=black,
            are_friends=friends,
            is_group=msg.is_group,
            screening_verdict=screening,
            callback_verdict=callback,
        )

    def _after_checks(self, job) -> None:
        node, client, msg = job
        decision = admission.admit(self.checks_policy, self._facts(msg, None, None))
        if not decision.accepted:
            self._reject(node, client, msg, str(decision.reason))
            return
        sc = self.sc
        if sc["server.callback_enabled"]:
            stream = self.streams["admission"]
            latency_s = stream.exponential(sc["server.callback_ms"] / 1000.0)
            timeout_s = sc["server.callback_timeout_s"]
            if latency_s > timeout_s:
                verdict, latency_s = "timeout", timeout_s
            elif stream.uniform() < sc["server.callback_reject_prob"]:
                verdict = "reject"
            else:
                verdict = "allow"
            self.later(latency_s, self._after_callback, (node, client, msg, verdict, node.epoch))
        else:
            self._after_callback((node, client, msg, None, node.epoch))

    def _after_callback(self, job) -> None:
        node, client, msg, callback, epoch = job
        if node.epoch != epoch:
            return  # the node crashed while the business backend was being called
        job = (node, client, msg, callback)
        if self.sc["server.screening_enabled"]:
            node.stages["screening"].submit(
                self._after_screening, job, self.sc["server.screening_ms"]
            )
        else:
            self._after_screening(job)

    def _after_screening(self, job) -> None:
        node, client, msg, callback = job
        screening = None
        if self.sc["server.screening_enabled"]:
            blocked = self.streams["admission"].uniform() < self.sc["server.screening_block_prob"]
            screening = "block" if blocked else "pass"
        decision = admission.admit(self.policy, self._facts(msg, callback, screening))
        if not decision.accepted:
            self._reject(node, client, msg, str(decision.reason))
            return
        node.stages["recent_contacts"].submit(
            self._after_contacts, (node, client, msg), self.sc["server.recent_contacts_ms"]
        )

    def _after_contacts(self, job) -> None:
        node, _client, msg = job
        n_rcpt = len(self.rec.messages[msg.msg_id].recipients)
        sc = self.sc
        cost = sc["server.store_ms"]
        if msg.is_group and sc["server.diffusion"] == "write":
            cost += sc["server.inbox_write_ms"] * n_rcpt
        node.stages["store"].submit(self._after_store, job, cost)

    def _after_store(self, job) -> None:
        node, client, msg = job
        self._commit((node, client, msg, node.epoch))

    def _commit(self, job) -> None:
        node, client, msg, epoch = job
        if node.epoch != epoch:
            return
        now = self.env.now
        if node.store_fail_prob > 0 and self.streams["faults"].uniform() < node.store_fail_prob:
            self.counters["store_failures"] += 1
            self._reply(node, client, node.core.store_failed(msg))
            return
        item, reply = node.core.commit(msg, now)
        recipients = self.rec.messages[msg.msg_id].recipients
        online = {}
        for r in recipients:
            rnode = self.nodes[self.clients[r].node]
            online[r] = rnode.up and r in rnode.conn
        self.rec.stored(now, msg, item.order_key, online)
        self._reply(node, client, reply)
        self._route_stored(node, item, recipients)

    def _route_stored(self, node: Node, item, recipients) -> None:
        """Queue the status lookup + fan-out of a stored message (logged durably first)."""
        key = (item.msg_id, item.order_key)
        node.unrouted[key] = (item, recipients)
        sc = self.sc
        cost = sc["server.status_ms"] + sc["server.fanout_ms_per_recipient"] * len(recipients)
        node.stages["downlink"].submit(self._fan_out, (node, key), cost)

    def _reject(self, node: Node, client: Client, msg: Message, reason: str) -> None:
        self.counters["rejections"] += 1
        self._reply(node, client, node.core.reject(msg, reason, self.env.now))

    def _reply(self, node: Node, client: Client, reply: SendReply) -> None:
        if node.extra_delay_s > 0:
            # slow_server: the node answers late although the write is done (the
            # article's failure 3), so a retry meets a stored message in the dedup window.
            self.later(node.extra_delay_s, self._late_reply, (node, node.epoch, client, reply))
            return
        self.send_down(client.uid, self.header + REPLY_BYTES, self._reply_arrives, (client, reply))

    def _late_reply(self, arg) -> None:
        node, epoch, client, reply = arg
        if node.epoch == epoch:  # a reply still inside a crashed node is gone with it
            self.send_down(
                client.uid, self.header + REPLY_BYTES, self._reply_arrives, (client, reply)
            )

    def _reply_arrives(self, arg) -> None:
        client, reply = arg
        self.act(client, client.sender.handle_reply(reply, self.env.now))

    # ------------------------------------------------------------------------------------
    # server: the downlink
    def _fan_out(self, job) -> None:
        node, key = job
        entry = node.unrouted.pop(key, None)
        if entry is None:
            return
        item, recipients = entry
        now = self.env.now
        for r in recipients:
            rnode = self.nodes[self.clients[r].node]
            if not rnode.up:
                # The recipient's node is down: the store keeps it for the next login.
                self.store.offline.setdefault(r, []).append(item)
                continue
            conn = rnode.conn.get(r)
            mode = conn[1] if conn is not None else None
            if mode is None:
                self._offline_push(r, item)
            delivers = rnode.core.route(item, r, mode, now)
            if delivers:
                self._push_out(rnode, delivers, conn[0])
                self._arm_retx(rnode)
            elif mode == "poll" and r in rnode.held:
                self._answer_poll(rnode, self.clients[r])

    def _offline_push(self, uid: int, item) -> None:
        """The vendor's offline notification to a user who is not connected.

        It travels the vendor's channel (its own latency and loss) and tells the device
        that a message waits; the message itself comes with the next login. Its arrival
        time is recorded per message × recipient (``t_offline_push``)."""
        self.counters["offline_pushes"] += 1
        if self.streams["offline_push"].uniform() < self.sc["server.offline_push_loss"]:
            self.counters["offline_pushes_lost"] += 1
            return
        arrival = self.env.now + self.sc["server.offline_push_ms"] / 1000.0
        self.rec.messages[item.msg_id].offline_push.setdefault(uid, arrival)

    def _push_out(self, node: Node, delivers: list[Deliver], conn_id: int) -> None:
        for d in delivers:
            if d.attempt > 1:
                self.retransmits_downlink += 1
            size = self.header + d.item.message.payload_bytes
            self.send_down(d.recipient, size, self._push_arrives, (d, conn_id))

    def _push_arrives(self, arg) -> None:
        d, conn_id = arg
        client = self.clients[d.recipient]
        if client.conn_id != conn_id:
            return  # the connection it was sent on is gone
        self.act(client, client.receiver.handle_push(d.item, self.env.now))

    def _arm_retx(self, node: Node) -> None:
        deadline = node.core.pending.next_deadline()
        if deadline is None:
            return
        if node.retx_at is None or deadline < node.retx_at:
            node.retx_at = deadline
            self.later(max(0.0, deadline - self.env.now), self._retx_timer, node)

    def _retx_timer(self, node: Node) -> None:
        now = self.env.now
        if node.retx_at is None or node.retx_at > now:
            return
        node.retx_at = None
        if node.up:
            for d in node.core.pending.handle_timeout(now):
                conn = node.conn.get(d.recipient)
                if conn is not None:
                    self._push_out(node, [d], conn[0])
        self._arm_retx(node)

    def _ack_arrives(self, arg) -> None:
        client, msg_ids = arg
        node = self._session(client)
        if node is None:
            return
        now = self.env.now
        size = self.header + ACK_BYTES_PER_ID * len(msg_ids)
        self.rec.request(now, client.uid, "ack", len(msg_ids), size)
        node.core.pending.handle_ack(client.uid, msg_ids)

    # ------------------------------------------------------------------------------------
    # sync
    def _sync_arrives(self, arg) -> None:
        client, request = arg
        node = self._session(client)
        if node is None:
            return
        now = self.env.now
        size = self.header + CURSOR_BYTES * (1 + len(request.cursors))
        row = self.rec.request(now, client.uid, "sync", 0, size)
        node.stages["sync"].submit(
            self._answer_sync, (node, client, request, row), self.sc["server.sync_ms"]
        )

    def _answer_sync(self, job) -> None:
        _node, client, request, row = job
        response = self.store.answer_sync(request)
        self.rec.req_messages[row] = len(response.items)
        size = self.header + sum(i.message.payload_bytes + 16 for i in response.items)
        self.send_down(client.uid, size, self._sync_response_arrives, (client, response))

    def _sync_response_arrives(self, arg) -> None:
        client, response = arg
        if not client.conn_id:
            return
        resp: SyncResponse = response
        self.act(client, client.receiver.handle_sync_response(resp, self.env.now))

    # ------------------------------------------------------------------------------------
    # polling transports
    def _start_polling(self, client: Client, *, at_start: bool = False) -> None:
        """Begin a polling client's request loop (after a login, or at t = 0).

        Clients connected at the start of the run begin where a population that has been
        polling for a while would be, spread by their phase; starting them all alike would
        keep the whole population in lockstep for many cycles. A long-polling client has a
        poll held at the server, with a residual hold of phase × H; a fixed-delay short
        poller is waiting out its interval, for phase × (T + 2d).
        """
        if client.kind == SHORT_POLL and not self.fixed_delay:
            # Fixed rate: polls at phase·T + k·T, whatever the responses do.
            t_next = self._next_phase_time(client.phase, self.poll_interval_s)
            self.later(t_next - self.env.now, self._poll_tick, (client, client.conn_id))
        elif at_start and client.kind == LONG_POLL:
            self._poll(client, hold_s=client.phase * self.hold_s)
        elif at_start:
            cycle = self.poll_interval_s + 2.0 * self.one_way_mean_s
            self.later(client.phase * cycle, self._poll_after_delay, (client, client.conn_id))
        else:
            self._poll(client)

    def _next_phase_time(self, phase: float, period: float) -> float:
        now = self.env.now
        offset = phase * period
        k = math.floor((now - offset) / period) + 1
        return offset + k * period

    def _poll_tick(self, arg) -> None:
        client, conn_id = arg
        if client.conn_id != conn_id:
            return
        self._poll(client)
        self.later(self.poll_interval_s, self._poll_tick, arg)

    def _poll(self, client: Client, hold_s: float | None = None) -> None:
        """Send one poll (carrying any ACKs that wait for a ride); a long poll asks the
        server to hold it ``hold_s`` (default ``transport.long_poll_hold_s``)."""
        client.poll_seq += 1
        acks = client.pending_acks or ()
        client.pending_acks = None
        size = self.header + ACK_BYTES_PER_ID * len(acks)
        seq = client.poll_seq
        hold = self.hold_s if hold_s is None else hold_s
        self.send_up(client, size, self._poll_arrives, (client, seq, tuple(acks), hold))
        if client.kind == LONG_POLL or self.fixed_delay:
            wait = self.request_timeout_s + (hold if client.kind == LONG_POLL else 0.0)
            self.later(wait, self._poll_timeout, (client, seq))

    def _poll_timeout(self, arg) -> None:
        client, seq = arg
        if client.poll_seq == seq and client.conn_id:
            self._poll(client)  # no response: ask again (the ACKs it carried are resent)

    def _poll_arrives(self, arg) -> None:
        client, seq, acks, hold = arg
        node = self._session(client)
        if node is None:
            return
        now = self.env.now
        row = self.rec.request(
            now, client.uid, "poll", 0, self.header + ACK_BYTES_PER_ID * len(acks)
        )
        if acks:
            node.core.pending.handle_ack(client.uid, acks)
        node.stages["poll"].submit(
            self._poll_served, (node, client, seq, row, hold), self.sc["server.poll_ms"]
        )

    def _poll_served(self, job) -> None:
        node, client, seq, row, hold = job
        if client.kind == LONG_POLL and node.core.pending.waiting(client.uid) == 0:
            node.held[client.uid] = (seq, row)
            self.later(hold, self._hold_expires, (node, client, seq))
            return
        self._respond_poll(node, client, seq, row)

    def _hold_expires(self, arg) -> None:
        node, client, seq = arg
        held = node.held.get(client.uid)
        if held is not None and held[0] == seq:
            self._answer_poll(node, client)

    def _answer_poll(self, node: Node, client: Client) -> None:
        seq, row = node.held.pop(client.uid)
        self._respond_poll(node, client, seq, row)

    def _respond_poll(self, node: Node, client: Client, seq: int, row: int) -> None:
        delivers = node.core.pending.take_for_poll(client.uid, self.batch_max)
        self.retransmits_downlink += sum(d.attempt > 1 for d in delivers)
        self.rec.req_messages[row] = len(delivers)
        size = self.header + sum(d.item.message.payload_bytes for d in delivers)
        self.send_down(client.uid, size, self._poll_response_arrives, (client, seq, delivers))

    def _poll_response_arrives(self, arg) -> None:
        client, seq, delivers = arg
        if not client.conn_id:
            return
        now = self.env.now
        actions: list = []
        for d in delivers:
            actions.extend(client.receiver.handle_push(d.item, now))
        self.act(client, actions)
        if seq == client.poll_seq:
            if client.kind == LONG_POLL:
                self._poll(client)
            elif self.fixed_delay:
                client.poll_seq += 1  # the timeout of this poll no longer applies
                self.later(self.poll_interval_s, self._poll_after_delay, (client, client.conn_id))

    def _poll_after_delay(self, arg) -> None:
        client, conn_id = arg
        if client.conn_id == conn_id:
            self._poll(client)

    # ------------------------------------------------------------------------------------
    # connections: login, disconnect, detection, reconnect
    def connect(self, client: Client) -> None:
        """Open a connection: handshake round trips, then login with a UserSig."""
        if not client.online or client.connecting or client.conn_id:
            return
        client.connecting = True
        rtts = self.sc["transport.handshake_rtts"]
        delay = 0.0
        for _ in range(rtts):
            if self.up.lost(client.uid, self.header) or self.down.lost(client.uid, self.header):
                self.later(delay + self.request_timeout_s, self._connect_failed, client)
                return
            delay += self.up.delay() + self.down.delay()
        self.later(delay, self._send_login, client)

    def _send_login(self, client: Client) -> None:
        now = self.env.now
        token = generate_usersig(
            sdkappid=SDKAPPID,
            key=USERSIG_KEY,
            identifier=str(client.uid),
            expire_s=USERSIG_TTL_S,
            now=int(now),
        )
        self.send_up(client, self.header + LOGIN_BYTES, self._login_arrives, (client, token))
        self.later(
            self.request_timeout_s, self._login_timeout, (client, self._login_serial(client))
        )

    def _login_serial(self, client: Client) -> int:
        self._serial += 1
        self._login_waits[client.uid] = self._serial
        return self._serial

    def _new_conn_id(self) -> int:
        self._next_conn_id += 1
        return self._next_conn_id

    def _login_timeout(self, arg) -> None:
        client, serial = arg
        if client.connecting and self._login_waits.get(client.uid) == serial:
            self._connect_failed(client)

    def _connect_failed(self, client: Client) -> None:
        self.counters["login_failures"] += 1
        client.connecting = False
        if not client.online:
            return
        base = self.sc["transport.reconnect_base_s"]
        cap = self.sc["transport.reconnect_max_s"]
        client.backoff_s = min(cap, max(base, client.backoff_s * 2.0))
        # Full jitter: spreads a crowd of reconnecting clients over the backoff window.
        wait = self.streams["reconnect"].uniform() * client.backoff_s
        self.later(wait, self._reconnect, client)

    def _reconnect(self, client: Client) -> None:
        self.connect(client)

    def _login_arrives(self, arg) -> None:
        client, token = arg
        node = self.nodes[client.node]
        if not node.up:
            return
        now = self.env.now
        self.rec.request(now, client.uid, "login", 0, self.header + LOGIN_BYTES)
        node.stages["auth"].submit(
            self._login_served, (node, client, token), self.sc["server.auth_ms"]
        )

    def _login_served(self, job) -> None:
        node, client, token = job
        now = self.env.now
        decision = admission.authenticate(
            token, sdkappid=SDKAPPID, key=USERSIG_KEY, identifier=str(client.uid), now=int(now)
        )
        if not decision.accepted:  # cannot happen with the simulator's own tokens
            raise AssertionError(f"simulated login rejected: {decision.reason}")
        self.counters["logins"] += 1
        old = node.conn.get(client.uid)
        if old is not None:
            conn_id = old[0]
        else:
            conn_id = self._new_conn_id()
            node.conn[client.uid] = (conn_id, self._mode(client))
        self.send_down(
            client.uid, self.header + REPLY_BYTES, self._login_reply_arrives, (client, conn_id)
        )

    def _login_reply_arrives(self, arg) -> None:
        client, conn_id = arg
        node = self.nodes[client.node]
        if not client.connecting or not client.online or not node.up:
            return
        conn = node.conn.get(client.uid)
        if conn is None or conn[0] != conn_id:
            return
        now = self.env.now
        client.connecting = False
        client.backoff_s = 0.0
        client.conn_id = conn_id
        client.connected_since = now
        self._login_waits.pop(client.uid, None)
        # The offline queue moves to the downlink, then the client syncs what it missed.
        delivers = node.core.login(client.uid, conn[1], now)
        if delivers:
            self._push_out(node, delivers, conn_id)
            self._arm_retx(node)
        actions = client.receiver.request_sync(now) if self.sync_on else []
        if client.kind != PUSH:
            self._start_polling(client)
        self.act(client, actions)

    def drop_connection(self, node: Node, uid: int, clean: bool) -> None:
        """The server side forgets ``uid``'s connection (clean: unacked → offline)."""
        if node.conn.pop(uid, None) is None:
            return
        node.held.pop(uid, None)
        if clean:
            node.core.disconnect(uid)

    def detect_dead_connection(self, client: Client) -> None:
        """Schedule when ``client`` notices that its connection is dead, and reconnects.

        It notices at its next heartbeat (push) or poll, when that request goes
        unanswered for ``request_timeout_s``.
        """
        conn_id = client.conn_id
        if not conn_id:
            return
        if client.kind == PUSH:
            period = self.heartbeat_s
        elif client.kind == SHORT_POLL:
            period = self.poll_interval_s
        else:
            period = self.hold_s
        t_notice = self._next_phase_time(client.phase, period) + self.request_timeout_s
        self.later(t_notice - self.env.now, self._notice_dead, (client, conn_id))

    def _notice_dead(self, arg) -> None:
        client, conn_id = arg
        if client.conn_id != conn_id:
            return
        node = self.nodes[client.node]
        conn = node.conn.get(client.uid) if node.up else None
        if conn is not None and conn[0] == conn_id:
            return  # still alive after all
        self._detach_client(client)
        self.connect(client)

    # ------------------------------------------------------------------------------------
    # presence (churn)
    def _presence_start(self) -> None:
        if not self.churn:
            return
        stream = self.streams["presence"]
        on, off = self.sc["workload.mean_online_s"], self.sc["workload.mean_offline_s"]
        for client in self.clients:
            mean = on if client.online else off
            self.later(stream.exponential(mean), self._presence_flip, client)

    def _presence_flip(self, client: Client) -> None:
        stream = self.streams["presence"]
        if client.online:
            self._set_online(client, False)
            node = self.nodes[client.node]
            if node.up:
                self.drop_connection(node, client.uid, clean=True)
            self._detach_client(client)
            client.connecting = False
            self.later(
                stream.exponential(self.sc["workload.mean_offline_s"]), self._presence_flip, client
            )
        else:
            self._set_online(client, True)
            client.backoff_s = 0.0
            self.connect(client)
            self.later(
                stream.exponential(self.sc["workload.mean_online_s"]), self._presence_flip, client
            )

    # ------------------------------------------------------------------------------------
    # faults
    def crash_node(self, node: Node) -> None:
        """Volatile state of ``node`` is gone; its clients will notice and reconnect."""
        now = self.env.now
        node.up = False
        node.crashes += 1
        self.counters["crash_pending_lost"] += node.core.crash()
        for stage in node.stages.values():
            self.counters["stage_jobs_lost"] += stage.crash()
        node.retx_at = None
        users = list(node.conn)
        node.conn.clear()
        node.held.clear()
        node.epoch += 1
        node.crashed_at = now
        for uid in users:
            self.detect_dead_connection(self.clients[uid])

    def recover_node(self, node: Node) -> None:
        """The node is back: fan-outs that the crash interrupted are redone from the
        store's durable fan-out log (the store kept the messages)."""
        node.up = True
        for item, recipients in list(node.unrouted.values()):
            self._route_stored(node, item, recipients)

    # ------------------------------------------------------------------------------------
    def _sampler(self):
        env = self.env
        interval = self.sc["sample_interval_s"]
        rows = self.rec.load_rows
        while env.now <= self.horizon_s:
            t = env.now
            for node in self.nodes:
                row: dict[str, Any] = {"t": t, "node": node.node_id, "up": node.up}
                for name, stage in node.stages.items():
                    row[f"queue_{name}"] = len(stage.queue)
                    row[f"busy_{name}"] = stage.busy
                row["held_polls"] = len(node.held)
                row["connections"] = len(node.conn)
                row["pending_acks"] = len(node.core.pending)
                rows.append(row)
            yield env.timeout(interval)

    def _close_window(self, _arg) -> None:
        """The sending period ends: note what rates over it need (busy worker-seconds per
        stage, connected push time for heartbeats)."""
        now = self.env.now
        self.window_busy = {
            (node.node_id, name): stage.busy_area()
            for node in self.nodes
            for name, stage in node.stages.items()
        }
        connected_s = 0.0
        for c in self.clients:
            if c.kind != PUSH:
                continue
            connected_s += c.connected_total_s
            if c.conn_id and not math.isnan(c.connected_since):
                connected_s += now - c.connected_since
        self.window_push_connected_s = connected_s

    def run(self) -> None:
        """Run the scenario to the end of the drain."""
        env = self.env
        env.process(self._workload())
        env.process(self._sampler())
        self._presence_start()
        from immodel.sim.faults import schedule_faults

        schedule_faults(self)
        self.later(self.duration_s, self._close_window, None)
        # The run allocates millions of short-lived, acyclic objects (events, packets);
        # the cyclic GC would only re-traverse the long-lived client objects, so it is
        # paused for the run and restored after it.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            env.run(until=self.horizon_s)
        finally:
            if gc_was_enabled:
                gc.enable()
        for client in self.clients:
            if client.conn_id and not math.isnan(client.connected_since):
                client.connected_total_s += self.horizon_s - client.connected_since
                client.connected_since = math.nan


__all__ = ["LONG_POLL", "PUSH", "SHORT_POLL", "World", "pair_uniform"]

"""The simulated IM deployment: clients → access tier → logic tier → store, on SimPy.

This module assembles one run; each part of the deployment has its own module:

* :mod:`immodel.sim.network` and :mod:`immodel.sim.connection` — links, the stream and
  datagram models, one :class:`~immodel.sim.connection.Connection` per client connection;
* :mod:`immodel.sim.clients` — devices, their protocol machines, connecting, polling;
* :mod:`immodel.sim.access` — access nodes: connections, sessions, heartbeats, held polls;
* :mod:`immodel.sim.logic` — logic nodes: stages, dedup, ordering, pending-ACK, fan-out;
* :mod:`immodel.sim.presence` — who is online, churn;
* :mod:`immodel.sim.security` — DNS, the on-path attacker, UserSig lifetimes, attacks;
* :mod:`immodel.sim.faults` — fault injection, through the small interface this class
  offers (:class:`~immodel.sim.faults.FaultTarget`).

Every protocol decision — ids, retries, dedup, order keys, pending-ACK retransmits,
receiver order and sync — is taken by the classes of :mod:`immodel.protocol`; the world
only adds what the reference model leaves out: time (latency, service times, queueing),
loss, load, presence and faults.

Lifecycle of one message (the article's three stages)::

    workload ─► client.sender.submit ─► uplink (stream) ─► access node (forward)
      ─► sender's logic node: dedup ─► auth ─► checks ─► [callback] ─► [screening]
      ─► recent contacts ─► store ─► commit ─► reply (access node ─► downlink)
      └► downlink stage (status + fan-out) ─► recipient's logic node: push (pending-ACK)
         │ poll outbox (+ answer a held long poll on the access node) │ offline queue
      ─► access node ─► downlink (stream) ─► client.receiver ─► Show (app) + ACK + sync

Cost model of the event loop: SimPy processes only for what has work to do (the
workload's arrival stream, the load sampler, each node's lifecycle — a crash is
``Process.interrupt``). Everything else is a scheduled callback
(:class:`~immodel.sim.kernel.Call`): a frame in flight is one event, a job in a server
stage is one event, a client's retry/sync timer is one event per deadline. An idle push
client has no pending event at all: heartbeats are counted from its connected time (and
charged to its access node once per sampling tick), and a client notices a silent
connection at its own next heartbeat (its phase is fixed at set-up) plus the request
timeout.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import URGENT

from immodel.protocol.receiver import Receiver
from immodel.protocol.sender import UplinkSender
from immodel.protocol.server import MessageStore
from immodel.scenario import Scenario
from immodel.sim import endpoints, faults, idle_poll, offline_push
from immodel.sim.access import AccessTier
from immodel.sim.backend import Backend
from immodel.sim.clients import LONG_POLL, PUSH, SHORT_POLL, Client, ClientSide
from immodel.sim.connection import Connection
from immodel.sim.devices import build_devices
from immodel.sim.kernel import Call, Deadlines, later, pair_uniform, run_until
from immodel.sim.live import LiveRooms
from immodel.sim.logic import STAGE_NAMES, LogicTier
from immodel.sim.network import Network, latency_mean_s
from immodel.sim.offline_push import OfflinePush
from immodel.sim.presence import Presence
from immodel.sim.reachability import Reachability
from immodel.sim.records import Recorder
from immodel.sim.rng import Streams
from immodel.sim.security import Security
from immodel.sim.workload import draw_device, draw_message


class World:
    """Everything of one run: build it from a :class:`Scenario`, then :meth:`run`."""

    def __init__(self, scenario: Scenario) -> None:
        # "auto" drain → the number the scenario needs (a numeric drain stays as given)
        sc = self.sc = scenario.resolved()
        self.env = simpy.Environment()
        # retransmit, sync, poll and hold deadlines: armed per request, rarely due
        self.deadlines = Deadlines(self.env)
        self.streams = Streams(sc["seed"])
        self.rec = Recorder()
        self.reach = Reachability()  # each device's connected intervals (lost pairs' split)
        self.seed = sc["seed"]
        self.n_users = sc["workload.users"]
        self.duration_s = sc["duration_s"]
        self.horizon_s = sc["duration_s"] + sc["drain_s"]
        self.heartbeat_s = sc["transport.heartbeat_s"]
        self.request_timeout_s = sc["transport.request_timeout_s"]
        self.one_way_mean_s = latency_mean_s(sc["network.latency_ms"])
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
            "seqs_burnt": 0,
            "liveness_drops": 0,
            "connection_breaks": 0,
            "transport_gave_up": 0,
            "routed_to_down_node": 0,
            # security (immodel.sim.security)
            "hijacked_connections": 0,
            "dns_lookups": 0,
            "httpdns_requests": 0,
            "tamper_detected": 0,
            "tampered_deliveries": 0,
            "exposed_messages": 0,
            "forged_rejected": 0,
            "logins_rejected": 0,
            "relogins": 0,
            "replays_accepted": 0,
            "hostile_logins_accepted": 0,
            "screening_blocked": 0,
            "screening_flagged": 0,
            "screening_replaced": 0,
            "screening_sender_only": 0,
            # offline push end to end and login catch-up (immodel.sim.offline_push)
            "offline_push_refused": 0,
            "offline_push_collapsed": 0,
            "push_opens": 0,
            "login_backlog": 0,
            "login_queue_pushed": 0,
        }
        self.sync_bytes = 0
        self.idle: idle_poll.IdlePollCohorts | None = None  # set once the clients exist
        self.net = Network(self.env, sc, self.streams)
        self.net.on_give_up = self._transport_gave_up
        self.store = MessageStore(inbox=sc["reliability.sync_cursor"] == "inbox")
        self.presence = Presence(self)
        self.side = ClientSide(self)
        self.logic = LogicTier(self)
        self.access = AccessTier(self)
        self.side.bind_access(self.access)
        self.security = Security(self)
        self.push = OfflinePush(self) if offline_push.enabled(sc) else None
        self.nodes = self.logic.nodes  # the logic nodes (what faults name by ``node``)
        self._break_mean_s = (
            3600.0 / sc["network.break_rate_per_hour"]
            if sc["network.break_rate_per_hour"] > 0
            else 0.0
        )
        self._setup_clients()
        self._setup_conversations()
        # idle fixed-rate short pollers in cohorts (immodel.sim.idle_poll): off by default
        if idle_poll.enabled(sc):
            self.idle = idle_poll.IdlePollCohorts(self)
        # live-broadcast rooms (immodel.sim.live): none by default
        self.live = LiveRooms(self) if sc["workload.live_rooms"] > 0 else None
        self.backend = Backend(self)  # REST API senders (nothing unless the keys ask)
        # Filled when the sending period ends (rates over it, see _close_window).
        self.window_busy: dict[tuple[str, int, str], float] = {}
        self.window_push_connected_s = 0.0
        # What each fault did (faults.py appends; recovery metrics read it).
        self.fault_log: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------
    # set-up
    def _setup_clients(self) -> None:
        sc = self.sc
        n = self.n_users
        phases, kinds = endpoints.phases_and_transports(sc, n, self.streams["phase"].generator)
        # Several devices per user (immodel.sim.devices): one client per device; the
        # first n keep the users' ids, phases and presence draws of a one-device run.
        self.devices = build_devices(sc, n, self.streams)
        n_dev = n
        if self.devices is not None:
            kinds = self.devices.transport
            n_dev = len(kinds)
            phases += self.streams["devices"].generator.random(n_dev - n).tolist()
            self.presence.use_devices(self.devices)
            self.rec.devices = self.devices
        self.rec.recipient_kind = kinds
        policy = endpoints.retry_policy(sc)
        rkw = endpoints.receiver_options(sc)
        self.clients = [
            Client(u, kinds[u], UplinkSender(u, policy), Receiver(u, **rkw), phases[u])
            for u in range(n_dev)
        ]
        if self.devices is not None:
            for c in self.clients:
                c.user = self.devices.user[c.uid]
                c.device = self.devices.kind[c.uid]
        online0 = self.streams["presence"].generator.random(n_dev) < sc["workload.online_fraction"]
        for u in range(n_dev):
            client = self.clients[u]
            if online0[u]:
                self.presence.set_online(client, True)
                self.side.attach(client)
            else:
                client.sender.connected = False  # what the app sends waits for a login
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
                    self._join(m, name)
        self.group_members = dict(zip(self.group_names, self.groups, strict=True))

    def _join(self, uid: int, conversation: str) -> None:
        """Make user ``uid`` a member of ``conversation``: each of its devices (what the
        devices' syncs look through)."""
        if self.devices is None:
            self.store.join(uid, conversation)
        else:
            for eid in self.devices.of[uid]:
                self.store.join(eid, conversation)

    def _submit(self, sender_uid: int, conv: str, is_group: bool, users, now: float, stream):
        """User ``sender_uid`` sends to ``users`` from one of its online devices; the
        message goes to every device of each recipient and to the sender's other devices."""
        dev = self.devices
        if dev is None:
            self.side.submit(self.clients[sender_uid], conv, is_group, users, now)
            return
        eid = draw_device(stream, dev, self.presence.online, sender_uid)
        self.side.submit(self.clients[eid], conv, is_group, dev.expand(users, eid), now)

    # ------------------------------------------------------------------------------------
    # the narrow interface of faults.py (FaultTarget)
    def later(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        """Call ``fn(arg)`` after ``delay`` seconds of simulated time."""
        later(self.env, delay, fn, arg)

    @property
    def online_pos(self) -> dict[int, int]:
        """Online users (keys) — what faults pick from."""
        return self.presence.online_pos

    @property
    def up(self):
        """The uplink (client → server) :class:`~immodel.sim.network.Link`."""
        return self.net.up

    @property
    def down(self):
        """The downlink (server → client) :class:`~immodel.sim.network.Link`."""
        return self.net.down

    def connected_users(self) -> list[int]:
        """Users whose connection an up access node holds, in id order."""
        return sorted(u for node in self.access.nodes if node.up for u in node.conns)

    def drop_connection(self, uid: int, clean: bool) -> None:
        """The access tier forgets ``uid``'s connection (clean: unacked → offline)."""
        self.access.close(uid, clean)

    def detect_dead_connection(self, client: Client) -> None:
        """``client`` notices its silent connection at its next heartbeat/poll."""
        self.side.detect_dead_connection(client)

    def notice_time_s(self, client: Client) -> float:
        """When ``client``'s next heartbeat/poll goes unanswered (absolute time)."""
        return (
            self.side.next_phase_time(client.phase, self.side.detect_period(client))
            + self.request_timeout_s
        )

    def restart_app(self, uid: int, keep_local_state: bool) -> None:
        """The app of ``uid`` restarts: it closes its connection and connects again."""
        client = self.clients[uid]
        if not keep_local_state:
            client.receiver.reset()
            for msg in client.sender.forget():
                self.rec.outcome(msg.msg_id, self.env._now, "app_restart")
        self.access.close(uid, clean=True)
        self.side.detach(client)
        client.connecting = False
        self.side.connect(client)

    def reconnect_silent(self, uid: int, conn: Connection) -> None:
        """``uid`` gave up on a silent ``conn`` and connects again (heartbeat timeout)."""
        client = self.clients[uid]
        if client.conn is conn:
            self.side.detach(client)
            self.side.connect(client)

    def users_of_logic_node(self, node_id: int) -> list[int]:
        """Connected users the access tier routes to logic node ``node_id`` now."""
        owner = self.logic.owner
        return [u for u in self.connected_users() if owner(u).node_id == node_id]

    def serves(self, conn: Connection) -> bool:
        """An up access node still holds ``conn``."""
        return self.access.serves(conn)

    def crash_access(self, node_id: int, down_s: float) -> list[int] | None:
        """Kill access node ``node_id`` for ``down_s``; returns the users whose connections
        it reset (None: it was already down, and the outage is extended)."""
        node = self.access.nodes[node_id]
        if not node.up:
            node.down_until = max(node.down_until, self.env._now + down_s)
            return None
        users = sorted(node.conns)
        node.process.interrupt(down_s)
        return users

    # ------------------------------------------------------------------------------------
    # connection breaks
    def arm_break(self, conn: Connection) -> None:
        """Schedule the silent break of a new connection (``network.break_rate_per_hour``)."""
        if self._break_mean_s > 0:
            delay = self.streams["breaks"].exponential(self._break_mean_s)
            later(self.env, delay, self._break, conn)

    def _break(self, conn: Connection) -> None:
        client = self.clients[conn.uid]
        if conn.broken or client.conn is not conn:
            return
        conn.broken = True  # a NAT binding gone, a handover: nothing gets through
        self.counters["connection_breaks"] += 1
        self.side.detect_dead_connection(client)
        later(self.env, self.sc["transport.liveness_timeout_s"], self._server_drops_silent, conn)

    def _server_drops_silent(self, conn: Connection) -> None:
        if self.access.serves(conn):
            self.counters["liveness_drops"] += 1
            self.access.close(conn.uid, clean=True)

    def _transport_gave_up(self, conn: Connection) -> None:
        """The transport gave up after its last retransmission: both ends learn it."""
        self.counters["transport_gave_up"] += 1
        if self.access.serves(conn):
            self.access.close(conn.uid, clean=True)
        self.side.reset((self.clients[conn.uid], conn))

    # ------------------------------------------------------------------------------------
    # workload
    def _workload_next(self, _) -> None:
        """Wait for the next send of the Poisson workload (rate × users online).

        The workload is a chain of :class:`~immodel.sim.kernel.Call` events rather than
        a SimPy process: the same waits drawn in the same order, one cheap event per
        message instead of a ``Timeout`` and a generator resumption."""
        if self._send_rate <= 0:
            return
        n_online = len(self.presence.user_list)  # users with a device online
        if n_online == 0:
            later(self.env, 1.0, self._workload_next, None)
        else:
            wait = self._workload_stream.exponential(1.0 / (n_online * self._send_rate))
            later(self.env, wait, self._workload_send, None)

    def _workload_send(self, _) -> None:
        if self.env._now >= self.duration_s:
            return
        if self.presence.user_list:
            self._submit_one(self._workload_stream, self._group_share)
        self._workload_next(None)

    def _submit_one(self, stream, group_share: float) -> None:
        sender_uid, g, users = draw_message(
            stream, group_share, self.groups, self.presence.online, self.contacts, self.n_users
        )
        if g >= 0:
            self._submit(sender_uid, self.group_names[g], True, users, self.env._now, stream)
        else:
            conv = self._one_to_one(sender_uid, users[0])
            self._submit(sender_uid, conv, False, users, self.env._now, stream)

    def _one_to_one(self, a: int, b: int) -> str:
        """The 1:1 conversation of users a and b (both become members on first use)."""
        if a > b:
            a, b = b, a
        conv = f"d{a}-{b}"
        # joining is idempotent and the store keeps the memberships: a set of the pairs
        # seen cost another ~35 bytes per conversation (random pairs: per message)
        self._join(a, conv)
        self._join(b, conv)
        return conv

    def inject(self, at_s: float, sender: int, recipient: int) -> None:
        """Schedule one 1:1 message from ``sender`` to ``recipient`` at ``at_s`` (on top of
        the Poisson workload): for tests and notebooks that follow a single message."""

        def submit(_arg) -> None:
            conv = self._one_to_one(sender, recipient)
            users = (recipient,)
            if self.devices is not None:  # from the sender's first device
                users = self.devices.expand(users, sender)
            self.side.submit(self.clients[sender], conv, False, users, self.env._now)

        self.later(at_s - self.env._now, submit, None)

    # ------------------------------------------------------------------------------------
    # measurement
    def all_stages(self):
        """(tier, node id, stage name, stage) for every stage of both tiers."""
        for node in self.access.nodes:
            yield "access", node.node_id, "access", node.stage
        for node in self.logic.nodes:
            for name, stage in node.stages.items():
                yield "logic", node.node_id, name, stage

    def _sampler(self):
        env = self.env
        interval = self.sc["sample_interval_s"]
        rows = self.rec.load_rows
        while env.now <= self.horizon_s:
            t = env.now
            self.access.charge_heartbeats(interval)
            for node in self.logic.nodes:
                row: dict[str, Any] = {"t": t, "tier": "logic", "node": node.node_id, "up": node.up}
                for name, stage in node.stages.items():
                    row[f"queue_{name}"] = len(stage.queue)
                    row[f"busy_{name}"] = stage.busy
                row["pending_acks"] = len(node.core.pending)
                rows.append(row)
            for anode in self.access.nodes:
                rows.append(
                    {
                        "t": t,
                        "tier": "access",
                        "node": anode.node_id,
                        "up": anode.up,
                        "queue_access": len(anode.stage.queue),
                        "busy_access": anode.stage.busy,
                        "held_polls": len(anode.held),
                        "connections": len(anode.conns),
                    }
                )
            yield env.timeout(interval)

    def _close_window(self, _arg) -> None:
        """The sending period ends: note what rates over it need (busy worker-seconds per
        stage, connected push time for heartbeats)."""
        now = self.env._now
        self.window_busy = {
            (tier, node_id, name): stage.busy_area()
            for tier, node_id, name, stage in self.all_stages()
        }
        connected_s = 0.0
        for c in self.clients:
            if c.kind != PUSH:
                continue
            connected_s += c.connected_total_s
            if c.conn is not None and not math.isnan(c.connected_since):
                connected_s += now - c.connected_since
        self.window_push_connected_s = connected_s

    def run(self) -> None:
        """Run the scenario to the end of the drain."""
        env = self.env
        sc = self.sc
        self._send_rate = sc["workload.send_rate_per_user"]
        self._group_share = sc["workload.group_share"] if self.groups else 0.0
        self._workload_stream = self.streams["workload"]
        # started as a process would be: at once, before the other events of t = 0
        heapq.heappush(
            env._queue, (env.now, URGENT, next(env._eid), Call(self._workload_next, None))
        )
        env.process(self._sampler())
        self.presence.start()
        self.security.start()
        self.backend.start()
        faults.schedule_faults(self)
        if self.live is not None:
            self.live.start()
        self.later(self.duration_s, self._close_window, None)
        # The run allocates millions of short-lived, acyclic objects (events, packets);
        # the cyclic GC would only re-traverse the long-lived client objects, so it is
        # paused for the run and restored after it.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            run_until(env, self.horizon_s)
        finally:
            if gc_was_enabled:
                gc.enable()
        if self.live is not None:
            self.live.finish()
        if self.idle is not None:
            self.idle.finish()
        for client in self.clients:
            if client.conn is not None and not math.isnan(client.connected_since):
                client.connected_total_s += self.horizon_s - client.connected_since
                client.connected_since = math.nan


__all__ = ["LONG_POLL", "PUSH", "SHORT_POLL", "STAGE_NAMES", "World", "pair_uniform"]

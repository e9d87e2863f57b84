"""The access tier: access nodes hold the clients' connections, sessions and held polls.

An access node is what a client connects to (through the load balancer: a client picks
one of the live access nodes at connect). It terminates TLS, verifies the login's UserSig
and keeps the session, answers heartbeats, parks long polls, and forwards every request to
the **logic node that owns the user** (:mod:`immodel.sim.logic`); downlink frames from the
logic tier leave through the access node that holds the recipient's connection.

What each action costs runs on the node's ``access`` stage (``server.access_workers``
workers, service times from ``server.*_ms`` keys): a login (TLS handshake and UserSig
verification), each request forwarded, each downlink frame, parking a long poll, and the
heartbeats of its push connections (charged as one job per sampling tick, since
heartbeats are counted rather than simulated one by one). A held long poll also keeps
``server.held_poll_bytes`` of memory (``held_poll_memory_peak_bytes``). The stage is a
:class:`~immodel.sim.stage.TimedStage`: a FIFO queue whose jobs know when they complete,
so a downlink frame is handed to the network for the moment the worker has written it
(one event for the write and the flight), and work nobody waits for (heartbeats, parking
a poll) costs no event at all. The transmission is decided when the frame is queued, for
that later instant; a connection that breaks in the meantime (microseconds of queueing)
still carries the frame, and its receiver ignores it if it has already let go.

Lifecycle of an access node: up ─► crash (``gateway_crash`` with ``node``) ─► down for
``down_s`` ─► up. A crashed process resets its connections: every client on it learns at
once and reconnects to a live access node; the logic tier moves what those users had not
acknowledged to their offline queues. The logic nodes, and their pending-ACK queues for
users on other access nodes, are untouched.
"""

from __future__ import annotations

import math
from typing import Any

from immodel.protocol import channel
from immodel.sim.clients import (
    ACK_BYTES_PER_ID,
    LOGIN_BYTES,
    PUSH,
    REPLY_BYTES,
    Client,
)
from immodel.sim.connection import Connection
from immodel.sim.kernel import Deadlines, crash_lifecycle
from immodel.sim.stage import TimedStage, service_sampler


class AccessNode:
    """One access node: its connection table, held polls and its ``access`` stage."""

    def __init__(self, tier: AccessTier, node_id: int) -> None:
        env, sc = tier.env, tier.sc
        self.tier = tier
        self.node_id = node_id
        unit = service_sampler(sc["server.service_dist"], 0.001, tier.w.streams["service"])
        self.stage = TimedStage(env, "access", node_id, sc["server.access_workers"], unit)
        self.stages = {"access": self.stage}
        self.up = True
        self.conns: dict[int, Connection] = {}
        # push connections in ``conns``, kept in step with it (the heartbeat charge every
        # sample would otherwise count a million connections)
        self.push_conns = 0
        # uid → (poll seq, request row, conn, the hold's expiry timer)
        self.held: dict[int, tuple[int, int, Connection, Any]] = {}
        self.held_peak = 0
        self.crashes = 0
        self.down_until = math.nan
        self.process = env.process(crash_lifecycle(env, self, tier.crash_node, tier.recover_node))

    def hold(self, conn: Connection) -> None:
        """``conn`` is this node's connection of its user from now on."""
        old = self.conns.get(conn.uid)
        if old is not None and old.mode == PUSH:
            self.push_conns -= 1
        self.conns[conn.uid] = conn
        if conn.mode == PUSH:
            self.push_conns += 1

    def release(self, uid: int) -> Connection | None:
        """Forget ``uid``'s connection on this node; the connection, if there was one."""
        conn = self.conns.pop(uid, None)
        if conn is not None and conn.mode == PUSH:
            self.push_conns -= 1
        return conn


class AccessTier:
    """All access nodes, and the session registry the logic tier asks "where is user u"."""

    def __init__(self, world: Any) -> None:
        sc = self.sc = world.sc
        self.w = world
        self.env = world.env
        self.rec = world.rec
        self.net = world.net
        self.header = sc["network.header_bytes"]
        self.cost_login = sc["server.tls_handshake_ms"] + sc["server.auth_ms"]
        self.cost_request = sc["server.access_request_ms"]
        self.cost_frame = sc["server.access_frame_ms"]
        # an on-path attacker also alters messages going up (a draw only when it is there)
        self.check_uplink = sc["security.tamper_prob"] > 0
        self._uplink_seen: set[str] = set()  # messages that reached the tier (tampering on)
        self.cost_hold = sc["server.hold_ms"]
        self.cost_heartbeat = sc["server.heartbeat_ms"]
        self.heartbeat_s = sc["transport.heartbeat_s"]
        self.nodes = [AccessNode(self, i) for i in range(sc["server.access_nodes"])]
        self._next_conn_id = 0
        # the logic tier's request handlers, bound once (not a bound method per request)
        logic = world.logic
        self._logic_send, self._logic_ack = logic.send_arrives, logic.ack_arrives
        self._logic_sync = logic.sync_arrives

    # ------------------------------------------------------------------------------------
    # connections and sessions
    def pick(self, client: Client) -> AccessNode | None:
        """The access node a connecting client reaches (the load balancer's choice among
        the live ones), or None when none is up."""
        nodes = self.nodes
        if len(nodes) == 1:
            return nodes[0] if nodes[0].up else None
        live = [n for n in nodes if n.up]
        if not live:
            return None
        return live[self.w.streams["access_pick"].below(len(live))]

    def new_connection(self, client: Client, node: AccessNode) -> Connection:
        self._next_conn_id += 1
        conn = Connection(self._next_conn_id, client.uid, node.node_id, client.mode, self.env._now)
        self.net.prime(conn)
        return conn

    def open(self, client: Client) -> Connection:
        """A connection registered at once (users online at t = 0)."""
        node = self.pick(client)
        assert node is not None
        conn = self.new_connection(client, node)
        node.hold(conn)
        return conn

    def serves(self, conn: Connection) -> bool:
        """The access node still holds ``conn`` (and is up)."""
        node = self.nodes[conn.access]
        return node.up and node.conns.get(conn.uid) is conn

    def session(self, uid: int) -> Connection | None:
        """``uid``'s connection on the access tier now, if any (the status lookup)."""
        conn = self.w.clients[uid].conn
        if conn is not None:  # what serves(conn) says, written out: asked per frame
            node = self.nodes[conn.access]
            if node.up and node.conns.get(conn.uid) is conn:
                return conn
        for node in self.nodes:  # the server may hold a connection the client gave up on
            c = node.conns.get(uid) if node.up else None
            if c is not None:
                return c
        return None

    def close(self, uid: int, clean: bool) -> None:
        """The access tier forgets ``uid``'s connection (clean: the logic tier moves what
        was not acknowledged to the offline queue)."""
        if self.w.idle is not None:  # the client's polls now reach nobody
            self.w.idle.connection_lost(self.w.clients[uid], "closed")
        for node in self.nodes:
            if node.release(uid) is not None:
                held = node.held.pop(uid, None)
                if held is not None:
                    Deadlines.cancel(held[3])
                if clean:
                    self.w.logic.user_disconnected(uid)

    def _request(self, client: Client, conn: Connection, kind: str, n: int, size: int):
        """A request reaches the access node on ``conn``: the node, its row — or None when
        the connection is no longer served there (the request is lost)."""
        node = self.nodes[conn.access]
        if not node.up or node.conns.get(client.uid) is not conn:
            return None, -1
        return node, self.rec.request(self.env._now, client.uid, kind, n, size)

    def frame_down(self, conn: Connection | None, uid: int, size: int, fn, arg) -> None:
        """A downlink frame leaves through ``conn``'s access node (costs one frame)."""
        if conn is None:
            return
        node = self.nodes[conn.access]
        if not node.up:
            return
        if self.cost_frame > 0:
            # The frame leaves when the node's worker has written it: the network carries
            # it from that moment (one event for the write and the flight).
            self.net.send_down(conn, uid, size, fn, arg, node.stage.reserve(self.cost_frame))
        else:
            self.net.send_down(conn, uid, size, fn, arg)

    # ------------------------------------------------------------------------------------
    # requests from clients
    def login_arrives(self, arg) -> None:
        client, conn, token = arg
        node = self.nodes[conn.access]
        if not node.up:
            return
        self.rec.request(self.env._now, client.uid, "login", 0, self.header + LOGIN_BYTES)
        node.stage.submit(self._login_served, (node, client, conn, token), self.cost_login)

    def _login_served(self, job) -> None:
        node, client, conn, token = job
        decision = self.w.security.verify(token, client.uid)
        if not decision.accepted:
            # refused with its reason (an expired token: the SDK fetches a fresh one)
            self.w.security.rejected(str(decision.reason))
            self.frame_down(
                conn,
                client.uid,
                self.header + REPLY_BYTES,
                self.w.side.login_refused_arrives,
                (client, conn, str(decision.reason)),
            )
            return
        self.w.counters["logins"] += 1
        self.close(client.uid, clean=False)  # a stale connection of this user is replaced
        node.hold(conn)
        self.frame_down(
            conn,
            client.uid,
            self.header + REPLY_BYTES,
            self.w.side.login_reply_arrives,
            (client, conn),
        )
        self.w.logic.user_connected(client.uid, conn)

    def forged_arrives(self, kind: str, uid: int) -> None:
        """A frame of ``kind`` injected as ``uid`` on a connection the attacker opened
        without a login: the access node does the work of looking it up and drops it."""
        node = self.pick(self.w.clients[uid])
        if node is None:
            return
        fake = Connection(0, uid, node.node_id, "push", self.env._now)  # never registered
        has_session = node.conns.get(uid) is fake
        if not channel.session_allows(kind, has_session=has_session):
            self.w.counters["forged_rejected"] += 1
        if self.cost_request > 0:
            node.stage.reserve(self.cost_request)

    def hostile_login(self, kind: str, victim: int, token: str) -> None:
        """An attacker's login as ``victim`` with ``token`` (see
        :meth:`immodel.sim.security.Security.hostile_token`): verified like any login on
        the node's stage. An accepted one is counted (a bearer token is accepted from any
        device); the attacker's session itself is not simulated."""
        node = self.pick(self.w.clients[victim])
        if node is None:
            return
        node.stage.submit(self._hostile_served, (kind, victim, token), self.cost_login)

    def _hostile_served(self, job) -> None:
        kind, victim, token = job
        decision = self.w.security.verify(token, victim)
        if decision.accepted:
            self.w.counters["hostile_logins_accepted"] += 1
            if kind == "replay":
                self.w.counters["replays_accepted"] += 1
        else:
            self.w.security.rejected(str(decision.reason))

    def send_arrives(self, arg) -> None:
        client, conn, msg = arg
        # _request written out (each delivered push message brings three requests)
        node = self.nodes[conn.access]
        if not node.up or node.conns.get(client.uid) is not conn:
            return
        self.rec.request(self.env._now, client.uid, "send", 1, self.header + msg.payload_bytes)
        if self.check_uplink and not self._uplink_intact(client, conn, msg):
            return
        node.stage.submit(self._logic_send, (client, msg), self.cost_request)

    def _uplink_intact(self, client: Client, conn: Connection, msg) -> bool:
        """The on-path attacker's turn on a message going up. Encrypted: the record fails
        its check here, the frame is dropped and the connection reset (the SDK resends the
        message on its next connection, same id). Plaintext: the altered text is what the
        server stores and every recipient is shown."""
        sec = self.w.security
        first = msg.msg_id not in self._uplink_seen
        self._uplink_seen.add(msg.msg_id)
        if not sec.tampered():
            return True
        if channel.tamper_outcome(sec.channel) == "detected":
            self.w.counters["tamper_detected"] += 1
            self.w.side.drop_connection(client, conn)
            return False
        if first:  # a retry's altered text is not stored: the server dedups it
            self.w.side.altered_at_source.add(msg.msg_id)
        return True

    def ack_arrives(self, arg) -> None:
        client, conn, msg_ids = arg
        node = self.nodes[conn.access]
        if not node.up or node.conns.get(client.uid) is not conn:
            return  # _request written out
        size = self.header + ACK_BYTES_PER_ID * len(msg_ids)
        self.rec.request(self.env._now, client.uid, "ack", len(msg_ids), size)
        node.stage.submit(self._logic_ack, (client.uid, msg_ids), self.cost_request)

    def sync_arrives(self, arg) -> None:
        client, conn, request = arg
        node = self.nodes[conn.access]
        if not node.up or node.conns.get(client.uid) is not conn:
            return  # _request written out
        size = self.w.side.sync_request_bytes(request)
        row = self.rec.request(self.env._now, client.uid, "sync", 0, size)
        node.stage.submit(self._logic_sync, (client, conn, request, row), self.cost_request)

    def poll_arrives(self, arg) -> None:
        client, conn, seq, acks, hold = arg
        size = self.header + ACK_BYTES_PER_ID * len(acks)
        node, row = self._request(client, conn, "poll", 0, size)
        if node is not None:
            node.stage.submit(
                self.w.logic.poll_arrives, (client, conn, seq, row, acks, hold), self.cost_request
            )

    # ------------------------------------------------------------------------------------
    # held long polls
    def hold(self, client: Client, conn: Connection, seq: int, row: int, hold_s: float) -> None:
        """Park ``client``'s long poll until a message waits or ``hold_s`` passes."""
        node = self.nodes[conn.access]
        if not node.up or node.conns.get(client.uid) is not conn:
            return
        if self.cost_hold > 0:
            node.stage.reserve(self.cost_hold)
        expiry = self.w.deadlines.later(hold_s, self._hold_expires, (node, client, seq))
        node.held[client.uid] = (seq, row, conn, expiry)
        if len(node.held) > node.held_peak:
            node.held_peak = len(node.held)

    def _hold_expires(self, arg) -> None:
        node, client, seq = arg
        held = node.held.get(client.uid)
        if held is not None and held[0] == seq:
            self.answer_held(client.uid)

    def answer_held(self, uid: int) -> bool:
        """Answer ``uid``'s held poll now with what waits for it (False: none held)."""
        for node in self.nodes:
            held = node.held.pop(uid, None) if node.up else None
            if held is not None:
                seq, row, conn, expiry = held
                Deadlines.cancel(expiry)  # answered before the hold ran out
                self.w.logic.respond_poll(self.w.clients[uid], conn, seq, row)
                return True
        return False

    # ------------------------------------------------------------------------------------
    # heartbeats and faults
    def charge_heartbeats(self, interval_s: float) -> None:
        """Put one sampling interval's heartbeats on each node's stage (one job per node:
        heartbeats are counted from connected time, not simulated one by one)."""
        if self.cost_heartbeat <= 0:
            return
        beats_per_conn = interval_s / self.heartbeat_s
        for node in self.nodes:
            if not node.up:
                continue
            # counted in C: a tier of a million connections is counted every tick
            if node.push_conns:
                node.stage.reserve(self.cost_heartbeat * node.push_conns * beats_per_conn)

    def crash_node(self, node: AccessNode) -> None:
        """The access process dies: its connections are reset (clients learn at once)."""
        node.up = False
        node.crashes += 1
        self.w.counters["stage_jobs_lost"] += node.stage.crash()
        conns = list(node.conns.values())
        node.conns.clear()
        node.push_conns = 0
        node.held.clear()
        for conn in conns:
            conn.broken = True
            self.w.logic.user_disconnected(conn.uid)
            client = self.w.clients[conn.uid]
            self.w.side.reset((client, conn))

    def recover_node(self, node: AccessNode) -> None:
        """The access process is back: clients can connect to it again."""
        node.up = True


__all__ = ["AccessNode", "AccessTier"]

"""Clients: one device per user, its protocol machines, its connection and its transport.

A :class:`Client` holds the user's :class:`~immodel.protocol.sender.UplinkSender` and
:class:`~immodel.protocol.receiver.Receiver`, its presence (``online``: the app is open)
and the :class:`~immodel.sim.connection.Connection` it believes it has.
:class:`ClientSide` is the wiring around them, one object for all clients:

* **actions** — :meth:`ClientSide.act` carries out what the protocol machines return
  (show, ACK, sync, transmit, tell the app) and keeps one timer per client at the
  machines' next deadline;
* **connecting** — name resolution when ``security.dns`` asks for it
  (:mod:`immodel.sim.security`; a hijacked address fails the TLS identity check and is
  resolved again through HTTPDNS), handshake (TCP + TLS round trips on the network
  model), login with the client's UserSig at the access tier (an expired one is
  refreshed and the login repeated), backoff with full jitter after a failure; on login the
  sender resends what waited (no attempt is spent while disconnected) and the receiver
  syncs (``sync_on_reconnect``);
* **losing a connection** — at once when the other end resets it (a crashed access node,
  the transport giving up), at the next heartbeat or poll plus the request timeout when
  it goes silent (a crashed host, a partition, a broken NAT binding);
* **polling transports** — short polling (fixed rate or fixed delay) and long polling
  over the client's keep-alive connection; ACKs ride on the next poll.

Lifecycle of a client: offline ─► connecting ─► connected ─► (connection lost) ─►
connecting … ─► offline when the user closes the app (presence churn).
"""

from __future__ import annotations

import math
from typing import Any

from immodel.protocol import channel
from immodel.protocol.messages import (
    SendAck,
    SendFailed,
    SendSucceeded,
    Show,
    StartSync,
    Transmit,
)
from immodel.protocol.receiver import Receiver
from immodel.protocol.sender import UplinkSender
from immodel.sim.connection import Connection
from immodel.sim.kernel import later

PUSH, LONG_POLL, SHORT_POLL = "push", "long_poll", "short_poll"
# Sizes on the wire beyond the per-packet header (bytes).
REPLY_BYTES = 24
ACK_BYTES_PER_ID = 16
CURSOR_BYTES = 16
LOGIN_BYTES = 300  # carries the UserSig


class Client:
    """One user's device: its transport, its protocol machines and its connection.

    ``online`` is the user's presence (the app is open); ``conn`` is the connection the
    client believes it has (None: none; it is learned from the login reply).
    """

    __slots__ = (
        "backoff_s",
        "conn",
        "connect_started",
        "connected_since",
        "connected_total_s",
        "connecting",
        "device",
        "dns_hijacked",
        "dns_until",
        "kind",
        "login_serial",
        "online",
        "pending_acks",
        "phase",
        "poll_seq",
        "poll_timer",
        "receiver",
        "sender",
        "timer",
        "timer_at",
        "uid",
        "user",
    )

    def __init__(self, uid: int, kind: str, sender, receiver, phase: float) -> None:
        self.uid = uid
        self.kind = kind
        self.sender: UplinkSender = sender
        self.receiver: Receiver = receiver
        self.phase = phase  # in [0, 1): where in its heartbeat/poll cycle this client is
        self.online = False
        self.conn: Connection | None = None
        self.connecting = False
        self.login_serial = 0
        self.backoff_s = 0.0
        self.timer_at: float | None = None
        self.timer = None  # the armed protocol timer (a kernel.Call, to cancel)
        self.poll_timer = None  # the current poll's timeout
        self.pending_acks: list | None = None  # ACKs waiting to ride on the next poll
        self.poll_seq = 0
        self.connected_since = math.nan
        self.connected_total_s = 0.0
        self.connect_started = math.nan  # when the current connect began (for its latency)
        self.dns_until = -math.inf  # the cached DNS answer is good until then
        self.dns_hijacked = False  # … and points at an attacker
        # With several devices per user (immodel.sim.devices) ``uid`` is the device's
        # endpoint id; ``user`` is whose device it is and ``device`` its kind.
        self.user = uid
        self.device = "phone"

    @property
    def conn_id(self) -> int:
        """The id of the connection the client believes it has (0: none)."""
        return self.conn.conn_id if self.conn is not None else 0

    @property
    def mode(self) -> str:
        """How the server hands it messages: "push" or "poll"."""
        return PUSH if self.kind == PUSH else "poll"


class ClientSide:
    """The client half of the world: actions, connecting, detection, polling loops.

    ``world`` gives the shared run state (clock, scenario, streams, records, network) and
    the two server tiers; this class never makes a protocol decision of its own.
    """

    def __init__(self, world: Any) -> None:
        sc = world.sc
        self.w = world
        self.env = world.env
        self.rec = world.rec
        self.net = world.net
        self.deadlines = world.deadlines
        self.header = sc["network.header_bytes"]
        self.batch_max = sc["transport.batch_max"]
        self.request_timeout_s = sc["transport.request_timeout_s"]
        self.poll_interval_s = sc["transport.poll_interval_s"]
        self.hold_s = sc["transport.long_poll_hold_s"]
        self.heartbeat_s = sc["transport.heartbeat_s"]
        self.fixed_delay = sc["transport.poll_schedule"] == "fixed_delay"
        self.handshake_rtts = sc["transport.handshake_rtts"]
        self.reconnect_base_s = sc["transport.reconnect_base_s"]
        self.reconnect_max_s = sc["transport.reconnect_max_s"]
        self.payload = sc["workload.payload_bytes"]
        self._serial = 0
        self.dns_mode = sc["security.dns"]
        # frames are looked at only when an attacker can be on the path
        self.check_frames = sc["security.tamper_prob"] > 0 or self.dns_mode != "none"
        self.altered: set[tuple[int, str]] = set()  # (uid, msg_id) altered, not yet shown
        # messages altered on their way up (plaintext): stored so, shown so to everyone
        self.altered_at_source: set[str] = set()
        # bound once, not a bound method per timer; the access tier's handlers are bound
        # by bind_access once it exists (it is built after this side)
        self._client_timer_cb = self._client_timer
        self._send_arrives = self._ack_arrives = self._sync_arrives = None

    def bind_access(self, access) -> None:
        """Bind the access tier's request handlers once (the world builds it after this
        side): a bound method built per request is an allocation per request."""
        self._send_arrives = access.send_arrives
        self._ack_arrives = access.ack_arrives
        self._sync_arrives = access.sync_arrives

    # ------------------------------------------------------------------------------------
    # protocol actions
    def act(self, client: Client, actions: list, repair: str = "") -> None:
        """Carry out a protocol machine's actions for ``client``.

        ``repair`` names the mechanism that brought the copies being shown when it is not
        the first attempt ("retransmit", "offline_queue"); a sync's own trigger is
        carried by its :class:`Show`.
        """
        now = self.env._now
        rec = self.rec
        for a in actions:
            t = type(a)
            if t is Show:
                item = a.item
                altered = False
                if self.altered:  # copies an on-path attacker changed (plaintext only)
                    key = (client.uid, item.message.msg_id)
                    if key in self.altered:
                        self.altered.discard(key)
                        altered = True
                if self.altered_at_source and item.message.msg_id in self.altered_at_source:
                    altered = True
                if altered:
                    self.w.counters["tampered_deliveries"] += 1
                if a.via == "sync":
                    rec.shown(
                        now,
                        item.message,
                        item.order_key,
                        client.uid,
                        "sync",
                        "sync_" + a.trigger,
                        altered,
                    )
                else:
                    via = PUSH if client.kind == PUSH else "poll"
                    rec.shown(now, item.message, item.order_key, client.uid, via, repair, altered)
            elif t is SendAck:
                if client.kind == PUSH:
                    size = self.header + ACK_BYTES_PER_ID * len(a.msg_ids)
                    self.net.send_up(
                        client.conn,
                        client.uid,
                        size,
                        self._ack_arrives,
                        (client, client.conn, a.msg_ids),
                    )
                else:
                    if client.pending_acks is None:
                        client.pending_acks = []
                        if self.w.idle is not None:  # the ACK needs the client's own poll
                            self.w.idle.ack_waits(client)
                    client.pending_acks.extend(a.msg_ids)
            elif t is StartSync:
                request = a.request
                self.w.counters["sync_pages"] += 1
                size = self.sync_request_bytes(request)
                self.w.sync_bytes += size
                self.net.send_up(
                    client.conn,
                    client.uid,
                    size,
                    self._sync_arrives,
                    (client, client.conn, request),
                )
            elif t is Transmit:
                msg = a.message
                if a.attempt > 1:
                    rec.set_attempts(msg.msg_id, a.attempt)
                size = self.header + msg.payload_bytes
                if client.conn is not None and client.conn.exposed:
                    self.w.counters["exposed_messages"] += 1
                self.net.send_up(
                    client.conn,
                    client.uid,
                    size,
                    self._send_arrives,
                    (client, client.conn, msg),
                )
            elif t is SendSucceeded:
                m = rec.outcome(a.msg_id, now)
                # Our own stored message: a group seq that may be the gap holding later
                # copies back, or a 1:1 copy the next sync pages need not carry.
                released = client.receiver.note_own(
                    m.conversation, a.order_key, now, msg_id=m.msg_id, is_group=m.is_group
                )
                if released:
                    self.act(client, released)
            elif t is SendFailed:
                rec.outcome(a.msg_id, now, a.reason)
        self.arm(client)

    def sync_request_bytes(self, request) -> int:
        """A sync request on the wire: cursors, and the ids held or merged at a cursor."""
        ids = len(request.held) + len(request.merged_at_cursor)
        return self.header + CURSOR_BYTES * (1 + len(request.cursors)) + ACK_BYTES_PER_ID * ids

    def arm(self, client: Client) -> None:
        """Make sure a timer fires at the client's next protocol deadline."""
        d1 = client.sender.next_deadline()
        d2 = client.receiver.next_deadline()
        if d1 is None:
            deadline = d2
        elif d2 is None:
            deadline = d1
        else:
            deadline = min(d1, d2)
        if deadline == client.timer_at:
            return
        # Re-armed whenever the next deadline moves, so that a timer only ever fires when
        # something is due: the usual deadline is cleared by its answer long before.
        if client.timer is not None:
            self.deadlines.cancel(client.timer)
        client.timer_at = deadline
        client.timer = (
            None if deadline is None else self.deadlines.at(deadline, self._client_timer_cb, client)
        )

    def _client_timer(self, client: Client) -> None:
        now = self.env._now
        if client.timer_at is None or client.timer_at > now:
            return  # superseded (not reached with every re-arm cancelling the last timer)
        client.timer_at = None
        client.timer = None
        actions = client.sender.handle_timeout(now)
        actions.extend(client.receiver.handle_timeout(now))
        self.act(client, actions)

    def submit(self, client: Client, conv: str, is_group: bool, recipients, now: float) -> None:
        """The user's app submits a message (sent now, or when connected again)."""
        msg, actions = client.sender.submit(
            conversation=conv, is_group=is_group, now=now, payload_bytes=self.payload
        )
        self.rec.sent(now, msg, recipients)
        self.act(client, actions)

    # ------------------------------------------------------------------------------------
    # arrivals from the access tier
    def reply_arrives(self, arg) -> None:
        client, conn, reply = arg
        if client.conn is not conn:
            return  # the connection it came on is gone
        self.act(client, client.sender.handle_reply(reply, self.env._now))

    def _frame_intact(self, client: Client, conn: Connection, items) -> bool:
        """The on-path attacker's turn on a downlink frame carrying ``items`` (stored
        messages: a push, a poll answer, a sync page). False when it altered a message on
        the encrypted channel: the frame is dropped and the connection reset, so the
        message comes again by the normal repairs. On plaintext an altered copy is
        accepted (remembered until it is shown)."""
        sec = self.w.security
        if conn.exposed:
            self.w.counters["exposed_messages"] += len(items)
        for item in items:
            if not sec.tampered():
                continue
            if channel.tamper_outcome(sec.channel) == "detected":
                self.w.counters["tamper_detected"] += 1
                self.drop_connection(client, conn)
                return False
            self.altered.add((client.uid, item.message.msg_id))
        return True

    def drop_connection(self, client: Client, conn: Connection) -> None:
        """A record that fails its integrity check ends the connection at both ends (TLS
        sends a fatal alert): the client reconnects and the normal repairs follow."""
        if self.w.access.serves(conn):
            self.w.access.close(conn.uid, clean=True)
        self.reset((client, conn))

    def push_arrives(self, arg) -> None:
        client, conn, d = arg
        if client.conn is not conn:
            return  # the connection it was sent on is gone
        if self.check_frames and not self._frame_intact(client, conn, (d.item,)):
            return
        repair = "retransmit" if d.attempt > 1 else ""
        self.act(client, client.receiver.handle_push(d.item, self.env._now), repair)

    def login_push_arrives(self, arg) -> None:
        """A message from the offline queue, pushed right after login."""
        client, conn, d = arg
        if client.conn is not conn:
            return
        if self.check_frames and not self._frame_intact(client, conn, (d.item,)):
            return
        self.act(client, client.receiver.handle_push(d.item, self.env._now), "offline_queue")

    def sync_response_arrives(self, arg) -> None:
        client, conn, response = arg
        if client.conn is not conn:
            return
        items = response.items
        if self.check_frames and items and not self._frame_intact(client, conn, items):
            return
        self.act(client, client.receiver.handle_sync_response(response, self.env._now))

    # ------------------------------------------------------------------------------------
    # connecting
    def attach(self, client: Client) -> None:
        """Connect ``client`` at once (users online at t = 0 start connected)."""
        conn = self.w.access.open(client)
        self._connected(client, conn)
        if client.kind != PUSH:
            self.start_polling(client, at_start=True)

    def connect(self, client: Client) -> None:
        """Open a connection: handshake round trips, then login with a UserSig."""
        if not client.online or client.connecting or client.conn is not None:
            return
        client.connecting = True
        if math.isnan(client.connect_started):
            client.connect_started = self.env._now
        if self.dns_mode == "none":
            self._handshake(client)
        else:
            self.w.security.resolve(client, self._resolved)

    def _resolved(self, arg) -> None:
        client, _hijacked = arg
        if client.connecting:
            self._handshake(client)

    def _handshake(self, client: Client) -> None:
        delay = self.net.handshake_s(client.uid, self.handshake_rtts)
        if delay is None:
            later(self.env, self.request_timeout_s, self._connect_failed, client)
            return
        if self.dns_mode != "none":
            later(self.env, delay, self._handshake_done, client)
        else:
            later(self.env, delay, self._send_login, client)

    def _handshake_done(self, client: Client) -> None:
        """The handshake reached the resolved address: the protocol says whether it was
        the service (see :func:`immodel.protocol.channel.handshake_outcome`)."""
        if not client.connecting:
            return
        sec = self.w.security
        outcome = sec.handshake(sec.channel, client.dns_hijacked)
        if outcome == "identity_failed":
            # The certificate does not verify: an attacker's address. Real SDKs drop it
            # and resolve again through HTTPDNS at once.
            self.w.counters["hijacked_connections"] += 1
            sec.forget_address(client)
            sec.resolve(client, self._resolved, via="httpdns")
            return
        if outcome == "attacker":
            self.w.counters["hijacked_connections"] += 1
        self._send_login(client)

    def _send_login(self, client: Client) -> None:
        if not client.connecting:
            return
        node = self.w.access.pick(client)
        if node is None:  # no access node answers: the connect attempt fails
            later(self.env, self.request_timeout_s, self._connect_failed, client)
            return
        conn = self.w.access.new_connection(client, node)
        # a plaintext connection through a hijacked address: the attacker relays it
        conn.exposed = client.dns_hijacked and self.dns_mode != "none"
        token = self.w.security.token(client.uid)
        self._serial += 1
        client.login_serial = self._serial
        self.net.send_up(
            conn,
            client.uid,
            self.header + LOGIN_BYTES,
            self.w.access.login_arrives,
            (client, conn, token),
        )
        later(self.env, self.request_timeout_s, self._login_timeout, (client, self._serial))

    def _login_timeout(self, arg) -> None:
        client, serial = arg
        if client.connecting and client.login_serial == serial:
            self._connect_failed(client)

    def _connect_failed(self, client: Client) -> None:
        self.w.counters["login_failures"] += 1
        client.connecting = False
        if not client.online:
            client.connect_started = math.nan
            return
        client.backoff_s = min(
            self.reconnect_max_s, max(self.reconnect_base_s, client.backoff_s * 2.0)
        )
        # Full jitter: spreads a crowd of reconnecting clients over the backoff window.
        wait = self.w.streams["reconnect"].uniform() * client.backoff_s
        later(self.env, wait, self._reconnect, client)

    def _reconnect(self, client: Client) -> None:
        self.connect(client)

    def login_reply_arrives(self, arg) -> None:
        client, conn = arg
        if not client.connecting or not client.online or conn.broken:
            return
        if not self.w.access.serves(conn):
            return
        now = self.env._now
        client.connecting = False
        client.backoff_s = 0.0
        if not math.isnan(client.connect_started):
            self.w.security.connect_latency_s.append(now - client.connect_started)
            client.connect_started = math.nan
        self._connected(client, conn)
        actions = client.sender.handle_connected(now)
        actions.extend(client.receiver.handle_connected(now))
        if client.kind != PUSH:
            self.start_polling(client)
        self.act(client, actions)

    def _connected(self, client: Client, conn: Connection) -> None:
        client.conn = conn
        client.connected_since = self.env._now
        self.w.reach.connected(client.uid, self.env._now)  # lost pairs: awaiting login?
        client.sender.connected = True
        self.w.arm_break(conn)
        self.w.security.watch_expiry(client, conn)

    def login_refused_arrives(self, arg) -> None:
        """The access tier refused the login with ``reason``: an expired UserSig is
        fetched anew and the login repeated (a relogin); any other reason is a failed
        connect attempt (backoff)."""
        client, _conn, reason = arg
        if not client.connecting or not client.online:
            return
        self._serial += 1  # the login timeout of this attempt no longer applies
        client.login_serial = self._serial
        if reason == "auth_expired":
            self.w.security.refresh(client, self._send_login)
        else:
            self._connect_failed(client)

    def detach(self, client: Client) -> None:
        """The client learns its connection is gone: what it sends waits for the next."""
        if self.w.idle is not None:
            self.w.idle.connection_lost(client, "gone")
        now = self.env._now
        if client.conn is not None and not math.isnan(client.connected_since):
            client.connected_total_s += now - client.connected_since
        client.connected_since = math.nan
        client.conn = None
        client.poll_seq += 1  # any poll in flight is now stale
        client.pending_acks = None  # ACKs that waited for a poll go with the connection
        client.sender.handle_disconnect(now)
        client.receiver.disconnect()

    def reset(self, arg) -> None:
        """The other end reset ``conn`` (a crashed process, the transport gave up): the
        client knows at once and reconnects after a short jittered wait."""
        client, conn = arg
        if client.conn is not conn:
            return
        self.detach(client)
        client.connecting = False
        if client.online:
            wait = self.w.streams["reconnect"].uniform() * self.reconnect_base_s
            later(self.env, wait, self._reconnect, client)

    def detect_dead_connection(self, client: Client) -> None:
        """Schedule when ``client`` notices that its connection went silent: its next
        heartbeat (push) or poll, unanswered for ``request_timeout_s``."""
        conn = client.conn
        if conn is None:
            return
        if self.w.idle is not None:  # its polls go into the silent connection again
            self.w.idle.connection_lost(client, "broken")
        t_notice = self.next_phase_time(client.phase, self.detect_period(client))
        later(
            self.env,
            t_notice + self.request_timeout_s - self.env._now,
            self._notice_dead,
            (client, conn),
        )

    def detect_period(self, client: Client) -> float:
        if client.kind == PUSH:
            return self.heartbeat_s
        if client.kind == SHORT_POLL:
            return self.poll_interval_s
        return self.hold_s

    def _notice_dead(self, arg) -> None:
        client, conn = arg
        if client.conn is not conn:
            return
        if self.w.access.serves(conn) and not conn.broken:
            return  # still alive after all
        self.detach(client)
        self.connect(client)

    # ------------------------------------------------------------------------------------
    # polling transports
    def start_polling(self, client: Client, *, at_start: bool = False) -> None:
        """Begin a polling client's request loop (after a login, or at t = 0).

        Clients connected at the start of the run begin where a population that has been
        polling for a while would be, spread by their phase; starting them all alike would
        keep the whole population in lockstep for many cycles. A long-polling client has a
        poll held at the server, with a residual hold of phase × H; a fixed-delay short
        poller is waiting out its interval, for phase × (T + 2d).
        """
        if client.kind == SHORT_POLL and not self.fixed_delay:
            # Fixed rate: polls at phase·T + k·T, whatever the responses do.
            t_next = self.next_phase_time(client.phase, self.poll_interval_s)
            later(self.env, t_next - self.env._now, self._poll_tick, (client, client.conn))
        elif at_start and client.kind == LONG_POLL:
            self.poll(client, hold_s=client.phase * self.hold_s)
        elif at_start:
            cycle = self.poll_interval_s + 2.0 * self.w.one_way_mean_s
            later(self.env, client.phase * cycle, self._poll_after_delay, (client, client.conn))
        else:
            self.poll(client)

    def next_phase_time(self, phase: float, period: float) -> float:
        now = self.env._now
        offset = phase * period
        k = math.floor((now - offset) / period) + 1
        return offset + k * period

    def _poll_tick(self, arg) -> None:
        client, conn = arg
        if client.conn is not conn:
            return
        idle = self.w.idle
        if idle is not None and idle.join(client, conn):
            return  # nothing waits for it: its polls are its cohort's (immodel.sim.idle_poll)
        self.poll(client)
        # a slot, not the heap: ten thousand pollers keep the heap ten times smaller
        self.deadlines.later(self.poll_interval_s, self._poll_tick, arg, held=False)

    def poll(self, client: Client, hold_s: float | None = None) -> None:
        """Send one poll (carrying any ACKs that wait for a ride); a long poll asks the
        server to hold it ``hold_s`` (default ``transport.long_poll_hold_s``)."""
        client.poll_seq += 1
        acks = client.pending_acks or ()
        client.pending_acks = None
        size = self.header + ACK_BYTES_PER_ID * len(acks)
        seq = client.poll_seq
        hold = self.hold_s if hold_s is None else hold_s
        self.net.send_up(
            client.conn,
            client.uid,
            size,
            self.w.access.poll_arrives,
            (client, client.conn, seq, tuple(acks), hold),
        )
        if client.kind == LONG_POLL or self.fixed_delay:
            wait = self.request_timeout_s + (hold if client.kind == LONG_POLL else 0.0)
            self.deadlines.cancel(client.poll_timer)  # an earlier poll's timeout is moot
            client.poll_timer = self.deadlines.later(wait, self._poll_timeout, (client, seq))

    def _poll_timeout(self, arg) -> None:
        client, seq = arg
        if client.poll_seq == seq and client.conn is not None:
            self.poll(client)  # no response: ask again (the ACKs it carried are resent)

    def poll_response_arrives(self, arg) -> None:
        client, conn, seq, delivers = arg
        if client.conn is not conn:
            return
        items = [d.item for d in delivers] if self.check_frames else ()
        if items and not self._frame_intact(client, conn, items):
            return
        now = self.env._now
        for d in delivers:
            repair = "retransmit" if d.attempt > 1 else ""
            self.act(client, client.receiver.handle_push(d.item, now), repair)
        if seq == client.poll_seq:
            if client.kind == LONG_POLL:
                self.poll(client)
            elif self.fixed_delay:
                client.poll_seq += 1  # the timeout of this poll no longer applies
                self.deadlines.cancel(client.poll_timer)
                client.poll_timer = None
                later(self.env, self.poll_interval_s, self._poll_after_delay, (client, client.conn))

    def _poll_after_delay(self, arg) -> None:
        client, conn = arg
        if client.conn is conn:
            self.poll(client)


__all__ = ["LONG_POLL", "PUSH", "SHORT_POLL", "Client", "ClientSide"]

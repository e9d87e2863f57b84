"""The network between clients and the access tier: latency, loss, bytes, and the two models.

``network.model`` chooses what a lost packet means:

* ``stream`` (the default) — what a real long connection (TCP, or a QUIC stream) gives
  the application: every :class:`~immodel.sim.connection.Connection` delivers in order in
  each direction, and a lost segment is resent by the transport itself after its
  retransmission timeout (RTO), computed as RFC 6298 does (smoothed RTT and variance,
  floor ``network.rto_min_ms``, ceiling ``network.rto_max_ms``, doubling on each repeated
  loss of the segment; Karn's rule: no RTT sample from a retransmitted segment).
  Everything behind a lost segment on that connection waits for it (head-of-line
  blocking). Loss therefore becomes delay; data is lost only when a connection breaks —
  the transport gives up after 15 retransmissions (Linux's ``tcp_retries2``), a break
  (``network.break_rate_per_hour``), a partition that outlasts the heartbeats, an access
  node that dies. What was in flight on a broken connection is what the application's
  mechanisms (retry, pending-ACK, sync) must repair.
* ``datagram`` — loss and latency per application packet, with no transport underneath:
  a lost packet is gone and only the protocol's own mechanisms recover it. Packets draw
  their latencies independently, so a variable latency reorders them. This is the model
  the queueing and ARQ theory of :mod:`immodel.analysis.theory` is written for, and the
  answer to "what if the application saw every loss".

Each direction (uplink: client → server, downlink: server → client) is a :class:`Link`
that decides whether one transmission is lost: independently with the link's loss, or —
with the Gilbert–Elliott option — with the loss of the sending user's current channel
state (good: the configured loss; bad: ``burst_loss``), the state flipping per
transmission (per segment in stream mode). Loss faults (``loss_burst``, ``partition``)
override the loss for a while; in stream mode a retransmission after the fault ends sees
the normal loss again.

Latency distributions (``network.latency_ms``): a number (constant), or a table —
``lognormal`` given ``median`` and ``p99`` (σ = ln(p99/median) / z₀.₉₉), ``exponential``
given ``mean``, ``empirical`` given ``samples`` (drawn uniformly), ``constant`` given
``value``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heappush
from typing import Any

from simpy.events import NORMAL

from immodel.sim.connection import Connection
from immodel.sim.kernel import FREE_CALLS, Call, at_time, later
from immodel.sim.network_constants import (
    CLOCK_GRANULARITY_S,
    INITIAL_RTO_S,
    MAX_RETRANSMISSIONS,
)
from immodel.sim.rng import Stream, Streams

Z_99 = 2.3263478740408408  # standard normal 0.99 quantile


def _run_pair(frames: tuple) -> None:
    """Two frames that arrive at one instant, in the order they were sent."""
    fn1, arg1, fn2, arg2 = frames
    fn1(arg1)
    fn2(arg2)


def in_order_arrival_s(now: float, arrive: float, clear: float) -> float:
    """When a segment that reaches the far end at ``arrive`` is handed to the
    application, on a connection whose previous segment was handed over at ``clear``:
    in order, nothing before what was sent earlier. The result is an event time
    ``now + delay`` as the queue will hold it, nudged up until it is not below ``clear``,
    so that rounding can never put a later segment a hair before an earlier one."""
    delay = (arrive if arrive > clear else clear) - now
    while now + delay < clear:
        delay = math.nextafter(delay, math.inf)
    return now + delay


def latency_sampler(spec: Any, stream: Stream) -> Callable[[], float]:
    """A function returning one-way latency draws in **seconds** for ``spec`` (ms)."""
    if isinstance(spec, int | float):
        value = float(spec) / 1000.0
        return lambda: value
    dist = spec["dist"]
    if dist == "constant":
        value = spec["value"] / 1000.0
        return lambda: value
    if dist == "exponential":
        mean = spec["mean"] / 1000.0
        return lambda: stream.exponential(mean)
    if dist == "lognormal":
        mu = math.log(spec["median"] / 1000.0)
        sigma = math.log(spec["p99"] / spec["median"]) / Z_99
        exp, normal = math.exp, stream.normal
        return lambda: exp(mu + sigma * normal())
    samples = [s / 1000.0 for s in spec["samples"]]
    n, below = len(samples), stream.below
    return lambda: samples[below(n)]


def latency_constant_s(spec: Any) -> float | None:
    """The one value :func:`latency_sampler` returns for a constant ``spec`` (None: the
    latency is drawn)."""
    if isinstance(spec, int | float):
        return float(spec) / 1000.0
    if spec["dist"] == "constant":
        return spec["value"] / 1000.0
    return None


def latency_mean_s(spec: Any) -> float:
    """The mean of a latency spec, in seconds (for timeouts and theory)."""
    if isinstance(spec, int | float):
        return float(spec) / 1000.0
    dist = spec["dist"]
    if dist == "constant":
        return spec["value"] / 1000.0
    if dist == "exponential":
        return spec["mean"] / 1000.0
    if dist == "lognormal":
        sigma = math.log(spec["p99"] / spec["median"]) / Z_99
        return spec["median"] / 1000.0 * math.exp(sigma * sigma / 2)
    return sum(spec["samples"]) / len(spec["samples"]) / 1000.0


class Link:
    """One direction of the client ↔ access-layer network, for all users.

    :meth:`lost` decides a packet's fate; :meth:`delay` draws its latency. ``override``
    (set by loss faults) replaces the loss probability for everyone while it is not None;
    ``blocked`` users (a partition) lose every packet.
    """

    __slots__ = (
        "_bad",
        "_loss_stream",
        "blocked",
        "blocked_until",
        "burst_enter",
        "burst_exit",
        "burst_loss",
        "bytes",
        "delay",
        "loss",
        "override",
        "override_until",
        "packets",
        "packets_lost",
    )

    def __init__(
        self,
        *,
        users: int,
        loss: float,
        latency: Callable[[], float],
        loss_stream: Stream,
        burst_enter: float = 0.0,
        burst_exit: float = 0.3,
        burst_loss: float = 0.5,
    ) -> None:
        self.loss = loss
        self.delay = latency
        self._loss_stream = loss_stream
        self.burst_enter = burst_enter
        self.burst_exit = burst_exit
        self.burst_loss = burst_loss
        self._bad = bytearray(users) if burst_enter > 0 else None
        self.override: float | None = None
        self.override_until = math.inf  # when the current override is due to change
        self.blocked: set[int] = set()
        self.blocked_until: dict[int, float] = {}  # a blocked user's partition end
        self.packets = 0
        self.packets_lost = 0
        self.bytes = 0

    def lost(self, user: int, size_bytes: int) -> bool:
        """Send one packet of ``user`` now: True if the network drops it (every fault
        acting now applies)."""
        return self.lost_at(user, size_bytes, -math.inf)

    def lost_at(self, user: int, size_bytes: int, t: float) -> bool:
        """Send one transmission of ``user`` at time ``t`` ≥ now (a retransmission the
        stream schedules): True if the network drops it. A partition or a loss burst that
        has ended by ``t`` no longer applies."""
        self.packets += 1
        self.bytes += size_bytes
        if self.blocked and user in self.blocked and t < self.blocked_until.get(user, math.inf):
            self.packets_lost += 1
            return True
        p = self.loss if self.override is None or t >= self.override_until else self.override
        bad = self._bad
        if bad is not None:
            u = self._loss_stream.uniform()
            if bad[user]:
                if u < self.burst_exit:
                    bad[user] = 0
                else:
                    p = self.burst_loss
            elif u < self.burst_enter:
                bad[user] = 1
                p = self.burst_loss
        if p <= 0.0:
            return False
        if p >= 1.0 or self._loss_stream.uniform() < p:
            self.packets_lost += 1
            return True
        return False


class Network:
    """Both links and the chosen model: :meth:`send_up` and :meth:`send_down` carry one
    application packet (a frame) of a client's connection and call ``fn(arg)`` when it
    arrives, or never.

    ``on_give_up(conn)`` is called (stream model) when the transport gives up on a
    connection after :data:`MAX_RETRANSMISSIONS` of one segment: both ends learn it from
    their socket at once.

    Two uplink frames sent one right after the other that arrive at the same instant
    (a push's ACK and its receipt sync, on a lossless network with a constant latency)
    share one event, the second run right after the first: the event queue would have
    popped them back to back anyway (``coalesced`` counts the frames that rode along).
    """

    __slots__ = (
        "_constant_latency_s",
        "_fast_latency_s",
        "_return_latency",
        "_up_call",
        "_up_eid",
        "_up_t",
        "coalesced",
        "down",
        "env",
        "lossless",
        "on_give_up",
        "rto_max_s",
        "rto_min_s",
        "segments_retransmitted",
        "stream",
        "up",
    )

    def __init__(self, env, sc, streams: Streams) -> None:
        self.env = env
        latency = latency_sampler(sc["network.latency_ms"], streams["latency"])
        burst = dict(
            burst_enter=sc["network.burst_enter_prob"],
            burst_exit=sc["network.burst_exit_prob"],
            burst_loss=sc["network.burst_loss"],
        )
        n = sc["workload.users"]
        self.up = Link(
            users=n,
            loss=sc["network.uplink_loss"],
            latency=latency,
            loss_stream=streams["uplink"],
            **burst,
        )
        self.down = Link(
            users=n,
            loss=sc["network.downlink_loss"],
            latency=latency,
            loss_stream=streams["downlink"],
            **burst,
        )
        self.stream = sc["network.model"] == "stream"
        # a constant latency (the default) is read, not called for, per segment
        self._constant_latency_s = latency_constant_s(sc["network.latency_ms"])
        # The ACK of a segment travels back on the other direction: its own latency draw,
        # from its own stream, so that the stream model leaves the others untouched.
        self._return_latency = latency_sampler(sc["network.latency_ms"], streams["rtt"])
        self.rto_min_s = sc["network.rto_min_ms"] / 1000.0
        self.rto_max_s = sc["network.rto_max_ms"] / 1000.0
        self.segments_retransmitted = 0
        self.on_give_up = None
        # The last uplink arrival scheduled (its event id, time and Call), for a frame that
        # arrives at the same instant right behind it to share its event; ``coalesced``
        # counts the frames that did (they are no events of their own).
        self._up_eid = -2
        self._up_t = -math.inf
        self._up_call: Call | None = None
        self.coalesced = 0
        # No packet can be lost in this run (no loss, no bursts, no partition or loss-burst
        # fault): a segment is then never retransmitted, so the RTO estimate — whose only
        # use is to time retransmissions — is not kept, and no loss draw is made.
        self.lossless = (
            self.up.loss <= 0.0
            and self.down.loss <= 0.0
            and burst["burst_enter"] <= 0.0
            and not any(f["kind"] in ("partition", "loss_burst") for f in sc["faults"])
        )
        # The common case — the stream model, lossless, a constant latency — takes a short
        # path in send_up and send_down (no loss draw, no RTO; the in-order rule is
        # _segment's, in_order_arrival_s): its latency (None: not this case).
        self._fast_latency_s = self._constant_latency_s if self.stream and self.lossless else None

    def send_up(self, conn: Connection | None, uid: int, size: int, fn, arg) -> None:
        """A frame from ``uid``'s client to its access node on ``conn``."""
        latency_s = self._fast_latency_s
        if latency_s is not None and conn is not None and not conn.broken:
            # _segment's lossless path without its draws: every request of a run comes here
            link = self.up
            link.packets += 1
            link.bytes += size
            now = self.env._now
            t = conn.clear_up = in_order_arrival_s(now, now + latency_s, conn.clear_up)
            if fn is not None:
                env = self.env
                eid = next(env._eid)
                if eid == self._up_eid + 1 and t == self._up_t and t > now:
                    # The frame sent just before — nothing has been scheduled since — arrives
                    # at this same instant, still ahead (so it has not run): the queue would
                    # pop the two back to back (equal times, consecutive ids), so this one
                    # rides on that event, run right after it (a push's ACK and receipt sync).
                    last = self._up_call
                    last.arg = (last.fn, last.arg, fn, arg)
                    last.fn = _run_pair
                    self._up_eid = -2  # a pair takes no third
                    self.coalesced += 1
                    return
                try:
                    call = FREE_CALLS.pop()
                except IndexError:
                    call = Call(fn, arg)
                else:
                    call.fn = fn
                    call.arg = arg
                heappush(env._queue, (t, NORMAL, eid, call))
                self._up_eid = eid
                self._up_t = t
                self._up_call = call
            return
        if self.stream:
            self._segment(self.up, conn, uid, size, fn, arg, True)
        elif not self.up.lost(uid, size):
            later(self.env, self.up.delay(), fn, arg)

    def send_down(
        self, conn: Connection | None, uid: int, size: int, fn, arg, at: float | None = None
    ) -> None:
        """A frame from the access node to ``uid``'s client on ``conn``, leaving now or at
        ``at`` ≥ now (when the node's worker will have written it: the transmission is
        decided now, for that instant). ``fn`` None: a frame whose arrival changes
        nothing at the client — it is sent (counted, drawn, queued in order behind and
        ahead of the others) but its arrival is not an event."""
        latency_s = self._fast_latency_s
        if latency_s is not None and conn is not None and not conn.broken:
            # _segment's lossless path without its draws: every frame of a run comes here
            link = self.down
            link.packets += 1
            link.bytes += size
            now = self.env._now
            arrive = (now if at is None else at) + latency_s
            t = conn.clear_down = in_order_arrival_s(now, arrive, conn.clear_down)
            if fn is not None:
                at_time(self.env, t, fn, arg)
            return
        if self.stream:
            self._segment(self.down, conn, uid, size, fn, arg, False, at)
        elif at is None:
            if not self.down.lost(uid, size):
                delay = self.down.delay()
                if fn is not None:
                    later(self.env, delay, fn, arg)
        elif not self.down.lost_at(uid, size, at):
            now = self.env._now
            arrive = at + self.down.delay()
            if fn is not None:
                later(self.env, arrive - now, fn, arg)

    def _segment(
        self, link: Link, conn, uid: int, size: int, fn, arg, up: bool, at: float | None = None
    ) -> None:
        if conn is None or conn.broken:
            link.packets += 1
            link.bytes += size
            link.packets_lost += 1
            return  # nobody is listening on a broken connection: the data is gone
        now = self.env._now
        t = now if at is None else at
        if self.lossless:
            link.packets += 1
            link.bytes += size
            latency_s = self._constant_latency_s
            arrive = t + (link.delay() if latency_s is None else latency_s)
        else:
            rto = conn.rto_up if up else conn.rto_down
            tries = 0
            while link.lost_at(uid, size, t):
                tries += 1
                if tries > MAX_RETRANSMISSIONS:
                    conn.broken = True
                    if self.on_give_up is not None:
                        later(self.env, t - now, self.on_give_up, conn)
                    return
                t += rto
                rto = min(rto * 2.0, self.rto_max_s)
            self.segments_retransmitted += tries
            one_way = link.delay()
            arrive = t + one_way
            if tries == 0:  # Karn: only segments sent once give an RTT sample
                self._sample(conn, up, one_way + self._return_latency())
        if up:
            t = conn.clear_up = in_order_arrival_s(now, arrive, conn.clear_up)
        else:
            t = conn.clear_down = in_order_arrival_s(now, arrive, conn.clear_down)
        if fn is not None:
            at_time(self.env, t, fn, arg)

    def prime(self, conn: Connection) -> None:
        """A new connection's first RTT sample: the handshake's round trip (SYN, SYN-ACK)
        seeds both directions' estimators, as a real stack's would, so the 1 s initial
        RTO of RFC 6298 applies only to a handshake packet itself. Drawn from the
        ``rtt`` stream, so the stream model leaves the others untouched."""
        if self.stream and not self.lossless:
            rtt = self._return_latency() + self._return_latency()
            self._sample(conn, True, rtt)
            self._sample(conn, False, rtt)

    def _sample(self, conn: Connection, up: bool, rtt_s: float) -> None:
        """RFC 6298 section 2: update SRTT and RTTVAR with one sample, recompute the RTO."""
        if up:
            srtt, var = conn.srtt_up, conn.rttvar_up
        else:
            srtt, var = conn.srtt_down, conn.rttvar_down
        if srtt < 0.0:
            srtt, var = rtt_s, rtt_s / 2.0
        else:
            var = 0.75 * var + 0.25 * abs(srtt - rtt_s)
            srtt = 0.875 * srtt + 0.125 * rtt_s
        rto = srtt + max(CLOCK_GRANULARITY_S, 4.0 * var)
        rto = min(max(rto, self.rto_min_s), self.rto_max_s)
        if up:
            conn.srtt_up, conn.rttvar_up, conn.rto_up = srtt, var, rto
        else:
            conn.srtt_down, conn.rttvar_down, conn.rto_down = srtt, var, rto

    def handshake_s(self, uid: int, round_trips: int) -> float | None:
        """How long opening a connection takes (TCP + TLS: ``round_trips``), or None when
        it fails: in the stream model a lost handshake packet is resent after the
        initial RTO, doubling (Linux's ``tcp_syn_retries`` = 6); in the datagram model a
        lost packet fails the attempt (the client times out and tries again)."""
        up, down = self.up, self.down
        total = 0.0
        now = self.env._now
        for _ in range(round_trips):
            if not self.stream:
                if up.lost(uid, 0) or down.lost(uid, 0):
                    return None
                total += up.delay() + down.delay()
                continue
            rto = INITIAL_RTO_S
            for attempt in range(7):
                t = now + total
                if not up.lost_at(uid, 0, t) and not down.lost_at(uid, 0, t):
                    break
                if attempt == 6:
                    return None
                total += rto
                rto *= 2.0
            total += up.delay() + down.delay()
        return total

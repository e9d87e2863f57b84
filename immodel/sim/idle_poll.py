"""Idle pollers in bulk: fixed-rate short pollers with nothing waiting, counted in cohorts.

With ``transport.idle_poll_mode = "aggregated"`` a connected fixed-rate short poller
with nothing waiting for it is not simulated poll by poll. At its poll instant (its
phase · T + k·T, deterministic) it joins a **cohort**: the pollers of one access node,
one logic node and one poll-phase bin (:func:`bin_width_s`) are one count. The cohort's
polls are

* **counted exactly** — each member's poll instants while it is a member, those whose
  arrival (instant + the mean one-way latency) falls before the sending window's end
  (``idle_polls_window``) and the horizon (``idle_polls``); the summary adds them to
  ``requests_total``, ``requests_poll``, ``requests_per_s`` and the empty polls of
  ``empty_poll_fraction``, as heartbeats are counted, not listed in ``requests``;
* **charged** — once per bin and poll period, when its polls reach the access node on
  average, the bin's polls go on the stages as a few jobs: on the access node the
  request and the empty response frame (``server.access_request_ms`` +
  ``server.access_frame_ms`` each), on the logic node's ``poll`` stage
  ``server.poll_ms`` each (plus the timeline reads of read diffusion), split into one
  job per worker so that the work spreads over the workers as single polls would. The
  service time of a job of n polls is the sum of n service times: n × the mean when
  service is constant, else a Gamma draw with the sum's mean and variance, from the
  ``idle_poll`` stream (the law of the sum itself for the poll stage's exponential
  service; its first two moments for lognormal service and for an access job, which
  mixes request and frame costs). A bin is 1–50 ms of poll phases: wide enough for
  about two polls per worker when everyone idles and for no more than
  :data:`JOBS_PER_S` batch jobs per simulated second (:func:`bin_width_s`), so a job
  stands for polls that would have arrived within that much of each other; the network
  counts the polls' bytes and packets both ways.

A member **becomes an individual again** (and polls through the normal path from its
next poll instant, so its latency is what the exact mode gives) when

* a message waits for it on the server (:meth:`IdlePollCohorts.message_waits`, from the
  logic tier's fan-out). The member's last cohort poll may still be on its way: it is
  replayed with its own one-way latency draw (``idle_poll_latency`` stream) and the
  nominal service times of the access request and the poll (no queueing: its wait among
  the cohort's polls is not known) — a poll still in the network arrives through the
  normal path, one already in the access or poll stage goes on from there, and picks
  the message up as the exact mode's poll would;
* an ACK waits to ride on its next poll (a sync page showed it something);
* its connection goes: the app closes it or the access node resets it (``detach``), the
  access node forgets it (``close``), or it goes silent (a break: its polls are lost
  from the next instant on, as in the exact mode).

A poller whose connection answers nothing (every logic node down) stays a member: its
polls reach the access node and stop there, as in the exact mode. A failover moves the
members to the logic nodes their users now route to.

What is not modelled: loss (the key is refused on a network that can lose a packet), the
in-order constraint the members' empty frames put on their connection's other frames
(a frame sent right after an empty poll answer waits for it on the stream), and the
queueing of a replayed poll before the message was stored. The default ``exact``
creates none of this (``world.idle`` is None) and every record is as before.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np

from immodel.sim.clients import SHORT_POLL
from immodel.sim.kernel import at_time
from immodel.sim.network import latency_sampler

#: Narrowest and widest poll-phase bin (s): the polls of one bin are charged as one batch.
BIN_MIN_S = 0.001
BIN_MAX_S = 0.05
#: A bin is made wide enough for about this many polls per worker of a stage, so that a
#: batch is worth its events (one per worker), …
POLLS_PER_WORKER = 2
#: … and for at most this many batch jobs per second of simulated time (all groups).
JOBS_PER_S = 5_000

# why a member leaves its cohort: a message or an ACK waits; the access node forgot its
# connection (its polls now stop there); the connection broke silently (its polls are
# lost on the way); the client let go of its connection (it polls no more)
MESSAGE, ACK, CLOSED, BROKEN, GONE = "message", "ack", "closed", "broken", "gone"
# the parts of one poll's cost: the request at the access node (and its uplink bytes),
# the poll stage on the logic node, the response frame (and its downlink bytes)
REQ, LOGIC, RESP = 0, 1, 2
_ALL = (True, True, True)
_NONE = (False, False, False)


def enabled(sc: Any) -> bool:
    """Does this scenario aggregate idle pollers (some fixed-rate short pollers)?"""
    if sc["transport.idle_poll_mode"] != "aggregated":
        return False
    if sc["transport.poll_schedule"] != "fixed_rate":
        return False
    if sc["transport.kind"] == SHORT_POLL:
        return True
    return any(e["transport"] == SHORT_POLL for e in sc["workload.devices"].values())


def bin_width_s(sc: Any, clients: list) -> float:
    """The width of a poll-phase bin: about :data:`POLLS_PER_WORKER` polls per worker
    of a stage per batch when every short poller idles, and no more than
    :data:`JOBS_PER_S` batch jobs a second, within [:data:`BIN_MIN_S`,
    :data:`BIN_MAX_S`] and at most the poll interval."""
    pollers = sum(1 for c in clients if c.kind == SHORT_POLL)
    groups = sc["server.nodes"] * sc["server.access_nodes"]
    workers = max(sc["server.workers"], sc["server.access_workers"])
    rate = pollers / sc["transport.poll_interval_s"] / groups  # polls/s of one group
    width = POLLS_PER_WORKER * workers / rate if rate > 0 else BIN_MAX_S
    jobs_per_batch = groups * (sc["server.workers"] + sc["server.access_workers"])
    width = max(width, jobs_per_batch / JOBS_PER_S)
    return min(max(width, BIN_MIN_S), BIN_MAX_S, sc["transport.poll_interval_s"])


class _Fixed:
    """A stage's service sampler that returns one given service time (a batch's sum)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self, scale: float = 1.0) -> float:
        return self.value


def _charged(_arg) -> None:
    """A batch job's completion: the polls it stands for changed nothing."""


class _Group:
    """The members of one access node, one logic node and one poll cost: counts per bin."""

    __slots__ = ("access", "counts", "debt", "logic", "poll_s")

    def __init__(self, access: int, logic: int, poll_s: float, bins: int) -> None:
        self.access = access
        self.logic = logic
        self.poll_s = poll_s  # mean poll-stage service of one poll (s)
        self.counts = [0] * bins
        # polls a batch charged that went the normal path after all: the next batch of
        # the group leaves them out (per part: request, logic, response)
        self.debt = [0, 0, 0]


class IdlePollCohorts:
    """The cohorts of idle fixed-rate short pollers of one run (see the module text).

    Lifecycle: a poller joins at a poll instant (:meth:`join`, from the client's poll
    tick), is charged in its bin's batches, and leaves through :meth:`message_waits`,
    :meth:`ack_waits` or :meth:`connection_lost`; :meth:`finish` counts the polls of the
    members left at the horizon.
    """

    def __init__(self, world: Any) -> None:
        sc = world.sc
        self.w = world
        self.env = world.env
        self.T = sc["transport.poll_interval_s"]
        self.bins = max(1, round(self.T / bin_width_s(sc, world.clients)))
        self.bin_s = self.T / self.bins
        self.ell = world.one_way_mean_s  # when a poll reaches the access node, on average
        self.window_s = world.duration_s
        self.horizon_s = world.horizon_s
        self.size = sc["network.header_bytes"]  # an idle poll and its empty answer
        unit = 0.001  # the stages' service samplers take ms of mean service
        self.req_s = unit * sc["server.access_request_ms"]
        self.frame_s = unit * sc["server.access_frame_ms"]
        self.poll_s = unit * sc["server.poll_ms"]
        self.read_s = (
            0.0 if sc["server.diffusion"] == "write" else unit * sc["server.timeline_read_ms"]
        )
        self.constant = sc["server.service_dist"] == "constant"
        self.gen = world.streams["idle_poll"].generator
        self.latency = latency_sampler(sc["network.latency_ms"], world.streams["idle_poll_latency"])
        n = len(world.clients)
        self.member = bytearray(n)
        self.join_k = array("q", bytes(8 * n))  # first cohort poll instant (index k)
        self.group_of = array("i", bytes(4 * n))
        self.groups: list[_Group] = []
        self._group_index: dict[tuple[int, int, float], int] = {}
        self.next_k = [-1] * self.bins  # the period of each bin's pending batch (-1: none)
        self._live_seen = world.logic._live
        self._fixed = _Fixed()
        self.members = 0
        self.members_peak = 0
        self.wakes = 0
        self.polls = 0  # cohort polls reaching the access node before the horizon
        self.polls_window = 0  # … before the end of the sending period
        self.batches = 0

    # ------------------------------------------------------------------------------------
    # joining
    def join(self, client: Any, conn: Any) -> bool:
        """At ``client``'s poll instant: become a member if nothing waits for it (True:
        this poll and the next ones are the cohort's, the client stops its poll loop)."""
        w = self.w
        if client.pending_acks or conn.broken or not w.access.serves(conn):
            return False
        uid = client.uid
        logic = w.logic
        for node in logic.nodes:
            if node.core.pending.waiting(uid):
                return False
        node = logic.owner(uid)
        if node is None:
            return False
        if logic._live is not self._live_seen:
            self._regroup()
        now = self.env._now
        offset = client.phase * self.T
        k = round((now - offset) / self.T)
        b = self._bin(offset)
        g = self._group(conn.access, node.node_id, uid)
        self.member[uid] = 1
        self.join_k[uid] = k
        self.group_of[uid] = g
        self.groups[g].counts[b] += 1
        self.members += 1
        if self.members > self.members_peak:
            self.members_peak = self.members
        pending = self.next_k[b]
        if pending < 0:
            if self._tick_time(b, k) >= now:
                self._schedule(b, k)
            else:  # this window's batch time has passed: its poll is charged now
                self._charge(self.groups[g], 1, 1, 1)
                self._schedule(b, k + 1)
        elif pending > k:  # the batch of this instant has gone without it
            self._charge(self.groups[g], 1, 1, 1)
        return True

    def _bin(self, offset: float) -> int:
        return min(int(offset / self.bin_s), self.bins - 1)

    def _group(self, access: int, logic: int, uid: int) -> int:
        poll_s = self.poll_s
        if self.read_s:
            poll_s += self.read_s * self.w.logic.groups_of(uid)
        key = (access, logic, poll_s)
        g = self._group_index.get(key)
        if g is None:
            g = self._group_index[key] = len(self.groups)
            self.groups.append(_Group(access, logic, poll_s, self.bins))
        return g

    def _regroup(self) -> None:
        """A failover moved users between logic nodes: members follow their users."""
        logic = self.w.logic
        self._live_seen = logic._live
        members = np.flatnonzero(np.frombuffer(self.member, dtype=np.uint8))
        clients = self.w.clients
        for uid in members.tolist():
            old = self.groups[self.group_of[uid]]
            node = logic.owner(uid)
            if node is None or node.node_id == old.logic:
                continue
            b = self._bin(clients[uid].phase * self.T)
            old.counts[b] -= 1
            g = self._group(old.access, node.node_id, uid)
            self.group_of[uid] = g
            self.groups[g].counts[b] += 1

    # ------------------------------------------------------------------------------------
    # batches
    def _tick_time(self, b: int, k: int) -> float:
        return k * self.T + b * self.bin_s + self.ell

    def _schedule(self, b: int, k: int) -> None:
        self.next_k[b] = k
        at_time(self.env, self._tick_time(b, k), self._tick, (b, k))

    def _tick(self, arg) -> None:
        """Bin ``b``'s polls of period ``k`` reach the access tier: charge them."""
        b, k = arg
        if self.w.logic._live is not self._live_seen:
            self._regroup()
        busy = False
        for group in self.groups:
            n = group.counts[b]
            if n:
                busy = True
                debt = group.debt
                parts = []
                for p in (REQ, LOGIC, RESP):
                    paid = min(debt[p], n)
                    debt[p] -= paid
                    parts.append(n - paid)
                self._charge(group, *parts)
        if busy:
            self._schedule(b, k + 1)
        else:
            self.next_k[b] = -1

    def _charge(self, group: _Group, n_req: int, n_logic: int, n_resp: int) -> None:
        """Put ``n_req`` poll requests, ``n_logic`` poll-stage jobs and ``n_resp`` empty
        answers of ``group`` on its stages and the network, now."""
        self.batches += 1
        w = self.w
        anode = w.access.nodes[group.access]
        if not anode.up:
            return
        lnode = w.logic.nodes[group.logic]
        if not lnode.up:
            # the access tier forwards to a dead node (before failover): nothing answers
            n_logic = n_resp = 0
        up, down = w.net.up, w.net.down
        up.packets += n_req
        up.bytes += n_req * self.size
        down.packets += n_resp
        down.bytes += n_resp * self.size
        n_access = max(n_req, n_resp)
        if n_access:
            mean = n_req * self.req_s + n_resp * self.frame_s
            var = n_req * self.req_s**2 + n_resp * self.frame_s**2
            self._jobs(anode.stage, n_access, mean, var, timed=True)
        if n_logic:
            mean = n_logic * group.poll_s
            self._jobs(lnode.stages["poll"], n_logic, mean, n_logic * group.poll_s**2, False)

    def _jobs(self, stage: Any, n: int, mean: float, var: float, timed: bool) -> None:
        """``n`` polls' work (total ``mean`` s, variance ``var`` s²) as one job per worker."""
        if mean <= 0.0:
            return
        jobs = min(n, stage.workers)
        m, v = mean / jobs, var / jobs
        if self.constant:
            services = [m] * jobs
        else:  # the sum of a job's polls: Gamma with the sum's mean and variance
            services = (self.gen.standard_gamma(m * m / v, jobs) * (v / m)).tolist()
        fixed = self._fixed
        draw = stage.service
        # The stage draws a job's service from its own sampler; a batch brings the sum
        # of its polls' service times instead, so the sampler is swapped for the call.
        stage.service = fixed
        try:
            for value in services:
                fixed.value = value
                if timed:
                    stage.reserve()
                else:
                    stage.submit(_charged, None)
        finally:
            stage.service = draw

    # ------------------------------------------------------------------------------------
    # leaving
    def message_waits(self, uid: int) -> None:
        """A message was put in ``uid``'s outbox (the logic tier's fan-out)."""
        if self.member[uid]:
            self._leave(self.w.clients[uid], MESSAGE)

    def ack_waits(self, client: Any) -> None:
        """An ACK waits for ``client``'s next poll."""
        if self.member[client.uid]:
            self._leave(client, ACK)

    def connection_lost(self, client: Any, how: str) -> None:
        """``client``'s connection is gone: ``how`` is :data:`CLOSED` (the access node
        forgot it), :data:`BROKEN` (silently) or :data:`GONE` (the client let go)."""
        if self.member[client.uid]:
            self._leave(client, how)

    def _leave(self, client: Any, reason: str) -> None:
        uid = client.uid
        T = self.T
        self.member[uid] = 0
        self.members -= 1
        self.wakes += 1
        group = self.groups[self.group_of[uid]]
        offset = client.phase * T
        b = self._bin(offset)
        group.counts[b] -= 1
        now = self.env._now
        k_join = self.join_k[uid]
        # the next poll instant after now (a hair of tolerance: a leave at the very
        # instant of a poll leaves after it)
        k_next = max(math.floor((now - offset) / T + 1e-9) + 1, k_join + 1)
        # batches went out for the instants below this one (a bin with a member always
        # has its next batch pending)
        charged_below = self.next_k[b]
        last = k_next - 1  # the member's last cohort poll
        real = _NONE
        if reason == MESSAGE:
            real = self._replay(client, offset + last * T, group)
        elif reason in (CLOSED, GONE) and offset + last * T + self.ell > now:
            # the last poll was on its way and finds its connection gone: not a request,
            # nothing to charge (its bytes went up all the same)
            self.w.net.up.packets += 1
            self.w.net.up.bytes += self.size
            real = _ALL
        # the last poll: what of it the replay made real was charged by a batch (the
        # next batch leaves it out) or was not (the rest of it is charged now)
        self._settle(group, last, charged_below, real)
        for _ in range(max(k_join, charged_below), last):
            self._charge(group, 1, 1, 1)  # instants whose batch has not gone yet
        # the next instant is the client's own (or, gone, none): a batch that counted it
        # leaves it out next time
        self._settle(group, k_next, charged_below, _ALL)
        cohort_last = last - 1 if any(real) else last
        self._count(offset, k_join, cohort_last)
        conn = client.conn
        if reason != GONE and conn is not None:
            self.w.deadlines.at(
                offset + k_next * T, self.w.side._poll_tick, (client, conn), held=False
            )

    def _settle(self, group: _Group, k: int, charged_below: int, real: tuple) -> None:
        if k < charged_below:
            for p in (REQ, LOGIC, RESP):
                if real[p]:
                    group.debt[p] += 1
        elif not all(real):
            self._charge(group, *(0 if r else 1 for r in real))

    def _replay(self, client: Any, t_sent: float, group: _Group) -> tuple:
        """The member's last cohort poll, sent at ``t_sent``, where is it now that a
        message waits? Returns which parts of it go on through the normal path."""
        w = self.w
        conn = client.conn
        if conn is None:
            return _NONE
        now = self.env._now
        t_access = t_sent + self.latency()
        t_logic = t_access + self.req_s
        t_answer = t_logic + group.poll_s
        if now >= t_answer:
            return _NONE  # answered (empty) before the message was stored
        client.poll_seq += 1
        seq = client.poll_seq
        if now < t_access:  # still in the network: it arrives as any poll
            w.net.up.packets += 1
            w.net.up.bytes += self.size
            at_time(self.env, t_access, w.access.poll_arrives, (client, conn, seq, (), 0.0))
            return _ALL
        row = w.rec.request(t_access, client.uid, "poll", 0, self.size)
        if now < t_logic:  # in the access node's stage: on to the logic node
            arg = (client, conn, seq, row, (), 0.0)
            at_time(self.env, t_logic, w.logic.poll_arrives, arg)
            return (False, True, True)
        # in the poll stage: answered when its service ends
        at_time(self.env, t_answer, self._answer, (client, conn, seq, row))
        return (False, False, True)

    def _answer(self, arg) -> None:
        client, conn, seq, row = arg
        if client.conn is conn:
            self.w.logic.respond_poll(client, conn, seq, row)

    # ------------------------------------------------------------------------------------
    # counting
    def _count(self, offset: float, k_first: int, k_last: int) -> None:
        """Count a member's cohort polls at instants ``k_first`` … ``k_last``."""
        if k_last < k_first:
            return
        self.polls += self._upto(offset, k_first, k_last, self.horizon_s)
        self.polls_window += self._upto(offset, k_first, k_last, self.window_s)

    def _upto(self, offset: float, k_first: int, k_last: int, cutoff: float) -> int:
        # instants whose poll reaches the access node before ``cutoff``
        k_max = math.ceil((cutoff - self.ell - offset) / self.T) - 1
        return max(0, min(k_last, k_max) - k_first + 1)

    def finish(self) -> None:
        """The run is over: count the polls of the members left (all their instants)."""
        members = np.flatnonzero(np.frombuffer(self.member, dtype=np.uint8))
        if members.size == 0:
            return
        phases = np.array([self.w.clients[u].phase for u in members.tolist()])
        offsets = phases * self.T
        first = np.frombuffer(self.join_k, dtype=np.int64)[members]

        def upto(cutoff: float) -> int:  # as _upto, for every member at once
            k_max = np.ceil((cutoff - self.ell - offsets) / self.T) - 1
            return int(np.clip(k_max - first + 1, 0, None).sum())

        self.polls += upto(self.horizon_s)
        self.polls_window += upto(self.window_s)

    def summary(self) -> dict[str, Any]:
        """The summary keys of the aggregated mode (``idle_polls`` …)."""
        return {
            "idle_polls": self.polls,
            "idle_polls_window": self.polls_window,
            "idle_poll_wakes": self.wakes,
            "idle_poll_members_peak": self.members_peak,
        }


def empty_summary() -> dict[str, Any]:
    """The same keys for a run without cohorts (the exact mode)."""
    return {
        "idle_polls": 0,
        "idle_polls_window": 0,
        "idle_poll_wakes": 0,
        "idle_poll_members_peak": 0,
    }


__all__ = ["IdlePollCohorts", "bin_width_s", "empty_summary", "enabled"]

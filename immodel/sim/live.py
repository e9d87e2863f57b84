"""Live-broadcast rooms on the simulated deployment: speakers, the cap, viewers.

A run with ``workload.live_rooms > 0`` adds rooms beside the reliable users of
:mod:`immodel.sim.world`. Per room:

* **speakers** send Poisson messages (``workload.live_send_rate`` per second, priorities
  drawn by ``workload.live_priority``); each crosses the uplink, is forwarded by the
  room's access node (``server.access_request_ms``) and passes the auth and checks stages
  of the room's logic node (room id modulo the logic nodes), then is offered to the
  room's :class:`~immodel.protocol.live.RateCap`;
* every ``server.live_window_ms`` the cap decides the window that ended (the rule lives
  in :mod:`immodel.protocol.live`); a dropped message's sender is told (one downlink
  frame); the accepted ones pass the logic node's downlink stage (status + fan-out to
  each access node) and are **published** to the room's
  :class:`~immodel.protocol.live.RecentBuffer`;
* **viewers** long-poll the access tier (every transport but ``push``: the article's
  hybrid rule sends live rooms over long polling) or are pushed to (``push``). A poll
  with a cursor behind the buffer's head is answered at once, otherwise it is held
  until the next publish or ``transport.long_poll_hold_s``; each poll costs
  ``server.access_request_ms`` + ``server.hold_ms`` and each response or push one
  ``server.access_frame_ms`` on the viewer's access node. Nothing is acknowledged,
  retransmitted or stored offline; what left the buffer before a viewer asked is missed.

**Viewers as cohorts.** A cohort is a set of viewers of one room in the same state: the
same cursor, the same poll in flight or held, and (by construction) the same network
draws. ``per_viewer`` mode gives every viewer its own cohort of one; ``cohort`` mode
puts viewers into ``workload.live_cohorts`` poll-phase cohorts per room (uniformly at
random, so the counts are multinomial and exact) whose members share their latency
draws. Viewers are exchangeable, so every viewer's own history has the same law in both
modes; only the correlation between viewers of one cohort differs (which widens the
spread of a percentile estimate, not its expectation). Work is charged per viewer: a
cohort of ``n`` submits one job of ``n`` times the cost, and its members' responses leave
together when that job completes. With constant service times that is the sum of the
viewers' jobs; with random ones (``server.service_dist``) it is one draw scaled by ``n``,
whose variance is ``n²`` rather than ``n`` times a viewer's: the cohort mode then queues a
little differently (a shift of the median live latency of well under 1 % in a
2,000-viewer room at exponential service times).

**Presence.** With ``workload.live_mean_stay_s > 0`` every viewer stays an exponential
time and leaves; a cohort of ``n`` draws its next departure time (exponential with mean
stay / ``n``) and applies the departures due at its next event, and a viewer leaving
misses what was published for it and not yet shown (``live_missed``). Joins are Poisson
at ``audience / mean stay`` per room, so the audience stays at its size; they are
batched at the window ticks, and a joiner starts from the room's head (it sees what is
published after it joined), connects (``transport.handshake_rtts`` + the login round
trip; the login is charged) and polls.
Cohorts of one poll phase that are held at the same instant have the same cursor (a poll
is held only at the head) and are merged at the publish.

Not modelled for live traffic: packet loss and connection breaks (live frames travel
the latency model only), faults (a crashed node's stage loses the live jobs in it and
those viewers stop), and the speakers' own devices beyond their uplink and the drop
notice. Everything random comes from the named streams ``live_audience``,
``live_workload`` and ``live_speakers`` (what is offered), ``live_latency`` (viewers'
network draws) and ``live_presence``.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from typing import Any

import numpy as np
import pandas as pd

from immodel.protocol.live import PRIORITIES, RateCap, RecentBuffer, WindowDecision
from immodel.sim.kernel import later
from immodel.sim.network import latency_sampler

#: ``workload.live_viewer_mode = "auto"`` simulates each viewer when a room has at most
#: this many, cohorts above.
AUTO_PER_VIEWER_MAX = 2000

HELD, FLIGHT, DEAD = 0, 1, 2
_INF = math.inf


class Cohort:
    """``n`` viewers of one room in one state (``per_viewer``: ``n`` = 1).

    ``cursor`` is the last seq they have seen or given up for good; ``next_leave`` is
    when the next of them leaves (``inf``: nobody leaves); ``epoch`` voids a held poll's
    timer once the poll has been answered; ``free_at`` (push) is when the last push
    reaches them, so pushes on one connection arrive in order."""

    __slots__ = (
        "access",
        "bin",
        "cid",
        "cursor",
        "epoch",
        "free_at",
        "inflight",
        "n",
        "next_leave",
        "sent",
        "state",
    )

    def __init__(self, cid: int, bin_: int, n: int, cursor: int, access: int) -> None:
        self.cid = cid
        self.bin = bin_
        self.n = n
        self.cursor = cursor
        self.state = FLIGHT
        self.epoch = 0
        self.free_at = 0.0
        self.inflight = 0
        self.sent = cursor  # push: the last seq handed to a push on its way
        self.access = access
        self.next_leave = _INF


class Room:
    """One live room: its cap, its recent buffer, its cohorts and who is held."""

    __slots__ = (
        "audience",
        "buffer",
        "cap",
        "cohorts",
        "held",
        "logic",
        "next_bin",
        "next_cid",
        "per_viewer",
        "pub_times",
        "rid",
    )

    def __init__(self, rid: int, cap: RateCap, buffer: RecentBuffer) -> None:
        self.rid = rid
        self.cap = cap
        self.buffer = buffer
        self.cohorts: list[Cohort] = []
        self.held: dict[int, list[Cohort]] = {}
        self.pub_times: list[float] = []  # publish time of seq s at index s - 1
        self.audience = 0
        self.per_viewer = True
        self.next_bin = 0
        self.next_cid = 0
        self.logic = 0


class LiveRooms:
    """All live rooms of one run; :meth:`start` schedules them, :meth:`finish` closes
    the books at the horizon. Records: :meth:`messages_frame`, :meth:`trace_frame`."""

    def __init__(self, world: Any) -> None:
        sc = self.sc = world.sc
        self.w = world
        self.env = world.env
        self.window_s = sc["server.live_window_ms"] / 1000.0
        self.cap_per_window = max(
            1, math.floor(sc["server.live_max_msgs_per_s"] * self.window_s + 1e-9)
        )
        self.rate = sc["workload.live_send_rate"]
        shares = sc["workload.live_priority"]
        acc = 0.0
        self.cum_shares = []
        for p in PRIORITIES:
            acc += shares[p]
            self.cum_shares.append(acc)
        self.stay_s = sc["workload.live_mean_stay_s"]
        self.hold_s = sc["transport.long_poll_hold_s"]
        self.push = sc["transport.kind"] == "push"
        self.handshake_rtts = sc["transport.handshake_rtts"]
        self.n_access = len(world.access.nodes)
        self.cost_poll = sc["server.access_request_ms"] + sc["server.hold_ms"]
        self.cost_request = sc["server.access_request_ms"]
        self.cost_frame = sc["server.access_frame_ms"]
        self.cost_login = sc["server.tls_handshake_ms"] + sc["server.auth_ms"]
        self.cost_auth = sc["server.auth_ms"]
        self.cost_checks = sc["server.checks_ms"]
        self.cost_publish = sc["server.status_ms"] + sc["server.fanout_ms_per_recipient"] * (
            self.n_access
        )
        streams = world.streams
        self.s_work = streams["live_workload"]
        self.s_presence = streams["live_presence"]
        self.lat = latency_sampler(sc["network.latency_ms"], streams["live_latency"])
        # the speakers' own draws: what is offered and decided is the same whatever the
        # viewers do (and in both viewer modes)
        self.lat_speaker = latency_sampler(sc["network.latency_ms"], streams["live_speakers"])
        # records: one entry per speaker message (index = message number)
        self.m_room: list[int] = []
        self.m_priority: list[str] = []
        self.m_t_send: list[float] = []
        self.m_t_offer: list[float] = []
        self.m_window: list[int] = []
        self.m_seq: list[int] = []
        self.m_t_decided: list[float] = []
        self.m_t_told: list[float] = []
        # deliveries: one entry per response or push shown to a cohort:
        # (room, cohort id, viewers, time, [(seq, message number), ...])
        self.shown: list[tuple[int, int, int, float, list]] = []
        self.missed = 0
        self.viewer_deliveries = 0
        self.joins = 0
        self.leaves = 0
        self.rooms = self._setup_rooms()

    # ------------------------------------------------------------------------------------
    # set-up
    def _setup_rooms(self) -> list[Room]:
        sc = self.sc
        gen = self.w.streams["live_audience"].generator
        spec = sc["workload.live_audience"]
        mode = sc["workload.live_viewer_mode"]
        n_logic = len(self.w.logic.nodes)
        rooms = []
        if isinstance(spec, float):
            sizes = [max(1, round(spec))] * sc["workload.live_rooms"]
        else:
            draw = latency_sampler(spec, self.w.streams["live_audience"])
            # latency_sampler gives the spec's unit / 1000 (ms → s): undo that
            sizes = [max(1, round(draw() * 1000.0)) for _ in range(sc["workload.live_rooms"])]
        for rid, size in enumerate(sizes):
            room = Room(
                rid,
                RateCap(self.cap_per_window, self.window_s),
                RecentBuffer(sc["server.live_buffer_msgs"]),
            )
            room.audience = size
            room.logic = rid % n_logic
            room.per_viewer = mode == "per_viewer" or (
                mode == "auto" and size <= AUTO_PER_VIEWER_MAX
            )
            if room.per_viewer:
                for _ in range(size):
                    self._new_cohort(room, room.next_bin, 1, 0)
                    room.next_bin += 1
            else:
                k = sc["workload.live_cohorts"]
                counts = gen.multinomial(size, [1.0 / k] * k)
                room.next_bin = k
                for b, n in enumerate(counts.tolist()):
                    if n:
                        self._new_cohort(room, b, n, 0)
            rooms.append(room)
        return rooms

    def _new_cohort(self, room: Room, bin_: int, n: int, cursor: int) -> Cohort:
        c = Cohort(room.next_cid, bin_, n, cursor, bin_ % self.n_access)
        self._redraw_leave(c)
        room.next_cid += 1
        room.cohorts.append(c)
        return c

    def start(self) -> None:
        """Schedule the speakers, the window ticks and the viewers' start state: every
        viewer is in its room at t = 0 with a poll held at the (empty) head (push:
        connected)."""
        for room in self.rooms:
            for c in room.cohorts:
                if not self.push:
                    self._hold(room, c)
                else:
                    c.state = HELD
            if self.rate > 0:
                later(self.env, self.s_work.exponential(1.0 / self.rate), self._speak, room)
        later(self.env, self.window_s, self._tick, 1)

    # ------------------------------------------------------------------------------------
    # speakers → access → logic → cap
    def _speak(self, room: Room) -> None:
        env = self.env
        if env.now >= self.w.duration_s:
            return
        i = len(self.m_room)
        u = self.s_work.uniform()
        p = PRIORITIES[-1]
        for name, edge in zip(PRIORITIES, self.cum_shares, strict=True):
            if u < edge:
                p = name
                break
        self.m_room.append(room.rid)
        self.m_priority.append(p)
        self.m_t_send.append(env.now)
        self.m_t_offer.append(math.nan)
        self.m_window.append(-1)
        self.m_seq.append(-1)
        self.m_t_decided.append(math.nan)
        self.m_t_told.append(math.nan)
        later(env, self.lat_speaker(), self._at_access, i)
        later(env, self.s_work.exponential(1.0 / self.rate), self._speak, room)

    def _at_access(self, i: int) -> None:
        node = self.w.access.nodes[self.m_room[i] % self.n_access]
        node.stage.submit(self._at_logic, i, self.cost_request)

    def _at_logic(self, i: int) -> None:
        node = self.w.logic.nodes[self.rooms[self.m_room[i]].logic]
        node.stages["auth"].submit(self._after_auth, i, self.cost_auth)

    def _after_auth(self, i: int) -> None:
        node = self.w.logic.nodes[self.rooms[self.m_room[i]].logic]
        node.stages["checks"].submit(self._offer, i, self.cost_checks)

    def _offer(self, i: int) -> None:
        room = self.rooms[self.m_room[i]]
        self.m_t_offer[i] = self.env.now
        self.m_window[i] = room.cap.offer(self.env.now, str(i), self.m_priority[i])

    # ------------------------------------------------------------------------------------
    # window ticks: decide, tell the dropped, publish, joins
    def _tick(self, k: int) -> None:
        env = self.env
        now = env.now
        for room in self.rooms:
            decision = room.cap.close(k - 1)
            self._decided(room, decision)
            self._joins(room)
        nxt = (k + 1) * self.window_s  # from the window index, so ticks do not drift
        if nxt <= self.w.horizon_s:
            later(env, nxt - now, self._tick, k + 1)

    def _decided(self, room: Room, decision: WindowDecision) -> None:
        now = self.env.now
        for d in decision.dropped:
            i = int(d.msg_id)
            self.m_t_decided[i] = now
            # the sender is told: one downlink frame through the room's access node
            self.m_t_told[i] = now + self.lat_speaker()
            self.w.access.nodes[room.rid % self.n_access].stage.reserve(self.cost_frame)
        if not decision.accepted:
            return
        batch = []
        for a in decision.accepted:
            i = int(a.msg_id)
            self.m_t_decided[i] = now
            self.m_seq[i] = a.seq
            batch.append((a.seq, i))
        node = self.w.logic.nodes[room.logic]
        node.stages["downlink"].submit(self._publish, (room, batch), self.cost_publish)

    def _publish(self, arg: tuple[Room, list[tuple[int, int]]]) -> None:
        room, batch = arg
        now = self.env.now
        for seq, i in batch:
            room.buffer.publish(seq, i)
            room.pub_times.append(now)
        if self.push:
            self._push_all(room)
            return
        held, room.held = room.held, {}
        for b in sorted(held):
            for c in self._merge(room, held[b]):
                self._respond(room, c)
        self._prune(room)

    def _merge(self, room: Room, cohorts: list[Cohort]) -> list[Cohort]:
        """The cohorts of one poll phase after merging those at the same cursor (a held
        poll waits at the head, so held cohorts of a phase become one)."""
        by_cursor: dict[int, Cohort] = {}
        for c in cohorts:
            self._depart(room, c)
            if c.n == 0:
                continue
            main = by_cursor.get(c.cursor)
            if main is None:
                by_cursor[c.cursor] = c
                continue
            main.n += c.n
            c.n = 0
            c.state = DEAD
            self._redraw_leave(main)
        return list(by_cursor.values())

    def _prune(self, room: Room) -> None:
        if any(c.state == DEAD for c in room.cohorts):
            room.cohorts = [c for c in room.cohorts if c.state != DEAD]

    def _joins(self, room: Room) -> None:
        if self.stay_s <= 0:
            return
        gen = self.s_presence.generator
        count = int(gen.poisson(room.audience / self.stay_s * self.window_s))
        if not count:
            return
        self.joins += count
        by_bin: dict[int, int] = {}
        if room.per_viewer:
            for _ in range(count):
                by_bin[room.next_bin] = 1
                room.next_bin += 1
        else:
            k = self.sc["workload.live_cohorts"]
            for _ in range(count):
                b = self.s_presence.below(k)
                by_bin[b] = by_bin.get(b, 0) + 1
        now = self.env.now
        for b, n in sorted(by_bin.items()):
            c = self._new_cohort(room, b, n, room.buffer.head)
            c.free_at = now
            node = self.w.access.nodes[c.access]
            node.stage.reserve(self.cost_login * n)
            if self.push:
                c.state = HELD  # connected; pushed to from the next publish
                continue
            # handshake round trips and the login round trip, then the first poll's uplink
            delay = sum(self.lat() + self.lat() for _ in range(self.handshake_rtts + 1))
            later(self.env, delay + self.lat(), self._poll_arrives, (room, c))

    # ------------------------------------------------------------------------------------
    # presence: departures drawn at a cohort's events
    def _depart(self, room: Room, c: Cohort) -> None:
        """Apply the departures of ``c`` due by now; each leaver misses what was published
        before it left and not yet shown to it.

        The next departure from a cohort of ``n`` is exponential with mean
        ``mean stay / n`` (the first of ``n`` exponential stays, memoryless), so one
        draw per departure gives every leave time exactly, and a cohort event with no
        departure due costs one comparison."""
        now = self.env.now
        if c.next_leave > now or c.n == 0:
            return
        pub = room.pub_times
        while c.n and c.next_leave <= now:
            tau = c.next_leave
            published_by_then = bisect_right(pub, tau)
            if published_by_then > c.cursor:
                self.missed += published_by_then - c.cursor
            c.n -= 1
            self.leaves += 1
            c.next_leave = tau + self.s_presence.exponential(self.stay_s / c.n) if c.n else _INF
        if c.n == 0:
            c.state = DEAD

    def _redraw_leave(self, c: Cohort) -> None:
        """A cohort's size changed (a merge): its next departure, drawn afresh from now
        (memoryless, so this does not change the law of anyone's stay)."""
        if self.stay_s > 0 and c.n:
            c.next_leave = self.env.now + self.s_presence.exponential(self.stay_s / c.n)

    # ------------------------------------------------------------------------------------
    # long polling
    def _hold(self, room: Room, c: Cohort) -> None:
        c.state = HELD
        c.epoch += 1
        room.held.setdefault(c.bin, []).append(c)
        later(self.env, self.hold_s, self._hold_expired, (room, c, c.epoch))

    def _hold_expired(self, arg: tuple[Room, Cohort, int]) -> None:
        room, c, epoch = arg
        if c.epoch != epoch or c.state != HELD:
            return
        waiting = room.held.get(c.bin)
        if waiting is not None and c in waiting:
            waiting.remove(c)
            if not waiting:
                del room.held[c.bin]
        self._depart(room, c)
        if c.n:
            self._respond(room, c)

    def _respond(self, room: Room, c: Cohort) -> None:
        """Answer ``c``'s poll now with what follows its cursor (empty at hold expiry)."""
        c.state = FLIGHT
        c.epoch += 1
        items, skipped = room.buffer.since(c.cursor)
        if skipped:
            self.missed += skipped * c.n
            c.cursor += skipped  # gone for good: not missed again by a later leaver
        node = self.w.access.nodes[c.access]
        node.stage.submit(self._respond_sent, (room, c, items), self.cost_frame * c.n)

    def _respond_sent(self, arg) -> None:
        later(self.env, self.lat(), self._response_arrives, arg)

    def _response_arrives(self, arg) -> None:
        room, c, items = arg
        if c.state == DEAD:
            return
        self._depart(room, c)
        if c.n == 0:
            return
        self._show(room, c, items)
        later(self.env, self.lat(), self._poll_arrives, (room, c))

    def _poll_arrives(self, arg: tuple[Room, Cohort]) -> None:
        c = arg[1]
        if c.state == DEAD:
            return
        node = self.w.access.nodes[c.access]
        node.stage.submit(self._poll_served, arg, self.cost_poll * c.n)

    def _poll_served(self, arg: tuple[Room, Cohort]) -> None:
        room, c = arg
        if c.state == DEAD:
            return
        self._depart(room, c)
        if c.n == 0:
            return
        if room.buffer.head > c.cursor:
            self._respond(room, c)
        else:
            self._hold(room, c)

    # ------------------------------------------------------------------------------------
    # push
    def _push_all(self, room: Room) -> None:
        idle: dict[int, list[Cohort]] = {}
        busy: list[Cohort] = []
        for c in room.cohorts:
            if c.state == DEAD:
                continue
            if c.inflight == 0:
                idle.setdefault(c.bin, []).append(c)
            else:
                busy.append(c)
        targets = []
        for b in sorted(idle):
            targets += self._merge(room, idle[b])  # idle: seen all it was sent
        for c in busy:
            self._depart(room, c)
            if c.n:
                targets.append(c)
        self._prune(room)
        for c in targets:
            items, _ = room.buffer.since(max(c.cursor, c.sent))
            if not items:
                continue
            c.sent = items[-1][0]
            c.inflight += 1
            node = self.w.access.nodes[c.access]
            node.stage.submit(self._push_sent, (room, c, items), self.cost_frame * c.n)

    def _push_sent(self, arg) -> None:
        c = arg[1]
        arrive = max(self.env.now + self.lat(), c.free_at)
        c.free_at = arrive
        later(self.env, arrive - self.env.now, self._push_arrives, arg)

    def _push_arrives(self, arg) -> None:
        room, c, items = arg
        c.inflight -= 1
        if c.state == DEAD:
            return
        self._depart(room, c)
        if c.n == 0:
            return
        self._show(room, c, items)

    # ------------------------------------------------------------------------------------
    # shown
    def _show(self, room: Room, c: Cohort, items: list[tuple[int, object]]) -> None:
        # what a cohort is sent always follows its cursor (RecentBuffer.since), so
        # nothing is shown twice and the cursor only moves forward
        if not items:
            return
        self.shown.append((room.rid, c.cid, c.n, self.env.now, items))
        self.viewer_deliveries += c.n * len(items)
        c.cursor = items[-1][0]

    # ------------------------------------------------------------------------------------
    # end of run
    def finish(self) -> None:
        """At the horizon: departures up to it, and what present viewers never saw."""
        for room in self.rooms:
            head = room.buffer.head
            for c in room.cohorts:
                if c.state == DEAD:
                    continue
                self._depart(room, c)
                if c.n and head > c.cursor:
                    self.missed += (head - c.cursor) * c.n

    def present(self) -> int:
        """Viewers in a room now (all rooms)."""
        return sum(c.n for room in self.rooms for c in room.cohorts if c.state != DEAD)

    def state_bytes(self) -> int:
        """Bytes held by the rooms' state (cohorts, held lists, buffers, publish times),
        records excluded: the per-room memory the cohort abstraction is about."""
        total = 0
        for room in self.rooms:
            total += sys.getsizeof(room) + sys.getsizeof(room.cohorts)
            total += sum(sys.getsizeof(c) for c in room.cohorts)
            total += sys.getsizeof(room.held) + sum(sys.getsizeof(v) for v in room.held.values())
            total += sys.getsizeof(room.buffer._items) + sys.getsizeof(room.pub_times)
        return total

    # ------------------------------------------------------------------------------------
    # records
    def messages_frame(self) -> pd.DataFrame:
        """``live_messages``: one row per speaker message (``docs/columns.md``)."""
        seq = np.asarray(self.m_seq, dtype=np.int64)
        return pd.DataFrame(
            {
                "msg_id": [f"L{r}-{i}" for i, r in enumerate(self.m_room)],
                "room": np.asarray(self.m_room, dtype=np.int64),
                "priority": pd.Categorical(self.m_priority, categories=list(PRIORITIES)),
                "t_send": np.asarray(self.m_t_send, dtype=np.float64),
                "t_offer": np.asarray(self.m_t_offer, dtype=np.float64),
                "window": np.asarray(self.m_window, dtype=np.int64),
                "accepted": seq >= 0,
                "seq": seq,
                "t_decided": np.asarray(self.m_t_decided, dtype=np.float64),
                "t_told": np.asarray(self.m_t_told, dtype=np.float64),
            }
        )

    def trace_frame(self) -> pd.DataFrame:
        """``live_trace``: the checker's event log for live traffic (``send`` and
        ``deliver`` rows, no ``stored`` rows: nothing is owed to a live viewer). A deliver
        row stands for the ``viewers`` viewers of one cohort shown the message at once."""
        n_send = len(self.m_room)
        ids = [f"L{r}-{i}" for i, r in enumerate(self.m_room)]
        sizes = np.fromiter((len(s[4]) for s in self.shown), dtype=np.int64, count=len(self.shown))
        n_del = int(sizes.sum())
        pairs = np.fromiter(
            (v for s in self.shown for item in s[4] for v in item), dtype=np.int64, count=2 * n_del
        ).reshape(-1, 2)
        d_seq, d_msg = pairs[:, 0], pairs[:, 1]

        def col(k: int, dtype) -> np.ndarray:
            values = np.fromiter((s[k] for s in self.shown), dtype=dtype, count=len(self.shown))
            return np.repeat(values, sizes)

        d_room, d_cid, d_n, d_t = (
            col(0, np.int64),
            col(1, np.int64),
            col(2, np.int64),
            col(3, float),
        )
        send_room = np.asarray(self.m_room, dtype=np.int64)
        # viewers: one label per (room, cohort); speakers: one per room
        who = np.concatenate([np.full(n_send, -1, dtype=np.int64), d_cid])
        room = np.concatenate([send_room, d_room])
        width = int(who.max()) + 2 if who.size else 1
        keys, codes = np.unique(room * width + who + 1, return_inverse=True)
        labels = [
            f"r{k // width}-speaker" if k % width == 0 else f"r{k // width}-c{k % width - 1}"
            for k in keys.tolist()
        ]
        n_rooms = len(self.rooms)
        frame = pd.DataFrame(
            {
                "t": np.concatenate([np.asarray(self.m_t_send, dtype=np.float64), d_t]),
                "event": pd.Categorical.from_codes(
                    np.concatenate([np.zeros(n_send, np.int8), np.full(n_del, 2, np.int8)]),
                    categories=["send", "stored", "deliver"],
                ),
                "msg_id": pd.Categorical.from_codes(
                    np.concatenate([np.arange(n_send, dtype=np.int64), d_msg]), categories=ids
                ),
                "conversation": pd.Categorical.from_codes(
                    room, categories=[f"live{r}" for r in range(n_rooms)]
                ),
                "user": pd.Categorical.from_codes(codes, categories=labels),
                "order_key": np.concatenate([np.full(n_send, np.nan), d_seq.astype(np.float64)]),
                "viewers": np.concatenate([np.ones(n_send, dtype=np.int64), d_n]),
                "live": np.ones(n_send + n_del, dtype=bool),
            }
        )
        return frame.sort_values("t", kind="stable").reset_index(drop=True)


__all__ = ["AUTO_PER_VIEWER_MAX", "Cohort", "LiveRooms", "Room"]

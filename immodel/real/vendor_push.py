"""Offline push of ``immodel real``: the phone vendor's push service, and the users who
answer its notifications.

The simulator's path (:mod:`immodel.sim.offline_push`) on real sockets, in three parts:

* :class:`VendorLink` — in each logic process: for every copy routed to the offline
  queue of a device that is not connected (where the simulator's logic tier calls
  ``_offline_push``, at the fan-out after the store), one ``notify`` line to the vendor
  over a TCP connection on loopback; at each login a ``read`` line (the device's
  notification is read: collapsing starts again).
* :class:`Vendor` — the vendor's service, a process of its own (``python -m
  immodel.real.vendor_push CONFIG.json 0``, ``READY <port>``), started by the
  orchestrator when a device can be offline (:func:`needed`). It applies the
  simulator's rules in the order the lines arrive: collapsing while unread
  (``server.offline_push_collapse``), the per-app token bucket of
  ``server.offline_push_rate_per_s`` holding one second of notifications (refused over
  it), loss ``server.offline_push_loss`` (stream ``offline_push``) and a latency of mean
  ``server.offline_push_ms`` (``server.offline_push_dist``: constant, or exponential from
  stream ``offline_push_latency``); then it writes the notification to the devices'
  side in the load generator, one line per notification on a TCP connection.
* :class:`DevicePushes` — in the load generator: the devices' side. A notification's
  arrival is its ``t_offline_push``; on a device whose app is closed the user opens it
  with probability ``workload.push_open_prob`` after an exponential delay of mean
  ``workload.push_open_delay_s`` (stream ``push_open``, the simulator's rule: no draw
  when the app is open or already about to be opened). The opened app comes online
  (:meth:`immodel.real.loadgen.RealClient.come_online`), logs in and catches up; with
  churn its online period starts then (the simulator's :meth:`Presence.open_app
  <immodel.sim.presence.Presence.open_app>`), so from its first open on the device's
  presence is no longer the plan's: its planned flips are skipped and it flips on its
  own clock, exponential periods from the plan's ``presence`` stream continued.

What real timing changes: the simulator draws every one of these in its event order; a
real run draws them in the order the events happen here (notifications in their arrival
order at the vendor, opens and flips in their arrival order at the load generator), so
its counts follow the simulator's distributions, not its per-event draws. A planned send
whose sender device is offline because of an open's own presence is skipped
(``push_plan_sends_skipped``), and a device online only because of an open is not picked
as a sender (the plan's senders are drawn before the run). Without opens
(``workload.push_open_prob = 0``) presence and sends are the plan's, and with one logic
node the notifications reach the vendor in the simulator's order: its counts are then
the simulator's up to copies stored within a login's time of a presence flip.

Counters: the vendor's ``stats-vendor0-<pid>.json`` (``offline_pushes``,
``offline_push_refused``, ``offline_push_collapsed``, ``offline_pushes_lost``, ``reads``,
``delivered``); the load generator's ``push_notifications_received``,
``push_open_draws``, ``push_open_yes``, ``push_opens`` (``push_opens_superseded``: the app
was opened meanwhile otherwise), ``push_plan_sends_skipped``. The run's folder (kept with
``run_real(..., keep_dir=...)``) also holds every decision of the vendor
(``vendor-log.jsonl``) and the devices' side (``device_pushes.json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from immodel.protocol.notification import TokenBucket
from immodel.real.common import (
    HOST,
    RunClock,
    Stats,
    announce_ready,
    load_config,
    serve_until_terminated,
)


def needed(sc) -> bool:
    """Whether a run can have a device that is not connected when a copy is routed: some
    users offline at the start, churn, opens, faults (crashes, resets, partitions cut
    connections) or sessions that end at their UserSig's expiry. The orchestrator starts
    the vendor then; otherwise every device is connected for the whole run and there is
    nothing to notify (the offline-push keys are then ``null``)."""
    horizon_s = sc["duration_s"] + sc["drain_s"]
    return bool(
        sc["workload.online_fraction"] < 1.0
        or sc["workload.mean_online_s"] > 0
        or sc["workload.push_open_prob"] > 0
        or sc["faults"]
        or sc["security.usersig_ttl_s"] < horizon_s
        or sc["security.usersig_issued"] == "steady_state"
    )


class _Lines:
    """An ordered stream of JSON lines to ``port`` on loopback, connected on first use
    (lines written meanwhile wait in order); a connection that fails drops its lines."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.writer: asyncio.StreamWriter | None = None
        self.waiting: list[bytes] | None = None  # lines written while connecting
        self.task: asyncio.Task | None = None

    def send(self, obj: dict) -> None:
        line = json.dumps(obj).encode() + b"\n"
        if self.writer is not None:
            if not self.writer.is_closing():
                self.writer.write(line)
            return
        if self.waiting is None:
            self.waiting = []
            self.task = asyncio.get_running_loop().create_task(self._connect())
        self.waiting.append(line)

    async def _connect(self) -> None:
        try:
            _reader, writer = await asyncio.open_connection(HOST, self.port)
        except OSError:
            self.waiting = None
            return
        writer.writelines(self.waiting or [])
        self.waiting = None
        self.writer = writer


class VendorLink:
    """A logic process's connection to the vendor's push service (see the module doc)."""

    def __init__(self, port: int) -> None:
        self.lines = _Lines(port)

    def notify(self, eid: int, msg_id: str) -> None:
        """Device ``eid`` is not connected and ``msg_id`` waits in its offline queue."""
        self.lines.send({"op": "notify", "eid": eid, "msg_id": msg_id})

    def read(self, eid: int) -> None:
        """Device ``eid`` logged in: its notification is read."""
        self.lines.send({"op": "read", "eid": eid})


class Channel:
    """The vendor's rules for one app (the simulator's :class:`immodel.sim.offline_push.
    OfflinePush` channel, on a clock of seconds): :meth:`notify` returns the delay after
    which the notification reaches its device, or None (collapsed, refused or lost)."""

    def __init__(self, sc, streams, clock) -> None:
        self.clock = clock
        self.mean_s = sc["server.offline_push_ms"] / 1000.0
        self.exponential = sc["server.offline_push_dist"] == "exponential"
        self.loss = sc["server.offline_push_loss"]
        self.rate_per_s = sc["server.offline_push_rate_per_s"]
        # the vendor's per-app rate limit (a bucket of one second of notifications, full
        # now), the simulator's rule
        self.bucket = TokenBucket(self.rate_per_s, clock()) if self.rate_per_s > 0 else None
        self.started_at = clock()
        self.collapse = sc["server.offline_push_collapse"]
        self.unread: set[int] = set()
        self.loss_stream = streams["offline_push"]
        self.latency_stream = streams["offline_push_latency"]
        self.counts: dict[str, int] = {
            "offline_pushes": 0,
            "offline_push_refused": 0,
            "offline_push_collapsed": 0,
            "offline_pushes_lost": 0,
        }

    def notify(self, eid: int) -> float | None:
        # the simulator's order: collapse, count, rate limit, unread, loss, latency
        counts = self.counts
        if self.collapse and eid in self.unread:
            counts["offline_push_collapsed"] += 1
            return None
        counts["offline_pushes"] += 1
        if self.bucket is not None and not self.bucket.take(self.clock()):
            counts["offline_push_refused"] += 1
            return None
        if self.collapse:
            self.unread.add(eid)
        if self.loss_stream.uniform() < self.loss:
            counts["offline_pushes_lost"] += 1
            return None
        if self.exponential:
            return self.latency_stream.exponential(self.mean_s)
        return self.mean_s

    def read(self, eid: int) -> None:
        self.unread.discard(eid)


_OUTCOMES = {  # a counter that a notification moved, and its outcome in the log
    "offline_push_collapsed": "collapsed",
    "offline_push_refused": "refused",
    "offline_pushes_lost": "lost",
}


class Vendor:
    """The vendor's push service process: lines from the logic processes in, delivered
    notifications out to the devices' side (see the module doc)."""

    def __init__(self, cfg: dict) -> None:
        from immodel.sim.rng import Streams

        sc = cfg["scenario"]
        self.clock = RunClock(cfg["t0"])
        self.channel = Channel(sc, Streams(sc["seed"]), self.clock)
        self.devices = _Lines(int(cfg["device_push_port"]))
        self.stats = Stats(cfg["dir"], "vendor0")
        self.stats.counts.update(self.channel.counts)
        # every decision, for the records' checks: one JSON line each (run clock)
        self.log = open(Path(cfg["dir"]) / "vendor-log.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._log({"t": self.channel.started_at, "op": "start"})  # the bucket is full now

    async def serve(self) -> None:
        server = await asyncio.start_server(self._link, HOST, 0)
        announce_ready(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                self.handle(json.loads(line))
        writer.close()

    def handle(self, obj: dict) -> None:
        eid = int(obj["eid"])
        now = self.clock()
        if obj["op"] == "read":
            self.stats.counts["reads"] += 1
            self.channel.read(eid)
            self._log({"t": now, "op": "read", "eid": eid})
            return
        before = dict(self.channel.counts)
        delay_s = self.channel.notify(eid)
        for key, value in self.channel.counts.items():
            self.stats.counts[key] = value
        outcome = "delivered" if delay_s is not None else ""
        for key, name in _OUTCOMES.items():
            if self.channel.counts[key] > before[key]:
                outcome = name
        self._log(
            {"t": now, "op": "notify", "eid": eid, "msg_id": obj["msg_id"], "outcome": outcome}
        )
        if delay_s is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(delay_s, self._deliver, eid, obj["msg_id"])

    def _log(self, entry: dict) -> None:
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()

    def _deliver(self, eid: int, msg_id: str) -> None:
        self.stats.counts["delivered"] += 1
        self.devices.send({"eid": eid, "msg_id": msg_id})


class DevicePushes:
    """The devices' side of the vendor channel, in the load generator's event loop: the
    notifications' arrivals and the users who open the app (see the module doc)."""

    def __init__(self, sc, clock) -> None:
        self.sc = sc
        self.clock = clock  # the run clock (seconds)
        self.gen: Any = None  # the LoadGen, once it exists (attach)
        self.arrivals: list[tuple[float, str, int]] = []  # (run clock, msg_id, device)
        self.opens: list[tuple[float, int]] = []  # (run clock, device) of each open
        self.flips: list[tuple[float, int, bool]] = []  # an opened device's own flips
        self.open_prob = sc["workload.push_open_prob"]
        self.open_delay_s = sc["workload.push_open_delay_s"]
        self.mean_on_s = sc["workload.mean_online_s"]
        self.mean_off_s = sc["workload.mean_offline_s"]
        self.opening: set[int] = set()
        self.own: dict[int, int] = {}  # device → serial of its latest own flip (opened)
        self.handles: set[asyncio.TimerHandle] = set()
        self.stopped = False
        self.server: asyncio.Server | None = None
        self.open_stream = None
        self.presence = None

    async def start(self) -> int:
        """Listen for the vendor on loopback; returns the port."""
        self.server = await asyncio.start_server(self._link, HOST, 0)
        return self.server.sockets[0].getsockname()[1]

    def attach(self, gen, streams) -> None:
        """The load generator's clients, and the plan's streams (continued here)."""
        self.gen = gen
        self.open_stream = streams["push_open"]
        self.presence = streams["presence"]

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                obj = json.loads(line)
                self.arrived(int(obj["eid"]), obj["msg_id"])
        writer.close()

    def _later(self, delay_s: float, fn, *args) -> None:
        handle: asyncio.TimerHandle

        def fire() -> None:
            self.handles.discard(handle)
            if not self.stopped:
                fn(*args)

        handle = asyncio.get_running_loop().call_later(delay_s, fire)
        self.handles.add(handle)

    def _app_open(self, eid: int) -> bool:
        client = self.gen.clients.get(eid)
        return client is not None and client.wanted_online

    def arrived(self, eid: int, msg_id: str) -> None:
        """A notification reaches device ``eid``: the user may open the app."""
        if self.gen is None or self.stopped:
            return
        self.arrivals.append((self.clock(), msg_id, eid))
        self.gen.counters["push_notifications_received"] += 1
        if self.open_prob <= 0 or self._app_open(eid) or eid in self.opening:
            return
        self.gen.counters["push_open_draws"] += 1
        if self.open_stream.uniform() < self.open_prob:
            self.gen.counters["push_open_yes"] += 1
            self.opening.add(eid)
            self._later(self.open_stream.exponential(self.open_delay_s), self._open, eid)

    def _open(self, eid: int) -> None:
        self.opening.discard(eid)
        if self._app_open(eid):
            self.gen.counters["push_opens_superseded"] += 1  # online meanwhile on its own
            return
        gen = self.gen
        client = gen.clients.get(eid)
        if client is None:  # offline since the start: its first login
            client = gen.clients[eid] = gen.new_client(eid)
        gen.counters["push_opens"] += 1
        self.opens.append((self.clock(), eid))
        client.come_online()
        if self.mean_on_s > 0:  # the online period starts now (Presence.open_app)
            self._schedule(eid, self.presence.exponential(self.mean_on_s))

    def _schedule(self, eid: int, delay_s: float) -> None:
        serial = self.own[eid] = self.own.get(eid, 0) + 1
        self._later(delay_s, self._flip, eid, serial)

    def _flip(self, eid: int, serial: int) -> None:
        if self.own.get(eid) != serial:
            return  # an open since restarted the device's clock
        client = self.gen.clients[eid]
        self.flips.append((self.clock(), eid, not client.wanted_online))
        if client.wanted_online:
            client.go_offline()
            self._schedule(eid, self.presence.exponential(self.mean_off_s))
        else:
            client.come_online()
            self._schedule(eid, self.presence.exponential(self.mean_on_s))

    def skips_flip(self, eid: int) -> bool:
        """Whether the plan's presence flip of ``eid`` is no longer its own (opened)."""
        return eid in self.own

    def skips_send(self, eid: int) -> bool:
        """Whether a planned send from ``eid`` cannot happen: its own presence (since an
        open) has the app closed."""
        if eid in self.own and not self._app_open(eid):
            self.gen.counters["push_plan_sends_skipped"] += 1
            return True
        return False

    def write(self, path: Path, t_start: float) -> None:
        """The notifications' arrivals, the opens and the opened devices' own flips, in
        seconds from the sending period's start (JSON), for the records' checks."""
        out = {
            "arrivals": [[t - t_start, m, e] for t, m, e in self.arrivals],
            "opens": [[t - t_start, e] for t, e in self.opens],
            "flips": [[t - t_start, e, on] for t, e, on in self.flips],
        }
        path.write_text(json.dumps(out), encoding="utf-8")

    def close(self) -> None:
        """The run ends: nothing more is opened or flipped, the listener closes."""
        self.stopped = True
        for handle in list(self.handles):
            handle.cancel()
        self.handles.clear()
        if self.server is not None:
            self.server.close()


def main(argv: list[str]) -> None:
    cfg = load_config(argv[0])
    vendor = Vendor(cfg)
    with contextlib.suppress(KeyboardInterrupt):
        serve_until_terminated(vendor.serve, vendor.stats)


if __name__ == "__main__":
    main(sys.argv[1:])

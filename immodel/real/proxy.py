"""The fault proxy of ``immodel real``: a process between the clients and the access tier
that forwards TCP byte streams and is where the network's latency and faults happen.

Started by the orchestrator as ``python -m immodel.real.proxy CONFIG.json 0`` with the
logic processes (it learns the access nodes' ports by ``upstream`` commands once they
are up): for every access node it listens on two ports of 127.0.0.1 (the TLS
port of push clients and the HTTPS port of web clients) and prints ``READY <tls0>
<https0> <tls1> <https1> …``. Each accepted connection is joined to the node's current
port; TLS is end to end (client ↔ access node), so the proxy sees only encrypted bytes.

**Who is who.** Each user's client binds its connections to an address of its own in
127.0.0.0/8 (:func:`user_address`: Linux routes the whole block to the loopback
device), so the proxy knows a connection's user from its peer address, as a middlebox
knows a host — without reading the stream.

**Latency.** Every chunk of bytes read in one direction of a connection is written on
after a draw of ``network.latency_ms`` (stream ``latency`` of the run's seed), but never
before the chunk read before it (:class:`DelayLine`): a byte stream cannot reorder, so a
short draw behind a long one waits for it, as in the simulator's stream links.

**Faults**, sent as one JSON object per line on the proxy's stdin (the orchestrator's
pipe; its end stops the proxy):

* ``{"op": "partition", "users": [...], "until": T, "direction": D}`` — the users'
  connections (open ones and those they open meanwhile) carry no bytes in direction ``D``
  (``uplink``, ``downlink``, ``both``) until ``T`` on CLOCK_MONOTONIC; what arrives is
  held and forwarded in order at the heal. The proxy's kernel still acknowledges the held
  bytes, so the sender's TCP does not back off: after the heal the bytes flow at once,
  where the simulator's stream model adds the retransmission backoff.
* ``{"op": "reset", "users": [...]}`` — the users' connections are reset both ways (an
  RST to the client and to the access node: ``SO_LINGER`` 0).
* ``{"op": "upstream", "node": i, "ports": [tls, https]}`` — access node ``i`` came back
  on new ports (after a ``gateway_crash``); ``"ports": null`` while it is down (a
  connection to it is reset at once, as a connection refused would be).

Each command is answered ``OK <op>`` on stdout once it is in force.

When an access node dies, its connections' upstream side is reset, and the proxy resets
the client side after the bytes already on their way (in order): the clients see the
reset a one-way latency later, as they would see the node's own RST.

Counters (``stats-proxy0-<pid>.json``): connections accepted, bytes each way, resets
sent, chunks held by a partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import struct
import sys
from collections import deque

from immodel.real.common import HOST, Stats, announce_ready, load_config

#: How many bytes one read takes from a socket.
CHUNK_BYTES = 65536


def user_address(uid: int) -> str:
    """The loopback address user ``uid``'s client binds its connections to
    (``127.1.<high byte>.<low byte>``; up to 65 536 users)."""
    return f"127.1.{(uid >> 8) & 255}.{uid & 255}"


def address_user(address: str) -> int | None:
    """The user of :func:`user_address`'s ``address`` (None for any other address)."""
    parts = address.split(".")
    if len(parts) != 4 or parts[0] != "127" or parts[1] != "1":
        return None
    return (int(parts[2]) << 8) | int(parts[3])


class DelayLine:
    """One direction of one connection: chunks released in order after their delay (a
    later chunk never overtakes an earlier one, as on a TCP stream); ``hold_until``
    holds everything until a partition heals."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver) -> None:
        self.loop = loop
        self.deliver = deliver  # called with each item, in order
        self.queue: deque = deque()
        self.free_at = 0.0
        self.handle: asyncio.TimerHandle | None = None
        self.sent_from = 0.0  # loop time before which nothing can leave (see Link)

    def put(self, delay_s: float, item) -> None:
        at = max(max(self.loop.time(), self.sent_from) + delay_s, self.free_at)
        self.free_at = at
        self.queue.append((at, item))
        if self.handle is None:
            self.handle = self.loop.call_at(at, self._release)

    def _release(self) -> None:
        self.handle = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            self.deliver(self.queue.popleft()[1])
        if self.queue:
            self.handle = self.loop.call_at(self.queue[0][0], self._release)

    def hold_until(self, at: float) -> None:
        """Nothing queued or put before loop time ``at`` is released earlier (then all
        of it, in order, at once)."""
        self.free_at = max(self.free_at, at)
        if not self.queue:
            return
        self.queue = deque((max(t, at), item) for t, item in self.queue)
        if self.handle is not None:
            self.handle.cancel()
        self.handle = self.loop.call_at(self.queue[0][0], self._release)

    def clear(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle = None
        self.queue.clear()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (``SO_LINGER`` 0), not a FIN: a reset, as a crash gives."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


_EOF = object()  # the source closed cleanly: close the other side after the bytes
_RST = object()  # the source was reset: reset the other side after the bytes


class Link:
    """One proxied connection: the client's and the access node's sockets and a delay
    line each way."""

    def __init__(self, proxy: Proxy, user: int | None, client_w, upstream_w) -> None:
        self.proxy = proxy
        self.user = user
        self.writers = {"uplink": upstream_w, "downlink": client_w}
        self.lines = {
            d: DelayLine(proxy.loop, lambda item, d=d: self._deliver(d, item))
            for d in ("uplink", "downlink")
        }
        self.closed = False
        self.eofs = 0
        # TCP's handshake: the proxy's kernel accepts the client's connection at once, so
        # its connect() returns before any latency; on a real network the SYN and the
        # SYN-ACK cross it first. The client's first bytes are treated as sent once a
        # round trip (two draws) has passed, then take their own one-way time — so a
        # connection's first request arrives three one-way times after connect(), as the
        # simulator's ``transport.handshake_rtts`` counts TCP's round trip.
        self.lines["uplink"].sent_from = proxy.loop.time() + proxy.latency() + proxy.latency()
        for d, until in proxy.held.get(user, {}).items():
            self.lines[d].hold_until(until)

    def _deliver(self, direction: str, item) -> None:
        writer = self.writers[direction]
        if self.closed or writer.is_closing():
            return
        if item is _EOF:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()
            self.eofs += 1
            if self.eofs == 2:  # both sides said goodbye: close the sockets
                self.closed = True
                for w in self.writers.values():
                    w.close()
        elif item is _RST:
            self.reset()
        else:
            writer.write(item)
            self.proxy.stats.counts[f"bytes_{direction}"] += len(item)

    async def pump(self, direction: str, reader: asyncio.StreamReader) -> None:
        """Read one side and queue its chunks for the other, until it closes."""
        line = self.lines[direction]
        latency = self.proxy.latency
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    line.put(latency(), _EOF)
                    return
                line.put(latency(), data)
        except (OSError, asyncio.IncompleteReadError):
            line.put(latency(), _RST)

    def reset(self) -> None:
        """Reset both sides now (what was queued is dropped, as an RST drops it)."""
        if self.closed:
            return
        self.closed = True
        for line in self.lines.values():
            line.clear()
        for writer in self.writers.values():
            _abort(writer)
        self.proxy.stats.counts["resets"] += 1
        self.proxy.links.discard(self)


class Proxy:
    """The proxy's listeners, its links, and the faults in force."""

    def __init__(self, cfg: dict) -> None:
        from immodel.sim.network import latency_sampler
        from immodel.sim.rng import Streams

        self.loop = asyncio.get_running_loop()
        sc = cfg["scenario"]
        self.latency = latency_sampler(sc["network.latency_ms"], Streams(sc["seed"])["latency"])
        # each access node's [tls, https] ports (None until it is up, and while it is down)
        self.upstream: list[list[int] | None] = [
            list(p) if p else None for p in cfg["access_ports"]
        ]
        self.links: set[Link] = set()
        self.held: dict[int | None, dict[str, float]] = {}  # user -> direction -> until
        self.stats = Stats(cfg["dir"], "proxy0")

    async def accept(self, node: int, which: int, reader, writer) -> None:
        self.stats.counts["connections"] += 1
        peer = writer.get_extra_info("peername")
        user = address_user(peer[0]) if peer else None
        ports = self.upstream[node]
        try:
            if ports is None:
                raise ConnectionRefusedError
            up_r, up_w = await asyncio.open_connection(HOST, ports[which])
        except OSError:
            _abort(writer)
            self.stats.counts["resets"] += 1
            return
        link = Link(self, user, writer, up_w)
        self.links.add(link)
        try:
            await asyncio.gather(link.pump("uplink", reader), link.pump("downlink", up_r))
        finally:
            # both sides ended; the link stays until its queued bytes are out
            self.links.discard(link)

    def command(self, cmd: dict) -> None:
        op = cmd["op"]
        if op == "partition":
            until = float(cmd["until"])
            directions = (
                ("uplink", "downlink") if cmd["direction"] == "both" else (cmd["direction"],)
            )
            users = set(cmd["users"])
            for u in users:
                held = self.held.setdefault(u, {})
                for d in directions:
                    held[d] = max(held.get(d, 0.0), until)
            for link in list(self.links):
                if link.user in users:
                    for d in directions:
                        link.lines[d].hold_until(until)
                        self.stats.counts["chunks_held"] += len(link.lines[d].queue)
        elif op == "reset":
            users = set(cmd["users"])
            for link in list(self.links):
                if link.user in users:
                    link.reset()
        elif op == "upstream":
            self.upstream[int(cmd["node"])] = cmd["ports"]
        else:
            raise ValueError(f"unknown proxy command {op!r}")

    async def serve(self) -> None:
        ports: list[int] = []
        for node in range(len(self.upstream)):
            for which in (0, 1):

                def handler(r, w, node=node, which=which):
                    return self.accept(node, which, r, w)

                server = await asyncio.start_server(handler, HOST, 0)
                ports.append(server.sockets[0].getsockname()[1])
        announce_ready(*ports)


def main(argv: list[str]) -> None:
    cfg = load_config(argv[0])

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        proxy = Proxy(cfg)
        await proxy.serve()
        flusher = asyncio.create_task(proxy.stats.keep_flushing())
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)

        async def commands() -> None:
            while line := await reader.readline():  # b"": the orchestrator is gone
                cmd = json.loads(line)
                proxy.command(cmd)
                print("OK " + cmd["op"], flush=True)  # applied (a few lines a run)

        task = asyncio.create_task(commands())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait((task, stopper), return_when=asyncio.FIRST_COMPLETED)
        flusher.cancel()
        proxy.stats.flush()
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
        sys.stdout.flush()
        import os

        os._exit(0)

    asyncio.run(runner())


if __name__ == "__main__":
    main(sys.argv[1:])

"""What every process of the real harness shares: its configuration file, the run clock,
per-process counters written to disk, and the start-up handshake with the orchestrator.

A server process is started as ``python -m immodel.real.<role> CONFIG.json INDEX
[PORT]``; it binds ``127.0.0.1`` (port 0 lets the OS choose; a restarted logic process
gets its old port back), then prints one line ``READY <port>`` on stdout, which the
orchestrator waits for. Times on the run clock are ``time.monotonic() - t0`` seconds,
with ``t0`` from the configuration: CLOCK_MONOTONIC is one clock for every process of
the machine, so the processes' times are comparable.

Counters (pushes retransmitted, sync pages answered, …) are rewritten to
``stats-<role><index>-<pid>.json`` twice a second and at a clean exit, so a process
killed by a fault loses at most the last half second of its counts; levels (a logic
node's pending-ACK entries) go to ``gauge-<role><index>.json`` at the same times, for
the load samples. A server's only command on its stdin is ``{"op": "mark"}`` (answered
``OK mark``): the sending period starts, and the counts of :attr:`Stats.run` start over.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

#: Everything binds here: the harness never listens beyond this machine.
HOST = "127.0.0.1"
STATS_PERIOD_S = 0.5


def run_sync(coro) -> Any:
    """Run ``coro`` to completion and return its result, from plain code or from code
    that already runs inside an event loop (a Jupyter kernel): there it runs in a fresh
    loop on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def load_config(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class RunClock:
    """Seconds on the run clock (``time.monotonic() - t0``)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0

    def __call__(self) -> float:
        return time.monotonic() - self.t0


class Stats:
    """A process's counters, flushed to its stats file periodically and at exit.

    ``run`` counts from the sending period's start on (a logic server's frames by
    direction and op, ``in_send``, ``out_push``, …, and the work they carried):
    :meth:`mark` (the orchestrator's ``mark`` command, sent when it starts counting the
    processes' CPU) clears it, so that these counts and the CPU time cover the same
    interval; they are written as ``run_<key>``."""

    def __init__(self, directory: str, name: str) -> None:
        self.counts: Counter[str] = Counter()
        self.run: Counter[str] = Counter()
        self.name = name
        self.path = Path(directory) / f"stats-{name}-{os.getpid()}.json"
        self.gauge = None  # a function returning levels to publish, e.g. pending ACKs

    def mark(self) -> None:
        """The sending period starts: count ``run`` from now on."""
        self.run.clear()

    def flush(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        out = dict(self.counts)
        out.update({f"run_{k}": v for k, v in self.run.items()})
        tmp.write_text(json.dumps(out), encoding="utf-8")
        os.replace(tmp, self.path)
        if self.gauge is not None:  # the current value of a level (the last instance's)
            gauge = self.path.with_name(f"gauge-{self.name}.json")
            tmp = gauge.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.gauge()), encoding="utf-8")
            os.replace(tmp, gauge)

    async def keep_flushing(self) -> None:
        while True:
            await asyncio.sleep(STATS_PERIOD_S)
            self.flush()


def read_stats(directory: str, prefix: str) -> Counter[str]:
    """The counters of every process whose stats file starts with ``prefix`` (summed over
    the instances a restart made)."""
    total: Counter[str] = Counter()
    for path in Path(directory).glob(f"stats-{prefix}*.json"):
        try:
            total.update(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a file being replaced at the moment of reading
    return total


def read_gauge(directory: str, name: str) -> dict[str, Any]:
    """The levels process ``name`` published last (empty before its first flush)."""
    try:
        return json.loads((Path(directory) / f"gauge-{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def announce_ready(*ports: int) -> None:
    """Tell the orchestrator the process listens: ``READY <port> [<port>…]``."""
    print("READY " + " ".join(str(p) for p in ports), flush=True)


def serve_until_terminated(main_coro_factory, stats: Stats, on_command=None) -> None:
    """Run the process's event loop until SIGTERM/SIGINT, then flush its counters.

    A parent that dies leaves the process orphaned; it also stops when its stdin (a pipe
    from the orchestrator) closes, so no server outlives the harness. With
    ``on_command``, each line on stdin is a JSON command given to it, answered ``OK
    <op>`` on stdout once applied."""

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        pending = bytearray()
        loop.add_reader(
            sys.stdin.fileno(), lambda: _stdin_readable(stop, stats, on_command, pending)
        )
        task = asyncio.create_task(main_coro_factory())
        flusher = asyncio.create_task(stats.keep_flushing())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait((task, stopper), return_when=asyncio.FIRST_COMPLETED)
        flusher.cancel()
        stats.flush()
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # a server that could not start or failed: exit 1
        # A clean stop ends here: its counters are on disk and every store transaction
        # is committed, so the process leaves at once instead of cancelling each
        # connection's task (which only logs noise on the way out).
        sys.stdout.flush()
        os._exit(0)

    asyncio.run(runner())


def _stdin_readable(stop: asyncio.Event, stats: Stats | None, on_command, pending) -> None:
    try:
        data = os.read(sys.stdin.fileno(), 4096)
    except OSError:
        data = b""
    if not data:
        asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
        stop.set()
        return
    # commands, one JSON object per line, each answered ``OK <op>`` once applied: the
    # orchestrator's ``{"op": "mark"}`` (the sending period starts: the run's counters
    # are reset), and the process's own (``on_command``)
    pending.extend(data)
    while b"\n" in pending:
        line, _, rest = bytes(pending).partition(b"\n")
        pending[:] = rest
        try:
            command = json.loads(line)
            op = command.get("op")
        except (ValueError, AttributeError):
            continue
        if op == "mark" and stats is not None:
            stats.mark()
        elif on_command is not None:
            on_command(command)
        else:
            continue
        print(f"OK {op}", flush=True)

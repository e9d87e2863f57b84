"""Bytes of records per delivered message: what the :class:`~immodel.sim.records.Recorder`
holds at the end of a run, and the run's traced peak memory.

Usage::

    .venv/bin/python benchmarks/bench_records.py                    # 10k push users × 60 s
    .venv/bin/python benchmarks/bench_records.py --users 1000 --duration 30 --kind long_poll
    .venv/bin/python benchmarks/bench_records.py --calls 200000   # µs per recorder call

Builds and runs one world under :mod:`tracemalloc` and prints, per delivered message and
per client: the recorder's own size (every object reachable from it, walked once, without
the per-user tables the world shares with it) and the traced peak of the whole run (world,
protocol state and records). Run it with ``PYTHONPATH`` on another checkout to compare two
versions of the recorder on the same machine; a figure, not an assertion. ``--calls N``
times the recorder alone instead: N messages to one recipient each, with the calls a push
delivery makes (``sent``, ``stored``, ``shown``, three ``request`` rows), in µs per call.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import warnings
from array import array

# What the world hands the recorder and keeps itself: not the records' own cost.
_SHARED_ATTRS = ("devices", "recipient_kind")


def deep_size_bytes(root: object) -> int:
    """``sys.getsizeof`` summed over every object reachable from ``root`` (each counted
    once): containers, arrays, instances with ``__dict__`` or ``__slots__``."""
    seen: set[int] = set()
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, (str, bytes, int, float, bool, array)) or obj is None:
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        else:
            if obj is not root and type(obj).__module__ == "builtins":
                continue
            d = getattr(obj, "__dict__", None)
            if d is not None:
                stack.extend(v for k, v in d.items() if obj is not root or k not in _SHARED_ATTRS)
            for cls in type(obj).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if obj is root and name in _SHARED_ATTRS:
                        continue
                    if hasattr(obj, name):
                        stack.append(getattr(obj, name))
    return total


def time_calls(n: int) -> None:
    """CPU time of the recorder's per-event calls on ``n`` 1:1 messages (median of 5
    runs; CPU time, not wall time, so that other jobs on the machine matter less)."""
    from immodel.protocol.messages import Message
    from immodel.sim.records import Recorder

    msgs = [
        Message(f"{i % 1000}-{i}", i % 1000, f"d{i % 1000}-{i % 997 + 1000}", False, 100)
        for i in range(n)
    ]
    online = {1: True}
    best: dict[str, list[float]] = {"sent": [], "stored": [], "shown": [], "request": []}
    for _ in range(5):
        rec = Recorder()
        t0 = time.process_time()
        for i, m in enumerate(msgs):
            rec.sent(float(i), m, (1,))
        t1 = time.process_time()
        for i, m in enumerate(msgs):
            rec.stored(float(i), m, i, online)
        t2 = time.process_time()
        for i, m in enumerate(msgs):
            rec.shown(float(i), m, i, 1, "push")
        t3 = time.process_time()
        for i in range(3 * n):
            rec.request(float(i), i % 1000, "ack", 1, 60)
        t4 = time.process_time()
        best["sent"].append((t1 - t0) / n)
        best["stored"].append((t2 - t1) / n)
        best["shown"].append((t3 - t2) / n)
        best["request"].append((t4 - t3) / (3 * n))
    print(
        " ".join(f"{k}={1e6 * sorted(v)[2]:.3f}us" for k, v in best.items()),
        f"(median of 5, {n} messages)",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=60.0, help="simulated seconds")
    p.add_argument("--rate", type=float, default=0.01, help="messages per user per second")
    p.add_argument("--kind", default="push", help="transport.kind")
    p.add_argument("--calls", type=int, default=0, help="time N recorder calls instead")
    a = p.parse_args()
    if a.calls:
        time_calls(a.calls)
        return

    from immodel.scenario import Scenario
    from immodel.sim import model
    from immodel.sim.world import World

    warnings.simplefilter("ignore")
    scenario = Scenario.load(
        "baseline",
        {
            "transport.kind": a.kind,
            "workload.users": a.users,
            "workload.send_rate_per_user": a.rate,
            "duration_s": a.duration,
            "drain_s": 10.0,
        },
    )
    tracemalloc.start()
    world = World(scenario)
    t0 = time.perf_counter()
    world.run()
    run_s = time.perf_counter() - t0
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rec_bytes = deep_size_bytes(world.rec)
    s = model.collect(world, started_at=t0).summary
    per = max(1, s["deliveries"])
    print(
        f"{a.kind} users={a.users} duration_s={a.duration:g} deliveries={s['deliveries']} "
        f"run_s={run_s:.1f} (under tracemalloc)"
    )
    print(
        f"records: {rec_bytes / per:.0f} B per delivered message, "
        f"{rec_bytes / a.users:.0f} B per client ({rec_bytes / 2**20:.1f} MiB)"
    )
    print(
        f"tracemalloc peak (world + run): {peak / per:.0f} B per delivered message, "
        f"{peak / a.users / 1024:.1f} KiB per client ({peak / 2**20:.1f} MiB)"
    )


if __name__ == "__main__":
    main()

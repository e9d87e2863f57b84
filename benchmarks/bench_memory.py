"""Bytes per message: what one run holds at its end, by the module that allocated it.

Usage::

    .venv/bin/python benchmarks/bench_memory.py                 # 20 000 push users × 300 s
    .venv/bin/python benchmarks/bench_memory.py --users 5000 --lines 30

Runs the baseline scenario (push, 0.01 msg/s per user, 10 s drain) under
:mod:`tracemalloc` and prints the memory traced at the end of the run (world, protocol
state and records; the frames are not built), per user and per message sent, then what
the run added, grouped by the file (and with ``--lines``, the line) that allocated it, in
bytes per message. With random 1:1 pairs nearly every message opens a conversation, so
what is kept per conversation shows up per message too. The goal behind it: a million
push users × 600 s at this rate (~6 M messages) in 4 GiB, ~600 bytes per message
everything included. Run it with ``PYTHONPATH`` on another checkout to compare; a
figure, not an assertion (tracemalloc's bytes do not depend on the machine's load, its
run time does: several minutes at the default size).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=300.0, help="simulated sending s")
    parser.add_argument("--rate", type=float, default=0.01, help="messages/s per user")
    parser.add_argument("--lines", type=int, default=0, help="also the N largest lines")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from immodel.scenario import Scenario
    from immodel.sim.world import World

    scenario = Scenario.load(
        "baseline",
        {
            "workload.users": args.users,
            "duration_s": args.duration,
            "drain_s": 10.0,
            "workload.send_rate_per_user": args.rate,
        },
    )
    tracemalloc.start(1)
    world = World(scenario)
    built = tracemalloc.take_snapshot()
    t0 = time.process_time()
    world.run()
    cpu_s = time.process_time() - t0
    end = tracemalloc.take_snapshot()
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    sent = len(world.rec.message_outcomes())
    print(
        f"{args.users} push users × {args.duration:g} s at {args.rate:g} msg/s: {sent} messages, "
        f"run {cpu_s:.0f} s CPU"
    )
    print(
        f"at the end: {current / 2**20:.1f} MiB, {current / args.users / 1024:.2f} KiB per user, "
        f"{current / max(sent, 1):.0f} B per message"
    )
    by_file = end.compare_to(built, "filename")
    grown = sum(s.size_diff for s in by_file)
    print(f"added by the run: {grown / max(sent, 1):.0f} B per message; by file:")
    for s in by_file[:15]:
        name = s.traceback[0].filename.split("immodel/")[-1]
        print(f"  {s.size_diff / max(sent, 1):7.0f} B/msg  {name}")
    if args.lines:
        print("by line:")
        for s in end.compare_to(built, "lineno")[: args.lines]:
            frame = s.traceback[0]
            name = f"{frame.filename.split('immodel/')[-1]}:{frame.lineno}"
            print(f"  {s.size_diff / max(sent, 1):7.1f} B/msg  {s.count_diff:9d}  {name}")


if __name__ == "__main__":
    main()

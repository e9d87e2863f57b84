"""Does a long run stay fast? Events per CPU second, window by window, through one run.

Usage::

    .venv/bin/python benchmarks/bench_long_run.py                 # 10 000 push users × 3 000 s
    .venv/bin/python benchmarks/bench_long_run.py --users 2000 --duration 3000 --windows 5
    .venv/bin/python benchmarks/bench_long_run.py --set reliability.sync_cursor=inbox

Runs the baseline scenario (``transport.kind`` as given, 0.01 msg/s per user) and, at
equal steps of simulated time, notes the CPU time (``time.process_time``), the events
scheduled so far and the resident memory. Prints each window's events per CPU second and
the last window's rate as a fraction of the first (the goal is ≥ 0.8), with the
conversations a user has by the end (random 1:1 pairs: ~2 × rate × duration), and from
the run's summary the sync stage's utilisation, the sync bytes and what was lost or
shown twice. ``--set KEY=VALUE`` (repeatable) overrides a scenario key. A figure, not an
assertion.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import time
import warnings


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="push", choices=["push", "long_poll", "short_poll"])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=3000.0, help="seconds of sending")
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a key"
    )
    args = parser.parse_args()

    from immodel.scenario import Scenario, parse_override
    from immodel.sim import model
    from immodel.sim.kernel import later
    from immodel.sim.world import World

    warnings.simplefilter("ignore")
    world = World(
        Scenario.load(
            "baseline",
            {
                "transport.kind": args.kind,
                "workload.users": args.users,
                "workload.send_rate_per_user": 0.01,
                "duration_s": args.duration,
                "drain_s": 10.0,
                **dict(parse_override(o) for o in args.set),
            },
        )
    )
    env = world.env
    step_s = args.duration / args.windows
    marks: list[tuple[float, float, int, float]] = []

    def mark(_) -> None:
        # next(_eid) counts events scheduled; the mark's own events are a handful
        marks.append((env.now, time.process_time(), next(env._eid), _rss_mib()))
        if env.now + step_s <= args.duration + 1e-9:
            later(env, step_s, mark, None)

    later(env, 0.0, mark, None)
    world.run()
    print(f"{args.kind}, {args.users} users × {args.duration:g} s at 0.01 msg/s per user")
    rates = []
    for (t0, c0, e0, _), (t1, c1, e1, rss) in itertools.pairwise(marks):
        rate = (e1 - e0) / max(c1 - c0, 1e-9)
        rates.append(rate)
        print(f"  t {t0:7.0f}–{t1:7.0f} s: {rate:9.0f} events per CPU s, RSS {rss:7.0f} MiB")
    convs = sum(len(world.logic.store.conversations_of(u)) for u in range(args.users))
    print(f"last window / first window: {rates[-1] / rates[0]:.2f} (goal ≥ 0.8)")
    print(f"conversations per user at the end: {convs / args.users:.1f}")
    summary = model.collect(world).summary
    print(
        f"sync stage utilisation {summary['utilization_sync']:.4f}, "
        f"sync bytes {summary['sync_bytes']}, sync pulls {summary['sync_pulls']}, "
        f"lost {summary['lost']}, duplicates {summary['duplicates']}"
    )


if __name__ == "__main__":
    main()

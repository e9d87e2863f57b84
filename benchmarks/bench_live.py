"""One live room at real scale: wall time, events and per-room memory.

Usage::

    .venv/bin/python benchmarks/bench_live.py [--viewers 1000000] [--duration 60]
        [--rate 40] [--cohorts 1000] [--mode cohort]

The default is the goal configuration: one room of 1,000,000 long-polling viewers for
60 s with 40 messages per second offered against the default cap of 40, in cohort mode
(``workload.live_cohorts`` poll-phase cohorts). The access tier is sized for the load
(20 nodes × 8 cores: a million polls a second at 0.03 ms each is 30 cores' worth); the
drain is 5 s (no reliable traffic; the live viewers need a window and a round trip).

It prints the time to build the world, to simulate it and to build the records and the
summary, the events, the viewer-deliveries, the room's state in bytes (cohorts, held
polls, recent buffer and publish times: what the cohort abstraction keeps per room, the
records excluded) and the process's peak RSS. A figure, not an assertion; runs in one
process on one core.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings


def main(argv: list[str]) -> None:
    from immodel.scenario import Scenario
    from immodel.sim import model
    from immodel.sim.world import World

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--viewers", type=int, default=1_000_000)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=40.0)
    p.add_argument("--cohorts", type=int, default=1000)
    p.add_argument("--mode", default="cohort", choices=("auto", "cohort", "per_viewer"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")  # the short drain is deliberate (see the docstring)
    scenario = Scenario.load(
        "baseline",
        {
            "transport.kind": "hybrid",
            "workload.users": 2,
            "workload.send_rate_per_user": 0.0,
            "duration_s": args.duration,
            "drain_s": 5.0,
            "network.latency_ms": {"dist": "lognormal", "median": 40.0, "p99": 300.0},
            "server.access_nodes": 20,
            "server.access_workers": 8,
            "workload.live_rooms": 1,
            "workload.live_audience": float(args.viewers),
            "workload.live_send_rate": args.rate,
            "workload.live_viewer_mode": args.mode,
            "workload.live_cohorts": args.cohorts,
        },
    )
    t0 = time.perf_counter()
    world = World(scenario)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    world.run()
    run_s = time.perf_counter() - t1
    room_bytes = world.live.state_bytes() / len(world.live.rooms)
    cohorts = sum(len(r.cohorts) for r in world.live.rooms)
    t2 = time.perf_counter()
    s = model.collect(world, started_at=t2).summary
    collect_s = time.perf_counter() - t2
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        f"viewers={args.viewers} duration_s={args.duration:g} rate={args.rate:g} "
        f"mode={args.mode} cohorts_at_end={cohorts}\n"
        f"build_s={build_s:.2f} run_s={run_s:.2f} records_and_summary_s={collect_s:.2f} "
        f"total_s={build_s + run_s + collect_s:.2f}\n"
        f"events={s['sim_events']} offered={s['live_messages_offered']} "
        f"accepted={s['live_messages_accepted']} dropped={s['live_messages_dropped']} "
        f"viewer_deliveries={s['live_deliveries']} missed={s['live_missed']} "
        f"p50_ms={s['live_latency_p50_ms']:.1f} p99_ms={s['live_latency_p99_ms']:.1f}\n"
        f"room_state_KiB={room_bytes / 1024:.1f} live_trace_deliver_rows={_rows(world)} "
        f"peak_rss_MiB={rss_mib:.0f}"
    )


def _rows(world) -> int:
    return sum(len(entry[4]) for entry in world.live.shown)


if __name__ == "__main__":
    main(sys.argv[1:])

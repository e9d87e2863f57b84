"""Simulator throughput and memory, against the bare SimPy ceiling measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_sim.py                 # 1k, 10k, 100k users × 3 transports
    .venv/bin/python benchmarks/bench_sim.py --full          # + 100k users, 10 min of push
    .venv/bin/python benchmarks/bench_sim.py --users 1000 --duration 10
    .venv/bin/python benchmarks/bench_sim.py --users 1000000 --kinds push --duration 120 \
        --set server.nodes=4      # a million users need more than one logic node

For each transport (push, long poll, short poll) and user count it prints: simulated
events per wall second, delivered messages per wall second, memory per idle client (RSS
growth while building the world, before anything runs) and peak RSS per client; and,
for the same number of processes, the bare SimPy ceiling — N processes each looping on
``env.timeout`` — with the model's event rate as a ratio of it. Each configuration runs
in a fresh subprocess so RSS figures are its own. Figures, not assertions: speed goals
are recorded in the README's Performance section with the command that produced them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _model(args: tuple[str, int, float, float, tuple[str, ...]], out: mp.Queue) -> None:
    kind, users, duration_s, rate, settings = args
    from immodel.scenario import Scenario, parse_override
    from immodel.sim import model
    from immodel.sim.world import World

    scenario = Scenario.load(
        "baseline",
        {
            "transport.kind": kind,
            "workload.users": users,
            "workload.send_rate_per_user": rate,
            "duration_s": duration_s,
            "drain_s": 10.0,
            **dict(parse_override(text) for text in settings),
        },
    )
    rss0 = _rss_mib()
    world = World(scenario)
    rss_idle = _rss_mib()
    t0 = time.perf_counter()
    world.run()
    run_s = time.perf_counter() - t0
    summary = model.collect(world, started_at=t0).summary
    events = summary["sim_events"]
    total_s = time.perf_counter() - t0
    out.put(
        {
            "events": events,
            "run_s": run_s,
            "total_s": total_s,
            "deliveries": summary["deliveries"],
            "idle_kib_per_client": (rss_idle - rss0) * 1024.0 / users,
            "peak_kib_per_client": (_peak_rss_mib() - rss0) * 1024.0 / users,
            "lost": summary["lost"],
            "busiest_stage": summary["server_utilization_max_stage"],
            "latency_p50_ms": summary["latency_p50_ms"],
        }
    )


def _warn_if_saturated(m: dict) -> None:
    """A server stage busy all the time measures a queue that grows for the whole run
    (more events per message, latency in seconds), not the deployment: say so."""
    if m["busiest_stage"] is not None and m["busiest_stage"] >= 0.95:
        print(
            f"    ^ saturated: the busiest server stage is {m['busiest_stage']:.0%} busy, "
            f"latency p50 {m['latency_p50_ms']:.0f} ms; size the deployment "
            "(--set server.nodes=N) for these users",
            flush=True,
        )


def _bare(args: tuple[int, int], out: mp.Queue) -> None:
    """The SimPy ceiling: ``processes`` processes looping on timeouts, ``events`` events."""
    processes, events = args
    import simpy

    env = simpy.Environment()

    def loop(env, period):
        while True:
            yield env.timeout(period)

    for i in range(processes):
        env.process(loop(env, 1.0 + i / processes))
    horizon = events / processes
    t0 = time.perf_counter()
    env.run(until=horizon)
    elapsed = time.perf_counter() - t0
    out.put({"events_per_s": next(env._eid) / elapsed})


def _in_child(fn, args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(args, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1000,10000,100000")
    parser.add_argument("--kinds", default="push,long_poll,short_poll")
    parser.add_argument("--duration", type=float, default=20.0, help="simulated sending s")
    parser.add_argument("--rate", type=float, default=0.01, help="messages/s per user")
    parser.add_argument("--full", action="store_true", help="add 100k users × 600 s of push")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="scenario overrides for every model run, e.g. server.nodes=4",
    )
    args = parser.parse_args()
    from immodel.errors import ConfigError
    from immodel.scenario import Scenario, parse_override

    try:  # a bad key or value: one line here, not a traceback in every child
        Scenario.load("baseline", dict(parse_override(text) for text in args.set))
    except ConfigError as exc:
        parser.error(str(exc))
    users_list = [int(u) for u in args.users.split(",")]
    kinds = args.kinds.split(",")
    header = (
        f"{'transport':<11} {'users':>7} {'events':>10} {'ev/s':>9} {'bare ev/s':>10} "
        f"{'ratio':>6} {'deliv/s':>9} {'idle KiB':>9} {'peak KiB':>9} {'wall s':>7}"
    )
    print(f"duration {args.duration:g} s simulated (+10 s drain), {args.rate:g} msg/s per user")
    print(header)
    print("-" * len(header))
    bare_cache: dict[int, float] = {}
    for users in users_list:
        for kind in kinds:
            m = _in_child(_model, (kind, users, args.duration, args.rate, tuple(args.set)))
            if users not in bare_cache:
                bare_cache[users] = _in_child(_bare, (users, max(1_000_000, 5 * users)))[
                    "events_per_s"
                ]
            bare = bare_cache[users]
            rate = m["events"] / m["run_s"]
            print(
                f"{kind:<11} {users:>7} {m['events']:>10} {rate:>9.0f} {bare:>10.0f} "
                f"{rate / bare:>6.2f} {m['deliveries'] / m['total_s']:>9.0f} "
                f"{m['idle_kib_per_client']:>9.2f} {m['peak_kib_per_client']:>9.2f} "
                f"{m['total_s']:>7.1f}",
                flush=True,
            )
            _warn_if_saturated(m)
    if args.full:
        m = _in_child(_model, ("push", 100_000, 600.0, 0.01, tuple(args.set)))
        print(
            f"\n100k users, 600 s of push at 0.01 msg/s per user: {m['total_s']:.1f} s wall "
            f"({m['run_s']:.1f} s simulating, the rest building records and the summary), "
            f"{m['events']} events, {m['deliveries']} deliveries, lost {m['lost']}, "
            f"peak {m['peak_kib_per_client']:.2f} KiB per client"
        )
        _warn_if_saturated(m)


if __name__ == "__main__":
    main()

"""Idle short pollers in bulk: the aggregated mode against the exact mode, and at scale.

Usage::

    .venv/bin/python benchmarks/bench_idle_poll.py [--users 10000] [--duration 60]
        [--interval 2] [--rate 0.01] [--seeds 1 2 3] [--modes exact aggregated]
    .venv/bin/python benchmarks/bench_idle_poll.py --users 1000000 --duration 600 \\
        --interval 10 --rate 0.0002 --nodes 4 --access-nodes 2 --modes aggregated

With ``--deterministic`` latency (40 ms) and service times are constant: both modes then
see the same messages at the same instants, and the per-delivery difference of latency
(aggregated − exact: mean, p1, p99) is the change in queueing the batches make, which
``--poll-ms`` (the poll stage's service time) makes larger or smaller.

The default runs 10,000 fixed-rate short pollers (lognormal latency, median 40 ms, p99
300 ms; exponential service) for 60 s in both ``transport.idle_poll_mode`` values, one
after the other in this process, for each seed, and prints per run requests/s, the
empty-poll fraction, the utilisation of the server (both tiers), the access tier, the
logic tier and the poll stage, latency p50/p99, events and wall time (building the
world, simulating, the records and the summary). With both modes it then prints
aggregated / exact per metric: the mean of the per-seed ratios and, with two seeds or
more, its 95 % t-interval. The last line gives the process's peak RSS (``ru_maxrss``:
the largest of the runs). A figure, not an assertion; one core.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
import warnings

METRICS = (
    "requests_per_s",
    "empty_poll_fraction",
    "server_utilization",
    "utilization_access",
    "utilization_logic",
    "utilization_poll",
    "latency_p50_ms",
    "latency_p99_ms",
)


def one_run(values: dict, mode: str) -> dict:
    """Build, run and summarise one world; the summary with the wall times added."""
    from immodel.scenario import Scenario
    from immodel.sim import model
    from immodel.sim.world import World

    scenario, _auto, _required = model.resolve_drain(
        Scenario.load("baseline", {**values, "transport.idle_poll_mode": mode})
    )
    t0 = time.perf_counter()
    world = World(scenario)
    t1 = time.perf_counter()
    world.run()
    t2 = time.perf_counter()
    result = model.collect(world, started_at=t2)
    s = dict(result.summary)
    t3 = time.perf_counter()
    m = result.messages.set_index(["msg_id", "recipient"])
    s["latency_by_delivery"] = m["latency_ms"]
    s.update(build_s=t1 - t0, run_s=t2 - t1, collect_s=t3 - t2, wall_total_s=t3 - t0)
    return s


def interval(values: list[float]) -> str:
    """Mean and, for two values or more, the half-width of its 95 % t-interval."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:.4f}"
    from scipy import stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return f"{mean:.4f} ± {half:.4f}"


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--interval", type=float, default=2.0, help="poll interval (s)")
    p.add_argument("--rate", type=float, default=0.01, help="messages/s per user")
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--nodes", type=int, default=1, help="logic nodes")
    p.add_argument("--access-nodes", type=int, default=1)
    p.add_argument(
        "--modes", nargs="+", default=["exact", "aggregated"], choices=("exact", "aggregated")
    )
    p.add_argument("--deterministic", action="store_true", help="constant latency and service")
    p.add_argument("--poll-ms", type=float, default=None, help="server.poll_ms")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    values = {
        "transport.kind": "short_poll",
        "transport.poll_interval_s": args.interval,
        "workload.users": args.users,
        "workload.send_rate_per_user": args.rate,
        "duration_s": args.duration,
        "network.latency_ms": {"dist": "lognormal", "median": 40.0, "p99": 300.0},
        "server.nodes": args.nodes,
        "server.access_nodes": args.access_nodes,
    }
    if args.deterministic:
        values["network.latency_ms"] = 40.0
        values["server.service_dist"] = "constant"
    if args.poll_ms is not None:
        values["server.poll_ms"] = args.poll_ms
    print(
        f"users={args.users} duration_s={args.duration:g} poll_interval_s={args.interval:g} "
        f"rate={args.rate:g} nodes={args.nodes} access_nodes={args.access_nodes}"
    )
    results: dict[str, list[dict]] = {m: [] for m in args.modes}
    for seed in args.seeds:
        latency = {}
        for mode in args.modes:
            s = one_run({**values, "seed": seed}, mode)
            latency[mode] = s.pop("latency_by_delivery")
            results[mode].append(s)
            shown = " ".join(f"{k}={s[k]:.6g}" for k in METRICS)
            print(
                f"seed={seed} mode={mode} {shown} deliveries={s['deliveries']} "
                f"lost={s['lost']} idle_polls={s['idle_polls']} events={s['sim_events']} "
                f"build_s={s['build_s']:.1f} run_s={s['run_s']:.1f} "
                f"collect_s={s['collect_s']:.1f} wall_total_s={s['wall_total_s']:.1f}",
                flush=True,
            )
        if args.deterministic and len(latency) == 2:
            d = (latency["aggregated"] - latency["exact"]).dropna()
            print(
                f"seed={seed} latency aggregated - exact per delivery (ms): "
                f"mean={d.mean():.4f} p1={d.quantile(0.01):.4f} p99={d.quantile(0.99):.4f} "
                f"other_poll={int((d.abs() > 500.0 * args.interval).sum())} of {len(d)}"
            )
    if len(args.modes) == 2:
        print("aggregated / exact (mean over seeds, 95 % t-interval):")
        for k in (*METRICS, "sim_events", "wall_total_s"):
            ratios = [
                a[k] / e[k]
                for a, e in zip(results["aggregated"], results["exact"], strict=True)
                if e[k]
            ]
            if ratios:
                print(f"  {k}: {interval(ratios)}")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak_rss_mib={rss_mib:.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])

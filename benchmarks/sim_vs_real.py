"""Simulated vs real on matched scenarios: the table the README quotes.

    .venv/bin/python benchmarks/sim_vs_real.py [--users N] [--duration S] [--latency-ms MS]
                                               [--seeds K]

Calibrates the simulator on this machine for each transport
(:func:`immodel.experiments.sim_vs_real.calibrate`), then runs push, long polling, short
polling, a logic-node crash (push, two logic nodes) and an access-node crash (a reset
storm: its connections reset, its clients reconnect to the other node) both ways with
the same seed, and prints, per scenario, the simulated and real figures and their ratio
(:func:`~immodel.experiments.sim_vs_real.compare`) for the first seed. With ``--seeds K``
each scenario runs K matched pairs (seeds 1..K, one calibration per transport), and a
second table gives the p50 and p99 of each side's deliveries pooled over the K runs, with
the real pooled quantile's distribution-free 95 % interval
(:func:`~immodel.experiments.sim_vs_real.pooled_quantile`): one run's p99 rests on ~5
deliveries and moves between runs on a shared machine.
``notebooks/11_sim_vs_real.py`` is the same with figures.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from immodel import Scenario
from immodel.experiments.sim_vs_real import (
    busy_per_node,
    calibrate,
    compare,
    latency_legs_ms,
    leg_dependence,
    matched_runs,
    pooled_quantile,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=1, help="matched pairs per scenario")
    parser.add_argument(
        "--calibrate-at-latency",
        action="store_true",
        help="calibrate the loopback at --latency-ms (default: at 0 ms)",
    )
    parser.add_argument("--calibration-runs", type=int, default=1, help="real runs pooled")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # explicit short drains on purpose (loopback, no loss)
    base = {
        "workload.users": args.users,
        "workload.send_rate_per_user": 0.5,
        "duration_s": args.duration,
        "drain_s": 3.0,
    }
    t0 = time.perf_counter()
    runs = {
        "push": {},
        "long_poll": {"transport.kind": "long_poll", "transport.long_poll_hold_s": 5.0},
        "short_poll": {"transport.kind": "short_poll", "transport.poll_interval_s": 1.0},
        "push, logic crash": {
            "server.nodes": 2,
            "faults": [{"kind": "server_crash", "at_s": args.duration / 3, "down_s": 2.0}],
        },
        # a connection-reset storm: an access node dies and resets every connection it held
        "push, access node crash": {
            "server.access_nodes": 2,
            "faults": [
                {"kind": "gateway_crash", "at_s": args.duration / 3, "down_s": 2.0, "node": 1}
            ],
        },
    }
    pairs = {}
    replicated: dict[str, list] = {}
    calibrations = {}  # per transport: HTTP polls cost the access tier more than frames
    measured: dict[str, dict] = {}  # what each calibration measured
    for label, extra in runs.items():
        kind = extra.get("transport.kind", "push")
        if kind not in calibrations:
            transport = {k: v for k, v in extra.items() if k.startswith("transport.")}
            measured[kind] = {}
            calibrations[kind] = calibrate(
                Scenario.load("baseline", {**base, **transport}),
                latency_ms=args.latency_ms if args.calibrate_at_latency else 0.0,
                runs=args.calibration_runs,
                details=measured[kind],
            )
        replicated[label] = []
        for seed in range(1, args.seeds + 1):
            sc = Scenario.load(
                "baseline",
                {**base, "network.latency_ms": args.latency_ms, **extra},
                seed=seed,
            )
            replicated[label].append(matched_runs(sc, calibrations[kind]))
        pairs[label] = replicated[label][0]
    table = compare(pairs)
    print(table.round(3).to_string(index=False))
    # utilisation is per node in the sending window on both sides (busy_per_node)
    for kind, m in measured.items():
        print(
            f"calibration {kind}: logic I/O {m['logic_io_ms_per_frame']:.4f} ms per frame"
            f" ({sum(m['logic_frames'])} frames), access {m['access_ms_per_frame']:.4f} ms"
            f" per frame; store_ms {calibrations[kind]['server.store_ms']}"
        )
    # the harness's own timing in each real run: how late its event loop woke a 10 ms
    # timer, and a poll answer's way back (access node -> client, latency included)
    keys = ("loadgen_lag_p99_ms", "loadgen_lag_max_ms", "poll_return_p50_ms", "poll_return_p99_ms")
    for label, (_sim, real) in pairs.items():
        figures = ", ".join(
            f"{k} {real.summary[k]:.1f}" for k in keys if real.summary.get(k) is not None
        )
        print(f"real {label}: {figures}")
    if args.seeds > 1:
        print(f"\npooled over {args.seeds} seeds (real: distribution-free 95 % interval):")
        for label, runs_of in replicated.items():
            for q in (0.5, 0.99):
                f = pooled_quantile(runs_of, q)
                print(
                    f"  {label:26s} p{round(q * 100):<2d} sim {f['sim']:7.1f} ms"
                    f" [{f['sim_low']:.1f}, {f['sim_high']:.1f}]"
                    f"  real {f['real']:7.1f} ms [{f['real_low']:.1f}, {f['real_high']:.1f}]"
                    f"  sim / real {f['ratio']:.2f} [{f['ratio_low']:.2f}, {f['ratio_high']:.2f}]"
                    f"  (n {f['n_sim']} / {f['n_real']})"
                )
            per_run = [
                s.summary["latency_p99_ms"] / r.summary["latency_p99_ms"] for s, r in runs_of
            ]
            print(
                f"  {label:26s} p99 sim / real per run: " + ", ".join(f"{x:.2f}" for x in per_run)
            )
            for tier in ("logic", "access"):
                sim_u = [busy_per_node(s, tier) for s, _ in runs_of]
                real_u = [busy_per_node(r, tier) for _, r in runs_of]
                print(
                    f"  {label:26s} utilization_{tier} per run sim / real: "
                    + ", ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(sim_u, real_u, strict=True))
                    + f"; pooled {sum(sim_u) / sum(real_u):.2f}"
                )
            sims, reals = [s for s, _ in runs_of], [r for _, r in runs_of]
            totals = [
                sum(x.summary[k] for x in side)
                for side in (sims, reals)
                for k in ("lost", "duplicates")
            ]
            print(
                f"  {label:26s} lost, duplicates over the runs: sim {totals[0]}, {totals[1]};"
                f" real {totals[2]}, {totals[3]}"
            )
    # Where the tail comes from: each delivery's sender leg (send -> stored) and recipient
    # leg (stored -> shown), their p99, and how much of the total's p99 the two legs'
    # dependence makes (a loaded machine slows both legs of a message together; the
    # simulator draws them independently)
    print("\nlegs (pooled), p99 ms: sender leg, recipient leg, total; legs' dependence:")
    for label, runs_of in replicated.items():
        for side, results in (("sim", [s for s, _ in runs_of]), ("real", [r for _, r in runs_of])):
            legs = [latency_legs_ms(r) for r in results]
            p99 = [
                np.percentile(np.concatenate([x[leg] for x in legs]), 99)
                for leg in ("send_to_stored", "stored_to_shown", "total")
            ]
            d = leg_dependence(results)
            print(
                f"  {label:26s} {side:4s} {p99[0]:7.1f} {p99[1]:7.1f} {p99[2]:7.1f}"
                f"  spearman {d['spearman']:+.2f}; p99 of the legs' sum {d['sum_quantile_ms']:.1f},"
                f" paired at random {d['shuffled_quantile_ms']:.1f}"
                f" [{d['shuffled_low_ms']:.1f}, {d['shuffled_high_ms']:.1f}]"
            )
    print(
        f"\n{args.users} users × {args.duration:g} s at 0.5 msg/s, latency {args.latency_ms:g} ms "
        f"one way; calibrated at {args.latency_ms if args.calibrate_at_latency else 0:g} ms, "
        f"{args.calibration_runs} run(s); load average {os.getloadavg()[0]:.1f}; "
        f"{time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()

"""Measure ``immodel real`` on this machine and write the ``calibrated-loopback`` preset.

    .venv/bin/python benchmarks/calibrate_loopback.py [--out PATH] [--users N] [--runs K]

Runs :func:`immodel.experiments.sim_vs_real.calibrate` on a small push scenario (the
baseline with ``--users`` users at 0.5 msg/s for 5 s): the logic operations measured
in-process; the access CPU per frame, the logic processes' CPU per frame beyond those
operations (their own I/O with the access tier, added to each operation's key for the
frames it makes) and the loopback's one-way time from real runs with no added latency
(``--runs`` real runs pooled, 3 by default: one short run's top quantiles are one or two
messages, and one scheduling hiccup decides them). Writes the
calibrated keys as a scenario (default ``immodel/scenarios/calibrated-loopback.toml``),
with the machine and the date in its description, and prints them. Another deployment is
calibrated the same way with its own measurements: the keys are the same (README, "Real
sockets").
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import tomli_w

from immodel import Scenario
from immodel.experiments.sim_vs_real import calibrate

ROOT = Path(__file__).resolve().parents[1]


def nested(keys: dict) -> dict:
    out: dict = {}
    for dotted, value in keys.items():
        table, name = dotted.split(".")
        out.setdefault(table, {})[name] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "immodel/scenarios/calibrated-loopback.toml"))
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3, help="real runs pooled for the loopback")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the calibration's short drain is on purpose
    base = Scenario.load(
        "baseline",
        {
            "workload.users": args.users,
            "workload.send_rate_per_user": 0.5,
            "duration_s": 5.0,
            "drain_s": 3.0,
        },
    )
    t0 = time.perf_counter()
    measured: dict = {}
    keys = calibrate(base, runs=args.runs, details=measured)
    when = time.strftime("%Y-%m-%d", time.gmtime())
    load = os.getloadavg()[0]
    doc = {
        "name": "calibrated-loopback",
        "description": (
            "push on the service times immodel real measured on its own servers "
            f"({platform.machine()}, {os.cpu_count()} cores, load {load:.1f}, {when}; the "
            f"logic tier's I/O {measured['logic_io_ms_per_frame']:.3f} ms per frame "
            "included) and the loopback's one-way time: the simulator's account of "
            "immodel real"
        ),
        **nested(keys),
    }
    Path(args.out).write_text(tomli_w.dumps(doc), encoding="utf-8")
    for key, value in keys.items():
        if key != "network.latency_ms":
            print(f"{key} = {value}")
    costs = ", ".join(f"{k} {v:.4f}" for k, v in measured["logic_costs_ms"].items())
    print(f"logic operations in-process (ms): {costs}")
    print(
        f"logic I/O {measured['logic_io_ms_per_frame']:.4f} ms per frame "
        f"({measured['logic_frames']} frames, cpu_s_logic {measured['cpu_s_logic']}); "
        f"access {measured['access_ms_per_frame']:.4f} ms per frame"
    )
    samples = keys["network.latency_ms"]["samples"]
    print(
        f"network.latency_ms: loopback one-way p50 {samples[len(samples) // 2]} ms, "
        f"p99 {samples[-1]} ms"
    )
    print(f"written to {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

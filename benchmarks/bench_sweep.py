"""How well a sweep uses the machine: one worker vs N processes vs a local Dask cluster.

Usage::

    .venv/bin/python benchmarks/bench_sweep.py                 # 3 repetitions + the demo
    .venv/bin/python benchmarks/bench_sweep.py --reps 5 --no-demo
    .venv/bin/python benchmarks/bench_sweep.py --users 300 --duration 60   # a quicker grid

It writes a 16-point sweep (the four transports × downlink loss 0, 5, 10, 20 %, one
replication, 1 000 users sending 0.02 messages/s for 120 s, then each point's own drain:
about 40 s of CPU in all, the transports and loss rates of different cost, as in a real
sweep) and runs it as the command line does,
``immodel sweep FILE --out DIR`` in a fresh folder each time, with

* ``--workers 1`` (in the sweep's own process),
* ``--workers N`` (a process pool; N = the number of cores unless ``--workers``),
* ``--scheduler local --workers N`` (a Dask LocalCluster),

the three one after the other within each repetition, so that whatever else the machine
is doing spreads over all three. For each it prints the median wall seconds, points per
second and the CPU seconds of the command and its worker processes (for Dask: of the
command only, its workers are not its waited-for children), then the two ratios
the team's goals are stated in: ``rate_N / rate_1 / N`` (goal ≥ 0.85) and
``dask wall / pool wall`` (goal ≤ 1.10). Every run's ``results.parquet`` is compared with
the first one-worker run, every column but ``wall_s``: a sweep must give the same
numbers wherever it runs. Finally it times ``immodel demo`` in a fresh folder (goal:
under 60 s on 2 cores).

The machine may be shared: the load average before each repetition and the CPU time are
printed so that a slow run can be told from a busy machine. Figures, not assertions:
the README's Performance section records them with this command.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP_TOML = """\
description = "bench_sweep: 16 small points of different cost"
scenario = "baseline"
replications = 1
seed = 7

[set]
"workload.users" = {users}
"workload.send_rate_per_user" = 0.02
duration_s = {duration}
drain_s = "auto"

[grid]
"network.downlink_loss" = [0.0, 0.05, 0.1, 0.2]
"transport.kind" = ["short_poll", "long_poll", "push", "hybrid"]
"""


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], log: Path) -> tuple[float, float]:
    """Run ``command`` to completion; (wall s, CPU s of it and its waited-for children)."""
    cpu0 = _children_cpu_s()
    t0 = time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t0, _children_cpu_s() - cpu0


def _results(folder: Path):
    """(results without ``wall_s``, the sum of the runs' ``wall_s``)."""
    import pandas as pd

    frame = pd.read_parquet(folder / "results.parquet")
    return frame.drop(columns=["wall_s"]), float(frame["wall_s"].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median is shown)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=120.0, help="sending period, s")
    parser.add_argument("--no-demo", action="store_true", help="skip timing `immodel demo`")
    parser.add_argument("--keep", action="store_true", help="keep the output folders")
    args = parser.parse_args()

    n = args.workers
    immodel = [sys.executable, "-m", "immodel"]
    root = Path(tempfile.mkdtemp(prefix="bench_sweep-"))
    sweep_file = root / "bench.toml"
    sweep_file.write_text(SWEEP_TOML.format(users=args.users, duration=args.duration))
    configs = {
        "workers 1": ["--workers", "1"],
        f"workers {n}": ["--workers", str(n)],
        f"dask local {n}": ["--scheduler", "local", "--workers", str(n)],
    }
    print(
        f"16 points ({args.users} users, {args.duration:g} s + auto drain, 4 transports × 4 "
        f"loss rates), {args.reps} repetition(s), N = {n} on {os.cpu_count()} core(s)"
    )
    walls: dict[str, list[float]] = {name: [] for name in configs}
    cpus: dict[str, list[float]] = {name: [] for name in configs}
    busy: dict[str, list[float]] = {name: [] for name in configs}
    reference = None
    mismatches = []
    try:
        for rep in range(args.reps):
            load1 = os.getloadavg()[0]
            line = [f"rep {rep + 1}: load {load1:.2f}"]
            for name, options in configs.items():
                out = root / f"{name.replace(' ', '-')}-{rep}"
                command = [*immodel, "sweep", str(sweep_file), "--out", str(out), *options]
                wall, cpu = _timed(command, root / f"{out.name}.log")
                walls[name].append(wall)
                cpus[name].append(cpu)
                line.append(f"{name} {wall:.1f} s")
                frame, in_runs_s = _results(out)
                busy[name].append(in_runs_s / (wall * (1 if name == "workers 1" else n)))
                if reference is None:
                    reference = frame
                elif not frame.equals(reference):
                    mismatches.append(f"{name}, rep {rep + 1}")
                if not args.keep:
                    shutil.rmtree(out)
            line.append(f"load after {os.getloadavg()[0]:.2f}")
            print("; ".join(line), flush=True)

        print(
            f"\n{'configuration':<16} {'wall s':>7} {'points/s':>9} {'CPU s':>7} {'busy':>6}"
            "  (medians)"
        )
        med = {name: statistics.median(w) for name, w in walls.items()}
        for name in configs:
            print(
                f"{name:<16} {med[name]:>7.1f} {16 / med[name]:>9.3f} "
                f"{statistics.median(cpus[name]):>7.1f} {statistics.median(busy[name]):>6.1%}"
            )
        print(
            "busy: the runs' own wall time (wall_s, summed) over workers × the command's wall "
            "time; the rest is start-up, scheduling, writing and idle workers. A shared "
            "machine slows runs and command alike, so it shows the sweep's own overhead."
        )
        one, pool, dask = (med[name] for name in configs)
        print(f"\nrate_{n} / rate_1 / {n}  = {one / pool / n:.3f}   (goal ≥ 0.85)")
        print(f"dask wall / pool wall = {dask / pool:.3f}   (goal ≤ 1.10)")
        print(
            "results identical to the one-worker run: "
            + ("yes, every run" if not mismatches else "NO: " + ", ".join(mismatches))
        )

        if not args.no_demo:
            out = root / "demo"
            load1 = os.getloadavg()[0]
            wall, cpu = _timed([*immodel, "demo", "--out", str(out)], root / "demo.log")
            print(
                f"\nimmodel demo: {wall:.1f} s wall, {cpu:.1f} s CPU (load {load1:.2f} "
                "before; goal: under 60 s on 2 cores)"
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"\noutputs kept in {root}")


if __name__ == "__main__":
    main()

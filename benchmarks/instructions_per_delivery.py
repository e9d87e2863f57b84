"""Simulator cost per delivered message in machine instructions, this checkout against others.

Usage::

    .venv/bin/python benchmarks/instructions_per_delivery.py push
    .venv/bin/python benchmarks/instructions_per_delivery.py long_poll \\
        --against /path/to/v0.1-checkout [--users 3000 --short 20 --long 60] \\
        [--set network.model=datagram ...]

CPU time on a shared machine spreads by tens of percent from run to run; the number of
instructions a run executes does not depend on the load. For one configuration (the
baseline scenario with ``transport.kind`` = KIND, USERS users sending 0.01 msg/s, 10 s
drain, plus any ``--set`` overrides) this runs the simulation under ``valgrind
--tool=cachegrind --cache-sim=no`` twice per checkout — ``--short`` and ``--long``
seconds of sending — and divides the difference in instructions (``I refs``) by the
difference in delivered messages: building the world, importing and starting the
interpreter are the same in both runs and cancel out; the recorder's calls for the extra
deliveries are included, building the frames at the end is not (it is not run). The
deliveries are counted in a separate run without valgrind (the same seed gives the same
run). Each checkout runs in a fresh interpreter with ``PYTHONPATH`` on it, so only what
every checkout since v0.1 offers is used, and with ``PYTHONHASHSEED`` fixed
(``--hashseed``, 0 by default): the records do not depend on it, but the layout of every
dict and set keyed by strings does, and with it the instructions a run takes. The runs
have one BLAS thread (``OPENBLAS_NUM_THREADS=1``): numpy's idle BLAS worker threads
otherwise spin for as long as a run lasts and valgrind counts them — most of the spread
of about 1 % seen before (560.3 k to 568.4 k instructions per push delivery for the same
code in three runs); with one thread two runs of the same code differ by a few thousand
instructions in billions. Other ``--hashseed`` values give other dict layouts. One run of
push at 3 000 users × 60 s takes a few minutes under valgrind. A figure, not an
assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# Run inside the child interpreter: the scenario, run to its end; with "count" the
# deliveries are printed (that builds the records, so it is not done under valgrind).
_CHILD = """
import ast, json, sys, time, warnings
warnings.simplefilter("ignore")
from immodel.scenario import Scenario
from immodel.sim.world import World
mode, kind, users, duration_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
over = {"transport.kind": kind, "workload.users": users, "workload.send_rate_per_user": 0.01,
        "duration_s": duration_s, "drain_s": 10.0}
for kv in sys.argv[5:]:
    k, v = kv.split("=", 1)
    try:
        v = ast.literal_eval(v)
    except (ValueError, SyntaxError):
        pass
    over[k] = v
world = World(Scenario.load("baseline", over))
world.run()
if mode == "count":
    from immodel.sim import model
    s = model.collect(world, started_at=time.perf_counter()).summary
    print(json.dumps({"events": s["sim_events"], "deliveries": s["deliveries"]}))
"""

_I_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _child(checkout: Path, mode: str, args: argparse.Namespace, duration_s: float) -> list[str]:
    return [
        sys.executable,
        "-c",
        _CHILD,
        mode,
        args.kind,
        str(args.users),
        str(duration_s),
        *args.set,
    ]


def _env(checkout: Path, args: argparse.Namespace) -> dict[str, str]:
    # One BLAS thread: numpy's idle BLAS worker threads spin for as long as the run lasts
    # on a loaded machine, and valgrind counts their instructions too (about 2 % of a
    # run, varying with the load); without them the same code measures the same count.
    return {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "PYTHONHASHSEED": str(args.hashseed),
        "OPENBLAS_NUM_THREADS": "1",
    }


def count(checkout: Path, args: argparse.Namespace, duration_s: float) -> dict:
    """Events and deliveries of one run (no valgrind)."""
    env = _env(checkout, args)
    out = subprocess.run(
        _child(checkout, "count", args, duration_s),
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def instructions(checkout: Path, args: argparse.Namespace, duration_s: float) -> int:
    """Instructions executed by one run under cachegrind."""
    env = _env(checkout, args)
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        *_child(checkout, "run", args, duration_s),
    ]
    out = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, check=True)
    m = _I_REFS.search(out.stderr)
    if m is None:
        raise RuntimeError(f"no 'I refs' in valgrind's output:\n{out.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["push", "long_poll", "short_poll"])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--short", type=float, default=20.0, help="seconds of sending, short run")
    parser.add_argument("--long", type=float, default=60.0, help="seconds of sending, long run")
    parser.add_argument("--against", nargs="*", default=[], help="other checkouts to compare")
    parser.add_argument("--set", nargs="*", default=[], help="scenario overrides key=value")
    parser.add_argument("--hashseed", type=int, default=0, help="PYTHONHASHSEED of the runs")
    args = parser.parse_args(argv)
    checkouts = [HERE] + [Path(p).resolve() for p in args.against]
    for c in checkouts[1:]:
        if not (c / "immodel" / "__init__.py").is_file():
            parser.error(f"--against {c}: not an immodel checkout")
    per: dict[Path, float] = {}
    for c in checkouts:
        n_short = count(c, args, args.short)
        n_long = count(c, args, args.long)
        i_short = instructions(c, args, args.short)
        i_long = instructions(c, args, args.long)
        extra = n_long["deliveries"] - n_short["deliveries"]
        per[c] = (i_long - i_short) / max(1, extra)
        ev = (n_long["events"] - n_short["events"]) / max(1, extra)
        print(
            f"{c.name:>12} ({c}): I refs {i_short:,} ({args.short:g} s), {i_long:,} "
            f"({args.long:g} s); {extra} more deliveries; {per[c] / 1000:.1f} k instructions "
            f"and {ev:.1f} events per delivery",
            flush=True,
        )
    for c in checkouts[1:]:
        print(f"  this / {c.name}: {per[HERE] / per[c]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])

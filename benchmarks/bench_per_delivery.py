"""Simulator cost per delivered message, this checkout against others, in one session.

Usage::

    .venv/bin/python benchmarks/bench_per_delivery.py push 10000 30
    .venv/bin/python benchmarks/bench_per_delivery.py long_poll 10000 30 \\
        --against /path/to/v0.1-checkout --rounds 3 [--model stream|datagram]

For one configuration (the baseline scenario with ``transport.kind`` = KIND, USERS users
sending 0.01 msg/s for DURATION s, 10 s drain) each round runs the simulation once per
checkout — this one first, then each ``--against`` directory — each in a fresh
interpreter with ``PYTHONPATH`` on that checkout, and prints per run the events and the
CPU time (``time.process_time``, building the world excluded) per delivered message.
At the end: the median per checkout and the median of the per-round ratios against each
other checkout. Alternating the checkouts round by round puts a slow moment of a shared
machine on all of them alike; the ratios are what travels. A figure, not an assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# Run inside the child interpreter: only what every checkout since v0.1 offers.
_CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from immodel.scenario import Scenario
from immodel.sim import model
from immodel.sim.world import World
kind, users, duration_s, net = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
over = {"transport.kind": kind, "workload.users": users, "workload.send_rate_per_user": 0.01,
        "duration_s": duration_s, "drain_s": 10.0}
if net:
    over["network.model"] = net
world = World(Scenario.load("baseline", over))
c0 = time.process_time()
world.run()
cpu_s = time.process_time() - c0
s = model.collect(world, started_at=time.perf_counter()).summary
print(json.dumps({"cpu_s": cpu_s, "events": s["sim_events"], "deliveries": s["deliveries"]}))
"""


def run_once(checkout: Path, kind: str, users: int, duration_s: float, net: str) -> dict:
    """One simulation in a fresh interpreter on ``checkout``: CPU s, events, deliveries."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(users), str(duration_s), net],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    per = max(1, row["deliveries"])
    row["us_per_delivery"] = 1e6 * row["cpu_s"] / per
    row["events_per_delivery"] = row["events"] / per
    return row


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["push", "long_poll", "short_poll"])
    parser.add_argument("users", type=int)
    parser.add_argument("duration_s", type=float)
    parser.add_argument("--against", nargs="*", default=[], help="other checkouts to compare")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--model", default="", choices=["", "stream", "datagram"])
    args = parser.parse_args(argv)
    checkouts = [HERE] + [Path(p).resolve() for p in args.against]
    for c in checkouts[1:]:
        if not (c / "immodel" / "__init__.py").is_file():
            parser.error(f"--against {c}: not an immodel checkout")
    rows: dict[Path, list[dict]] = {c: [] for c in checkouts}
    for r in range(args.rounds):
        for c in checkouts:
            row = run_once(c, args.kind, args.users, args.duration_s, args.model)
            rows[c].append(row)
            print(
                f"round {r + 1} {c.name:>12}: {row['deliveries']} deliveries, "
                f"{row['events_per_delivery']:.1f} events and "
                f"{row['us_per_delivery']:.1f} CPU µs per delivery",
                flush=True,
            )
    print(f"\n{args.kind}, {args.users} users × {args.duration_s:g} s, {args.rounds} round(s):")
    for c in checkouts:
        us = statistics.median(x["us_per_delivery"] for x in rows[c])
        ev = rows[c][0]["events_per_delivery"]
        print(f"  {c.name:>12} ({c}): median {us:.1f} CPU µs / delivery, {ev:.1f} events")
    for c in checkouts[1:]:
        pairs = zip(rows[HERE], rows[c], strict=True)
        ratios = [round(a["us_per_delivery"] / b["us_per_delivery"], 3) for a, b in pairs]
        print(f"  this / {c.name}: median ratio {statistics.median(ratios):.3f} {ratios}")


if __name__ == "__main__":
    main(sys.argv[1:])

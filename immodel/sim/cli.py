"""``immodel run`` and ``immodel scenarios``: one run from the command line."""

from __future__ import annotations

import argparse
import json

from immodel.scenario import Scenario, builtin_scenarios

# The summary table: (key, label, format) in reading order.
_TABLE = (
    ("messages_sent", "messages sent", "{:d}"),
    ("deliveries_expected", "deliveries expected", "{:d}"),
    ("deliveries", "deliveries", "{:d}"),
    ("lost", "lost", "{:d}"),
    ("send_failures", "send failures", "{:d}"),
    ("duplicates", "duplicates", "{:d}"),
    ("order_violations", "order violations", "{:d}"),
    ("latency_mean_ms", "latency mean (ms)", "{:.1f}"),
    ("latency_p50_ms", "latency p50 (ms)", "{:.1f}"),
    ("latency_p95_ms", "latency p95 (ms)", "{:.1f}"),
    ("latency_p99_ms", "latency p99 (ms)", "{:.1f}"),
    ("latency_max_ms", "latency max (ms)", "{:.1f}"),
    ("requests_total", "requests at the access layer", "{:d}"),
    ("requests_per_s", "requests per second", "{:.1f}"),
    ("empty_poll_fraction", "empty poll fraction", "{:.3f}"),
    ("server_utilization", "server utilization", "{:.4f}"),
    ("retransmits_uplink", "uplink retransmits", "{:d}"),
    ("retransmits_downlink", "downlink retransmits", "{:d}"),
    ("sync_pulls", "sync pulls", "{:d}"),
    ("sim_events", "simulation events", "{:d}"),
    ("wall_s", "wall time (s)", "{:.2f}"),
)


def format_summary(summary: dict, title: str = "") -> str:
    """The summary as an aligned two-column table."""
    width = max(len(label) for _, label, _ in _TABLE)
    lines = [title] if title else []
    for key, label, fmt in _TABLE:
        value = summary.get(key)
        text = "—" if value is None else fmt.format(value)
        lines.append(f"  {label:<{width}}  {text:>12}")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    """``immodel run SCENARIO [--set K=V]… [--seed N] [--out DIR] [--json]``."""
    from immodel.sim.model import run

    scenario = Scenario.load(args.scenario, args.overrides, seed=args.seed)
    result = run(scenario)
    if args.out:
        result.write(args.out)
    if args.json:
        print(json.dumps(result.summary))
    else:
        title = f"immodel run {scenario['name']} (seed {scenario['seed']})"
        print(format_summary(result.summary, title))
        if args.out:
            print(f"records written to {args.out}/")
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    """``immodel scenarios``: the built-in scenarios, one line each."""
    names = builtin_scenarios()
    width = max(len(n) for n in names)
    for name, description in names.items():
        print(f"{name:<{width}}  {description}")
    return 0

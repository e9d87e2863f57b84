"""Fingerprints of the records of non-default configurations, to compare two checkouts.

Usage (run it once per checkout and compare the outputs; they must be equal line by line
for a change that claims to move no record)::

    PYTHONPATH=/path/to/checkout .venv/bin/python benchmarks/records_fingerprint.py [NAME ...]

``tests/security/test_defaults_unchanged.py`` pins the built-in scenarios at their
defaults; this covers what those do not reach: the datagram model, several logic and
access nodes, loss on both models, long polling, short polling at a fixed rate, at a
fixed delay and in aggregated idle cohorts, groups, the callback, screening and
friendship checks, constant and lognormal service times and latencies, and a few
built-in scenarios with their own keys. Each configuration runs 400 users sending
0.05 msg/s for 30 s with a 15 s drain (on top of its scenario's keys); its fingerprint
is a SHA-256 over every record frame (pandas' row hashes and the dtypes), the summary
without its wall-clock and event-count keys, and the counters. Only the public
``Scenario``/``World``/``model.collect`` API is used, so an older checkout runs it too.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings

import pandas as pd

from immodel.scenario import Scenario
from immodel.sim import model
from immodel.sim.world import World

SMALL = {
    "workload.users": 400,
    "duration_s": 30.0,
    "workload.send_rate_per_user": 0.05,
    "drain_s": 15.0,
}
LOSS5 = {"network.uplink_loss": 0.05, "network.downlink_loss": 0.05}
CHECKS = {
    "server.require_friendship": True,
    "server.friend_fraction": 0.7,
    "server.blacklist_fraction": 0.1,
    "server.muted_fraction": 0.05,
}
CONFIGS: dict[str, tuple[str, dict]] = {
    "push-stream": ("baseline", {}),
    "push-datagram": ("baseline", {"network.model": "datagram"}),
    "push-2logic-2access": ("baseline", {"server.nodes": 2, "server.access_nodes": 2}),
    "push-loss5": ("baseline", LOSS5),
    "push-loss5-datagram": ("baseline", {**LOSS5, "network.model": "datagram"}),
    "long-poll": ("baseline", {"transport.kind": "long_poll"}),
    "long-poll-loss5": ("baseline", {"transport.kind": "long_poll", **LOSS5}),
    "short-poll": ("baseline", {"transport.kind": "short_poll"}),
    "groups": (
        "baseline",
        {"workload.group_share": 0.3, "workload.groups": 10, "workload.group_size": 20},
    ),
    "groups-2logic": (
        "baseline",
        {
            "workload.group_share": 0.3,
            "server.nodes": 2,
            "server.access_nodes": 2,
            "network.model": "datagram",
        },
    ),
    "crash": ("crash", {}),
    "lossy-mobile": ("lossy-mobile", {}),
    "hybrid": ("hybrid", {}),
    "hostile": ("hostile-network", {}),
    "admission-all": (
        "baseline",
        {**CHECKS, "server.callback_enabled": True, "server.screening_enabled": True},
    ),
    "friends-only": ("baseline", CHECKS),
    "const-service": ("baseline", {"server.service_dist": "constant"}),
    "const-service-lp": (
        "baseline",
        {"server.service_dist": "constant", "transport.kind": "long_poll"},
    ),
    "lognormal": (
        "baseline",
        {
            "network.latency_ms": {"dist": "lognormal", "median": 40, "p99": 200},
            "server.service_dist": "lognormal",
            "network.uplink_loss": 0.02,
        },
    ),
    "short-poll-fixed-delay": (
        "baseline",
        {"transport.kind": "short_poll", "transport.poll_schedule": "fixed_delay"},
    ),
    "short-poll-aggregated": (
        "baseline",
        {"transport.kind": "short_poll", "transport.idle_poll_mode": "aggregated"},
    ),
    "multi-device": (
        "multi-device",
        {"workload.users": 300, "workload.group_size": 50, "duration_s": 20.0},
    ),
}
FRAMES = ("messages", "requests", "load", "trace", "live_messages", "live_trace")
NOT_RECORDS = ("wall_s", "sim_events")


def fingerprint(base: str, overrides: dict) -> tuple[str, dict]:
    """The SHA-256 of one configuration's records, and its summary."""
    world = World(Scenario.load(base, {**SMALL, **overrides}))
    world.run()
    result = model.collect(world)
    h = hashlib.sha256()
    for name in FRAMES:
        frame = getattr(result, name)
        h.update(name.encode())
        h.update(json.dumps([f"{c}:{t}" for c, t in frame.dtypes.items()]).encode())
        if len(frame):
            h.update(pd.util.hash_pandas_object(frame, index=True).values.tobytes())
    summary = {k: v for k, v in result.summary.items() if k not in NOT_RECORDS}
    h.update(json.dumps(summary, sort_keys=True, default=str).encode())
    h.update(json.dumps(result.counters, sort_keys=True, default=str).encode())
    return h.hexdigest(), result.summary


def main(names: list[str]) -> None:
    warnings.simplefilter("ignore")
    unknown = set(names) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configurations: {sorted(unknown)}; known: {list(CONFIGS)}")
    for name, (base, overrides) in CONFIGS.items():
        if names and name not in names:
            continue
        digest, summary = fingerprint(base, overrides)
        print(f"{name:24s} {digest[:20]} deliveries={summary.get('deliveries')}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

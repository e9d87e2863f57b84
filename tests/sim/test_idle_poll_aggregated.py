"""Idle pollers in bulk (``transport.idle_poll_mode = "aggregated"``, immodel.sim.idle_poll)
against the exact mode: the same counts, the same latencies where both are deterministic
(constant latency and service, a lightly loaded server), agreement within replication
intervals where they are not, and the key's validation."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from immodel import run
from immodel.scenario import Scenario
from immodel.sim.world import World

# constant latency and service, more workers than a bin ever holds: nobody queues, so
# both modes are deterministic given the seed and must agree to the last digit
DETERMINISTIC = {
    "transport.kind": "short_poll",
    "transport.poll_interval_s": 2.0,
    "workload.users": 300,
    "duration_s": 30.0,
    "network.latency_ms": 40.0,
    "server.service_dist": "constant",
    "server.workers": 64,
    "server.access_workers": 64,
}


def _both(values: dict) -> tuple:
    exact = run(Scenario.load("baseline", {**values, "transport.idle_poll_mode": "exact"}))
    agg = run(Scenario.load("baseline", {**values, "transport.idle_poll_mode": "aggregated"}))
    return exact, agg


def _shown(result) -> np.ndarray:
    m = result.messages.sort_values(["msg_id", "recipient"])
    return m["t_first_show"].to_numpy(dtype=float)


COUNTS = ("requests_total", "requests_poll", "requests_send", "requests_sync", "deliveries")


@pytest.mark.parametrize(
    "extra",
    [
        {},
        # members leave when the app closes and come back through a login
        {"workload.mean_online_s": 15.0, "workload.mean_offline_s": 5.0},
        # a logic node dies: polls reach the access node and stop there; failover
        {"server.nodes": 2, "faults": [{"kind": "server_crash", "at_s": 8.0, "down_s": 6.0}]},
        # an access node dies: its members' connections are reset, they reconnect
        {
            "server.access_nodes": 2,
            "faults": [{"kind": "gateway_crash", "node": 0, "at_s": 8.0, "down_s": 4.0}],
        },
    ],
    ids=["plain", "churn", "server_crash", "gateway_crash"],
)
def test_counts_and_latencies_equal_exact_mode_when_deterministic(extra):
    exact, agg = _both({**DETERMINISTIC, **extra})
    assert agg.summary["idle_polls"] > 0.5 * exact.summary["requests_poll"]  # it aggregated
    assert agg.summary["idle_poll_wakes"] > 0
    for key in COUNTS:
        assert agg.summary[key] == exact.summary[key], key
    assert agg.summary["requests_per_s"] == pytest.approx(exact.summary["requests_per_s"], abs=0)
    assert agg.summary["empty_poll_fraction"] == exact.summary["empty_poll_fraction"]
    np.testing.assert_allclose(_shown(agg), _shown(exact), rtol=0, atol=1e-9)
    assert agg.summary["lost"] == exact.summary["lost"]


def _store_delay_s(values: dict) -> float:
    """Send → the fan-out putting the message in the recipient's outbox, in these runs."""
    world = World(Scenario.load("baseline", {**values, "transport.idle_poll_mode": "exact"}))
    world.inject(3.0, 0, 1)
    world.run()
    m = world.rec.messages_frame().iloc[0]
    return float(m["t_stored"] - m["t_send"]) + 0.12e-3  # + status and fan-out of one


def test_message_during_the_last_idle_poll_is_picked_up_as_in_exact_mode():
    """A message stored while the member's last cohort poll is in the network, at the
    access node, in the poll stage, or just answered: the replayed poll takes it exactly
    when the exact mode's poll does."""
    values = {**DETERMINISTIC, "workload.users": 20, "workload.send_rate_per_user": 0.0}
    delay = _store_delay_s(values)
    T = values["transport.poll_interval_s"]
    world = World(Scenario.load("baseline", values))
    phases = [c.phase for c in world.clients]
    # store times after the recipient's poll sent at t_prev: 40 ms latency, then 0.02 ms
    # at the access node and 0.2 ms in the poll stage
    after_ms = [5.0, 39.99, 40.01, 40.1, 40.21, 40.3, 300.0]
    plan = []
    for i, x in enumerate(after_ms):
        r = i + 2
        t_prev = phases[r] * T + (4 + i) * T
        plan.append((t_prev + x / 1000.0 - delay, r))
    shown = {}
    for mode in ("exact", "aggregated"):
        w = World(Scenario.load("baseline", {**values, "transport.idle_poll_mode": mode}))
        for at, r in plan:
            w.inject(at, 0, r)
        w.run()
        m = w.rec.messages_frame().sort_values("recipient")
        shown[mode] = (m["t_first_show"] - m["t_send"]).to_numpy(dtype=float)
    np.testing.assert_allclose(shown["aggregated"], shown["exact"], rtol=0, atol=1e-9)
    # both outcomes occur: caught by the poll already sent, or by the next one
    caught = shown["exact"] < 0.5 * T
    assert caught[:4].all() and not caught[-2:].any()


def _paired_interval(a: list[float], b: list[float], level: float = 0.99):
    d = np.asarray(a) - np.asarray(b)
    half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean() - half, d.mean() + half


def test_agrees_with_exact_mode_within_paired_replication_intervals():
    """Random service and latency: per seed the two modes differ only by chance, so the
    paired differences' 99 % t-interval over the seeds holds 0."""
    values = {
        "transport.kind": "short_poll",
        "transport.poll_interval_s": 1.0,
        "workload.users": 300,
        "workload.send_rate_per_user": 0.05,
        "duration_s": 20.0,
        "network.latency_ms": {"dist": "lognormal", "median": 40, "p99": 300},
    }
    keys = (
        "requests_per_s",
        "empty_poll_fraction",
        "utilization_access",
        "utilization_poll",
        "latency_p50_ms",
        "latency_p99_ms",
    )
    got = {mode: {k: [] for k in keys} for mode in ("exact", "aggregated")}
    for seed in range(1, 7):
        exact, agg = _both({**values, "seed": seed})
        for mode, r in (("exact", exact), ("aggregated", agg)):
            for k in keys:
                got[mode][k].append(r.summary[k])
        assert agg.summary["lost"] == exact.summary["lost"] == 0
    for k in keys:
        lo, hi = _paired_interval(got["aggregated"][k], got["exact"][k])
        assert lo <= 0.0 <= hi, (k, lo, hi)


def test_other_transports_ignore_aggregated_mode():
    values = {"workload.users": 60, "duration_s": 10.0, "transport.kind": "long_poll"}
    exact, agg = _both(values)
    assert agg.trace_hash() == exact.trace_hash()
    assert agg.summary["idle_polls"] == 0
    assert agg.summary["requests_total"] == exact.summary["requests_total"]


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ("transport.idle_poll_mode=bulk", "transport.idle_poll_mode must be one of"),
        ("network.downlink_loss=0.1", "needs a network that loses nothing"),
    ],
)
def test_bad_idle_poll_mode_exits_2_with_one_error_line(setting, fragment):
    argv = [sys.executable, "-m", "immodel", "run", "short-poll", "--set", setting]
    if not setting.startswith("transport.idle_poll_mode"):
        argv += ["--set", "transport.idle_poll_mode=aggregated"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert "transport.idle_poll_mode" in lines[0]


def test_aggregated_mode_is_reproducible_from_its_seed():
    values = {
        "transport.kind": "short_poll",
        "transport.idle_poll_mode": "aggregated",
        "workload.users": 200,
        "duration_s": 10.0,
        "network.latency_ms": {"dist": "lognormal", "median": 40, "p99": 300},
    }
    a = run(Scenario.load("baseline", values))
    b = run(Scenario.load("baseline", values))
    assert a.summary["idle_polls"] > 0
    assert a.trace_hash() == b.trace_hash()
    assert a.requests.equals(b.requests)
    skip = {"wall_s"}
    assert {k: v for k, v in a.summary.items() if k not in skip} == {
        k: v for k, v in b.summary.items() if k not in skip
    }

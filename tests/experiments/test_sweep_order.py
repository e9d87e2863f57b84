"""Task order of a sweep: the longest expected runs go to the workers first.

The cost proxy (:func:`immodel.experiments.scheduling.expected_cost`) counts the requests
a run will make; these tests check it against the request counts the protocol implies
(polls every ``poll_interval_s``, heartbeats every ``heartbeat_s``), that the order is
longest-first and stable, and that a process-pool sweep really starts its costliest runs
first without changing any result.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from immodel.experiments import load_sweep, run_sweep
from immodel.experiments.scheduling import expected_cost, longest_first
from immodel.scenario import Scenario


def scenario(**values) -> Scenario:
    return Scenario.load("baseline", {k.replace("__", "."): v for k, v in values.items()})


def test_expected_cost_counts_polls_heartbeats_and_requests_per_delivery():
    base = dict(workload__users=100, workload__send_rate_per_user=0.01, duration_s=50.0)
    poll = scenario(**base, transport__kind="short_poll", drain_s=50.0)
    push = scenario(**base, transport__kind="push", drain_s=50.0)
    deliveries = 100 * 0.01 * 50.0
    # 100 users polling every 2 s for 100 s, vs a heartbeat every 30 s; 3 requests each.
    assert expected_cost(poll) == pytest.approx(100 * 100 / 2.0 + 3 * deliveries)
    assert expected_cost(push) == pytest.approx(100 * 100 / 30.0 + 3 * deliveries)


def test_expected_cost_resolves_an_auto_drain_like_the_run_will():
    lossy = scenario(transport__kind="long_poll", **{"network.downlink_loss": 0.2})
    fixed = lossy.resolved()
    assert lossy.drain_is_auto
    assert expected_cost(lossy) == expected_cost(fixed)
    assert expected_cost(lossy) > expected_cost(scenario(transport__kind="long_poll"))


def test_longest_first_orders_by_cost_and_keeps_ties_in_grid_order():
    class T:
        def __init__(self, name, **values):
            self.name, self.scenario = name, scenario(**values)

    tasks = [
        T("push-a", transport__kind="push"),
        T("poll", transport__kind="short_poll"),
        T("push-b", transport__kind="push"),
        T("long", transport__kind="long_poll", workload__users=20000),
    ]
    assert [t.name for t in longest_first(tasks)] == ["long", "poll", "push-a", "push-b"]


def test_a_pool_sweep_hands_out_the_costliest_points_first_with_the_same_results(
    tmp_path, monkeypatch
):
    from immodel.experiments import sweep as sweep_module

    handed: dict[str, list] = {}
    execute = sweep_module._execute

    def recording(backend, runner, tasks, interrupts=None):
        handed[backend.label] = [t.key for t in tasks]
        return execute(backend, runner, tasks, interrupts)

    monkeypatch.setattr(sweep_module, "_execute", recording)
    sweep = load_sweep(
        {
            "scenario": "baseline",
            "replications": 2,
            "set": {"duration_s": 5.0},
            "grid": {"workload.users": [10, 40, 20, 30]},
        }
    )
    pool = run_sweep(sweep, tmp_path / "pool", workers=2, runner=users_runner, progress=False)
    alone = run_sweep(sweep, tmp_path / "one", workers=1, runner=users_runner, progress=False)
    # Point p, replication r: 40 users (point 1) first, then 30, 20, 10; replications
    # of a point in order. One process keeps the grid order (the order costs nothing).
    assert handed["2 local processes"] == [
        (1, 0),
        (1, 1),
        (3, 0),
        (3, 1),
        (2, 0),
        (2, 1),
        (0, 0),
        (0, 1),
    ]
    assert handed["this process"] == [(p, r) for p in range(4) for r in range(2)]
    pd.testing.assert_frame_equal(pool.drop(columns="worker_pid"), alone.drop(columns="worker_pid"))
    assert os.getpid() not in set(pool["worker_pid"])


def users_runner(scenario: Scenario) -> dict:
    """A summary that depends only on the scenario and its seed, plus where it ran."""
    return {
        "messages_sent": scenario["workload.users"] * 3,
        "seed_low_bits": scenario["seed"] % 1000,
        "worker_pid": os.getpid(),
    }

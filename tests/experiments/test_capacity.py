"""Capacity: per-user demand extrapolates linearly, and the table reads the SLO crossing."""

from __future__ import annotations

import pandas as pd
import pytest

from immodel import Scenario, run
from immodel.experiments.capacity import CAPACITY_SET, capacity_table, saturation_users
from immodel.experiments.sweep import load_sweep


def _summary(users: int, kind: str = "short_poll") -> dict:
    over = {**CAPACITY_SET, "transport.kind": kind, "workload.users": users, "duration_s": 20.0}
    return run(Scenario.load("baseline", over)).summary


def test_short_polling_saturates_its_poll_stage_where_the_costs_say() -> None:
    # Theory: each short poller asks 1 / poll_interval polls per second, each costing
    # poll_ms (+ poll_ms_per_message × the few messages it carries) of one worker, so the
    # poll stage is saturated at N* = poll_interval / poll_ms users (2 s / 0.2 ms = 10 000),
    # a little fewer for the messages carried (0.01 msg/s per user, 0.01 ms each).
    sat = saturation_users(_summary(1000))
    assert sat["logic_bottleneck"] == "poll"
    expected = 1.0 / ((0.2 + 0.01 * 0.01 * 2.0) / 1000.0 / 2.0)
    # exponential service times over ~10 000 polls: relative standard error ≈ 1 %
    assert sat["logic"] == pytest.approx(expected, rel=0.05)


def test_utilisation_grows_linearly_with_users() -> None:
    small, large = saturation_users(_summary(500)), saturation_users(_summary(2000))
    assert small["logic"] == pytest.approx(large["logic"], rel=0.08)
    assert small["access"] == pytest.approx(large["access"], rel=0.08)


def test_capacity_table_stops_at_the_first_point_over_the_slo() -> None:
    rows = []
    for users, p99, lost in [(1, 100.0, 0), (2, 200.0, 0), (3, 5000.0, 0), (4, 300.0, 0)]:
        for rep in range(2):
            rows.append(
                {
                    "transport.kind": "push",
                    "workload.users": users,
                    "replication": rep,
                    "latency_p99_ms": p99,
                    "lost": lost,
                    "utilization_access": 0.1 * users,
                    "utilization_logic": 0.2 * users,
                }
            )
    table = capacity_table(pd.DataFrame(rows), slo_ms=1000.0)
    row = table.iloc[0]
    # the point at 4 users is back under the SLO (noise), but capacity ends at 3
    assert row["users_within_slo"] == 2 and row["users_over_slo"] == 3
    assert row["utilization_logic"] == pytest.approx(0.4)


def test_the_capacity_sweep_file_fixes_one_core_per_stage() -> None:
    from pathlib import Path

    sweep = load_sweep(Path(__file__).resolve().parents[2] / "experiments" / "capacity.toml")
    for task in sweep.tasks()[:3]:
        for key, value in CAPACITY_SET.items():
            assert task.scenario[key] == value

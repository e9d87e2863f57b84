"""Read vs write diffusion cost what each design does, and the cheaper one follows the
cost formula of :mod:`immodel.analysis.diffusion`.

Short-polling users who send only to groups, constant service times: the service time
the write design spends beyond the read design, per second of the sending period, is
``λ (n − 1) w − R ḡ r``. The only randomness left in it is the number of group messages
sent in the window (Poisson, mean ``λ × window``), so the tolerance is four standard
deviations of the write term, ``4 λ (n − 1) w / sqrt(λ × window)``.
"""

from __future__ import annotations

import math
from functools import cache

import pytest

import immodel
from immodel.analysis.diffusion import (
    crossing_from_points,
    crossing_group_size,
    diffusion_busy_ms_per_s,
    diffusion_cost_difference_ms_per_s,
    mean_groups_per_user,
)
from immodel.scenario import Scenario

USERS, POLL_S, WINDOW_S, SIZE, RATE, WRITE_MS = 100, 2.0, 10.0, 20, 0.1, 0.01


@cache
def busy_ms_per_s(diffusion: str, groups: int, read_ms: float) -> float:
    """Service time of the stages the designs change, per second of the sending period."""
    sc = Scenario.load(
        "short-poll",
        {
            "workload.users": USERS,
            "transport.poll_interval_s": POLL_S,
            "duration_s": WINDOW_S,
            "workload.group_share": 1.0,
            "workload.groups": groups,
            "workload.group_size": SIZE,
            "workload.send_rate_per_user": RATE,
            "server.service_dist": "constant",
            "server.diffusion": diffusion,
            "server.inbox_write_ms": WRITE_MS,
            "server.timeline_read_ms": read_ms,
        },
    )
    s = immodel.run(sc).summary
    assert s["lost"] == 0
    return diffusion_busy_ms_per_s(s, sc["server.workers"])


def predicted(groups: int, read_ms: float) -> tuple[float, float]:
    """(ΔD from the formula, its tolerance) in ms of service per s."""
    rate = USERS * RATE
    g = mean_groups_per_user(groups, SIZE, USERS)
    delta = diffusion_cost_difference_ms_per_s(
        group_msg_rate_per_s=rate,
        group_size=SIZE,
        reads_per_s=USERS / POLL_S,
        groups_per_user=g,
        inbox_write_ms=WRITE_MS,
        timeline_read_ms=read_ms,
    )
    write_term = rate * (SIZE - 1) * WRITE_MS
    return delta, 4.0 * write_term / math.sqrt(rate * WINDOW_S)


# (groups, timeline read ms): two read/write cost ratios on either side of the crossing,
# and at one ratio, few vs many groups per user.
CASES = [(5, 0.076), (5, 0.00475), (5, 0.015), (20, 0.015)]


@pytest.mark.parametrize(("groups", "read_ms"), CASES)
def test_measured_cost_difference_matches_the_formula(groups, read_ms):
    delta, tol = predicted(groups, read_ms)
    measured = busy_ms_per_s("write", groups, read_ms) - busy_ms_per_s("read", groups, read_ms)
    assert abs(measured - delta) <= tol, (measured, delta, tol)
    assert abs(delta) > tol  # each case is far enough from the crossing to tell


def _cheaper(groups: int, read_ms: float) -> str:
    delta = busy_ms_per_s("write", groups, read_ms) - busy_ms_per_s("read", groups, read_ms)
    return "write" if delta < 0 else "read"


def _crossing(groups: int, read_ms: float) -> float:
    return crossing_group_size(
        send_rate_per_user=RATE,
        poll_interval_s=POLL_S,
        groups_per_user=mean_groups_per_user(groups, SIZE, USERS),
        inbox_write_ms=WRITE_MS,
        timeline_read_ms=read_ms,
    )


def test_the_cheaper_design_flips_when_the_ratio_of_costs_flips():
    # one group per user; r/w = 7.6 puts the crossing at n* = 39 > 20 members: write
    # wins; r/w = 0.475 puts it at 3.4: read wins
    assert _crossing(5, 0.076) > SIZE > _crossing(5, 0.00475)
    assert _cheaper(5, 0.076) == "write"
    assert _cheaper(5, 0.00475) == "read"


def test_the_crossing_moves_with_the_groups_a_user_is_in():
    # same costs (r/w = 1.5), 1 vs 4 groups per user: the crossing moves from 8.5 to 31
    assert _crossing(5, 0.015) < SIZE < _crossing(20, 0.015)
    assert _cheaper(5, 0.015) == "read"
    assert _cheaper(20, 0.015) == "write"


def test_read_diffusion_keeps_no_copy_for_an_offline_member():
    # Members come and go: write keeps their copies in offline queues; read keeps none
    # and their reconnect sync reads the group timeline. Nothing is lost either way.
    repaired = {}
    for diffusion in ("write", "read"):
        r = immodel.run(
            Scenario.load(
                "baseline",
                {
                    "workload.users": 40,
                    "workload.group_share": 1.0,
                    "workload.groups": 4,
                    "workload.group_size": 10,
                    "workload.send_rate_per_user": 0.1,
                    "workload.mean_online_s": 4.0,
                    "workload.mean_offline_s": 2.0,
                    "duration_s": 10.0,
                    "server.diffusion": diffusion,
                },
            )
        )
        assert r.summary["lost"] == 0
        repaired[diffusion] = r.messages["repaired_by"].value_counts()
    assert repaired["write"].get("offline_queue", 0) > 0
    assert repaired["read"].get("offline_queue", 0) == 0
    assert repaired["read"].get("sync_reconnect", 0) > 0


def test_the_crossing_is_interpolated_where_the_difference_changes_sign():
    assert crossing_from_points([10, 20, 40], [-2.0, -1.0, 1.0]) == 30.0
    assert crossing_from_points([40, 10], [3.0, -1.0]) == 17.5  # any order
    assert math.isnan(crossing_from_points([10, 20], [1.0, 2.0]))

"""Cohort viewers agree with per-viewer viewers on a 2,000-viewer live room.

The cohort mode groups a room's viewers into poll-phase cohorts that share their network
draws (``immodel.sim.live``); viewers are exchangeable, so every viewer's own history has
the same law as in the per-viewer mode and the expectations of the room's totals and
latency percentiles must agree. What differs is only the spread.

Design: 8 replications of each mode with seeds 1..8. The speakers have their own random
streams, so the messages offered in seed k are identical in both modes (checked), and
the comparison is paired by seed. For each metric the 99.5 % Student-t interval of the
mean paired difference (replications − 1 degrees of freedom) must contain 0 — with three
metrics, a false alarm in about 1.5 % of runs of this test. Power is asserted, not assumed:
the interval's half-width must be small against the metric (deliveries and the median
latency within a few per cent, the misses within a third), so a cohort mode that lost a
few per cent of deliveries or shifted the latency would fail.

Service times are constant here: a cohort's work is charged as one job of its size, which
with random service times has the variance of one viewer's job scaled by the size, not
of the sum of the viewers' jobs (the README's "Live-broadcast rooms" says what that
changes). The room churns (mean stay 20 s) so that viewers leave with messages on their way and
``live_missed`` is not zero. The drain is short on purpose: there is no reliable traffic,
and 2 s cover the last publish plus the latency tail of the live viewers many times over.
"""

from __future__ import annotations

import warnings

import pytest

from immodel import Scenario, run
from immodel.analysis.stats import mean_ci
from immodel.errors import DrainWarning

SEEDS = range(1, 9)
CONFIDENCE = 0.995


def _scenario(mode: str, seed: int) -> Scenario:
    return Scenario.load(
        "baseline",
        {
            "seed": seed,
            "transport.kind": "long_poll",
            "workload.users": 2,
            "workload.send_rate_per_user": 0.0,
            "duration_s": 4.0,
            "drain_s": 2.0,
            "network.latency_ms": {"dist": "lognormal", "median": 40.0, "p99": 300.0},
            # a cohort's job is one service draw scaled by its size (see immodel.sim.live):
            # with constant service times that is exactly the sum of its viewers' jobs
            "server.service_dist": "constant",
            "workload.live_rooms": 1,
            "workload.live_audience": 2000.0,
            "workload.live_send_rate": 40.0,
            "workload.live_mean_stay_s": 20.0,
            "workload.live_viewer_mode": mode,
            "workload.live_cohorts": 40,  # ~50 viewers share each cohort's draws
        },
    )


@pytest.fixture(scope="module")
def pairs():
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DrainWarning)  # the short drain is deliberate
        for seed in SEEDS:
            per_viewer = run(_scenario("per_viewer", seed))
            cohort = run(_scenario("cohort", seed))
            out.append((per_viewer, cohort))
    return out


def test_both_modes_are_offered_the_same_messages(pairs):
    # (which of them are accepted may differ near a window's edge: the speakers' frames
    # queue on the access node behind the viewers' jobs, which differ between the modes)
    cols = ["msg_id", "priority", "t_send"]
    for per_viewer, cohort in pairs:
        assert per_viewer.live_messages[cols].equals(cohort.live_messages[cols])


@pytest.mark.parametrize(
    ("metric", "max_relative_half_width"),
    [("live_deliveries", 0.03), ("live_latency_p50_ms", 0.03), ("live_missed", 0.4)],
)
def test_cohorts_agree_with_per_viewer_within_the_paired_interval(
    pairs, metric, max_relative_half_width
):
    diffs = [c.summary[metric] - v.summary[metric] for v, c in pairs]
    level = sum(v.summary[metric] for v, _ in pairs) / len(pairs)
    assert level > 0, metric
    ci = mean_ci(diffs, CONFIDENCE)
    assert ci.half_width / level < max_relative_half_width, (metric, ci, level)
    assert ci.low <= 0.0 <= ci.high, (metric, ci, diffs)

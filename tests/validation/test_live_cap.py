"""A live room's cap in the simulator against the rule and against Poisson theory.

Per window, the records must follow the rule exactly: accepted = min(offered, cap), and
per priority high = min(H, cap), normal and low only what is left
(:func:`immodel.protocol.live.keep_by_priority`).

Over windows, with Poisson speakers of rate λ and shares s_p, each window's offered
counts are independent Poisson with means λ·s_p·W (independent uplink delays of a Poisson
stream leave it Poisson), so the mean accepted per window and priority is
:func:`immodel.analysis.theory_live.expected_accepted`. The band is ±4 standard errors of
the per-window mean (the sample standard deviation over the windows of the run; a false
alarm about 1 in 16,000 per comparison). The first window (filling up) and the windows
after the sending period are left out: they are not stationary.

Power: 4 rooms × 58 steady windows. With high = 40/s against a cap of 40,
E[min(H, 40)] = 37.48 while the naive min(40, 40) = 40: the band (about ±0.94, from the
standard deviation 3.6 of min(H, 40)) tells them apart, so a simulator whose high
priority simply got "the cap or the offered rate" would fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immodel import Scenario, run
from immodel.analysis.live import accepted_per_window
from immodel.analysis.theory_live import expected_accepted, expected_min_poisson, poisson_pmf
from immodel.protocol.live import PRIORITIES, keep_by_priority

DURATION_S = 60.0
ROOMS = 4
CAP = 40
SHARES = {"high": 0.2, "normal": 0.3, "low": 0.5}
RATE = 200.0


@pytest.fixture(scope="module")
def windows():
    sc = Scenario.load(
        "baseline",
        {
            "transport.kind": "long_poll",
            "workload.users": 2,
            "workload.send_rate_per_user": 0.0,
            "duration_s": DURATION_S,
            "workload.live_rooms": ROOMS,
            "workload.live_audience": 1.0,
            "workload.live_send_rate": RATE,
            "workload.live_priority": SHARES,
            "server.live_max_msgs_per_s": float(CAP),
            # the speakers' server path costs nothing: every message is one event fewer
            "server.access_request_ms": 0.0,
            "server.auth_ms": 0.0,
            "server.checks_ms": 0.0,
            "network.latency_ms": {"dist": "lognormal", "median": 40.0, "p99": 300.0},
        },
    )
    result = run(sc)
    return result, accepted_per_window(result.live_messages)


def test_every_window_accepts_min_offered_cap_by_priority_exactly(windows):
    result, per_window = windows
    assert len(per_window) >= ROOMS * (DURATION_S - 1)
    for row in per_window.itertuples():
        offered = {p: getattr(row, f"offered_{p}") for p in PRIORITIES}
        kept = {p: getattr(row, f"accepted_{p}") for p in PRIORITIES}
        assert kept == keep_by_priority(offered, CAP), row
        assert row.accepted == min(row.offered, CAP)
    # every message reached the cap and was decided: offered = accepted + dropped
    s = result.summary
    assert s["live_messages_offered"] == s["live_messages_accepted"] + s["live_messages_dropped"]
    assert sum(s["live_dropped_by_priority"].values()) == s["live_messages_dropped"]


def test_mean_accepted_per_window_and_priority_matches_poisson_theory(windows):
    _, per_window = windows
    steady = per_window[(per_window["window"] >= 1) & (per_window["window"] < DURATION_S - 1)]
    n = len(steady)
    theory = expected_accepted({p: RATE * SHARES[p] for p in PRIORITIES}, CAP)
    for p in PRIORITIES:
        offered = steady[f"offered_{p}"].to_numpy(dtype=float)
        accepted = steady[f"accepted_{p}"].to_numpy(dtype=float)
        # the offered counts first: Poisson, mean λ·s_p per window (sd √mean)
        mean_offered = RATE * SHARES[p]
        assert abs(offered.mean() - mean_offered) <= 4 * math.sqrt(mean_offered / n), p
        se = max(accepted.std(ddof=1), 1e-9) / math.sqrt(n)
        assert abs(accepted.mean() - theory[p]) <= 4 * se + 1e-9, (p, accepted.mean(), theory[p])
    # the test can tell the rule from the naive "high gets min(rate, cap)"
    naive_high = min(RATE * SHARES["high"], CAP)
    se_high = steady["accepted_high"].std(ddof=1) / math.sqrt(n)
    assert naive_high - theory["high"] > 4 * se_high


def test_accepted_rate_is_the_cap_when_offered_far_exceeds_it(windows):
    _, per_window = windows
    steady = per_window[(per_window["window"] >= 1) & (per_window["window"] < DURATION_S - 1)]
    # 200 offered per window against 40: P(fewer than 40 offered) is ~1e-40
    assert (steady["accepted"] == CAP).all()


def test_the_expected_minimum_formula_against_a_direct_sum():
    rng = np.random.default_rng(5)
    for mu, cap in ((3.0, 5), (38.0, 40), (200.0, 40), (0.0, 4)):
        direct = sum(min(k, cap) * poisson_pmf(k, mu) for k in range(600))
        assert expected_min_poisson(mu, cap) == pytest.approx(direct, rel=1e-9, abs=1e-12)
    # and a Monte Carlo check of the priority split (1e5 windows: se < 0.02)
    draws = {p: rng.poisson(m, 100_000) for p, m in (("high", 30), ("normal", 15), ("low", 5))}
    kept_h = np.minimum(draws["high"], 40)
    kept_hn = np.minimum(draws["high"] + draws["normal"], 40)
    theory = expected_accepted({"high": 30, "normal": 15, "low": 5}, 40)
    assert kept_h.mean() == pytest.approx(theory["high"], abs=0.1)
    assert (kept_hn - kept_h).mean() == pytest.approx(theory["normal"], abs=0.1)

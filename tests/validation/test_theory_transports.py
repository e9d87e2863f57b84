"""Push, short polling and long polling against their analytic latency and request rates.

Light load (server waits ≈ 0), constant one-way delay unless stated, no loss, client sync
off (validation_support.BASE): a 1:1 receipt would start a sync that can fetch a message
stored since the last poll before the next poll does — a different mechanism, left out
so that each check sees one transport. Formulas: :mod:`immodel.analysis.theory`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from validation_support import (
    DETECT,
    assert_mean_matches,
    assert_proportion_matches,
    realized_receive_rate,
    replicate,
    scenario,
)

import immodel
from immodel.analysis import theory as th

R = 7  # replications per point: every mean check sees a 10 % error (DETECT)


def mean_latency_s(results: list[immodel.Result]) -> list[float]:
    return [r.summary["latency_mean_ms"] / 1000.0 for r in results]


def mean_latency_after_s(results: list[immodel.Result], start_s: float) -> list[float]:
    """Mean latency of messages sent at or after ``start_s`` (after a warm-up)."""
    out = []
    for r in results:
        m = r.messages
        rows = m[m["stored"] & m["online_at_store"] & (m["t_send"] >= start_s)]
        out.append(float(rows["latency_ms"].mean()) / 1000.0)
    return out


def polls(result: immodel.Result) -> pd.DataFrame:
    req = result.requests
    return req[req["kind"].astype(str) == "poll"]


def poll_gaps(result: immodel.Result, start_s: float, end_s: float) -> np.ndarray:
    """Gaps between a client's successive poll arrivals, for gaps *starting* in
    [start_s, end_s): selecting on the start keeps the mean gap unbiased (what follows a
    renewal epoch does not depend on how it was reached)."""
    p = polls(result).sort_values(["user", "t"], kind="stable")
    t = p["t"].to_numpy()
    nxt = p.groupby("user", sort=False)["t"].shift(-1).to_numpy()
    keep = (t >= start_s) & (t < end_s) & ~np.isnan(nxt)
    return nxt[keep] - t[keep]


# --------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "latency_ms, sync",
    [
        (5.0, True),
        (50.0, True),
        (200.0, False),
        ({"dist": "exponential", "mean": 50.0}, False),
        ({"dist": "lognormal", "median": 40.0, "p99": 300.0}, False),
    ],
    ids=["5ms", "50ms", "200ms", "exp50ms", "lognormal40-300ms"],
)
def test_push_mean_latency_is_two_delays_plus_server_path(latency_ms, sync):
    # With a variable delay a sync started by another receipt could overtake a slow push:
    # sync is left on only where the delay is constant (then it cannot win).
    sc = scenario(
        **{"transport.kind": "push", "network.latency_ms": latency_ms, "reliability.sync": sync}
    )
    d = th.one_way_delay_mean_s(latency_ms)
    expected = th.push_mean_latency_s(d, th.message_path_service_s(sc))
    assert_mean_matches(
        mean_latency_s(replicate(sc, R)),
        expected,
        f"push latency d={latency_ms} sync={sync}",
        detect=DETECT,
    )


# --------------------------------------------------------------------------------------
# Short polling
# --------------------------------------------------------------------------------------
def short_poll(interval_s: float, latency_ms: float, **extra) -> immodel.Scenario:
    values = {
        "transport.kind": "short_poll",
        "transport.poll_interval_s": interval_s,
        "network.latency_ms": latency_ms,
        "drain_s": interval_s + 10.0,
    }
    values.update(extra)
    return scenario(**values)


@pytest.mark.parametrize("interval_s, latency_ms", [(0.5, 20.0), (2.0, 100.0), (8.0, 50.0)])
def test_short_poll_mean_latency_is_half_interval_plus_two_delays(interval_s, latency_ms):
    sc = short_poll(interval_s, latency_ms)
    expected = th.short_poll_mean_latency_s(
        interval_s, latency_ms / 1000.0, th.message_path_service_s(sc)
    )
    assert_mean_matches(
        mean_latency_s(replicate(sc, R)),
        expected,
        f"short poll latency T={interval_s} d={latency_ms}ms",
        detect=DETECT,
    )


@pytest.mark.parametrize("interval_s, latency_ms", [(1.0, 100.0), (4.0, 250.0)])
def test_fixed_delay_short_poll_latency_adds_a_round_trip_to_the_period(interval_s, latency_ms):
    # Fixed delay: the period is T + 2d, so the mean wait for the next poll is (T + 2d)/2.
    # poll_ms = 0: every fixed-delay client starts polling at t = 0, so without jitter
    # their polls hit the poll stage together and its queueing would enter the period.
    sc = short_poll(
        interval_s,
        latency_ms,
        **{"transport.poll_schedule": "fixed_delay", "server.poll_ms": 0.0},
    )
    d = latency_ms / 1000.0
    path = th.message_path_service_s(sc)
    expected = th.short_poll_mean_latency_s(interval_s, d, path, schedule="fixed_delay")
    est = assert_mean_matches(
        mean_latency_s(replicate(sc, R)),
        expected,
        f"fixed-delay short poll latency T={interval_s} d={latency_ms}ms",
        detect=DETECT,
    )
    fixed_rate = th.short_poll_mean_latency_s(interval_s, d, path)
    assert abs(est.mean - fixed_rate) > est.half_band, "indistinguishable from fixed rate"


@pytest.mark.parametrize("interval_s", [0.5, 2.0, 5.0])
def test_fixed_rate_clients_send_exactly_n_over_t_polls_per_second(interval_s):
    # Polls leave at φT + kT: any window of k whole periods holds exactly k per client.
    sc = short_poll(interval_s, 50.0)
    result = replicate(sc, 1)[0]
    periods = 10
    t0 = 7.3
    t = polls(result)["t"].to_numpy()
    count = int(((t >= t0) & (t < t0 + periods * interval_s)).sum())
    expected = th.short_poll_rate_per_s(sc["workload.users"], interval_s) * periods * interval_s
    assert count == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("interval_s, latency_ms", [(0.5, 20.0), (2.0, 100.0), (5.0, 250.0)])
def test_fixed_delay_clients_poll_once_per_interval_plus_round_trip(interval_s, latency_ms):
    # Constant service and more poll workers than clients: no queueing, so every gap
    # between a client's polls is exactly T + 2d + s_poll.
    sc = short_poll(
        interval_s,
        latency_ms,
        **{
            "transport.poll_schedule": "fixed_delay",
            "workload.users": 20,
            "server.workers": 32,
            "server.service_dist": "constant",
        },
    )
    result = replicate(sc, 1)[0]
    gaps = poll_gaps(result, 0.0, sc["duration_s"])
    period = th.short_poll_period_s(
        interval_s, latency_ms / 1000.0, sc["server.poll_ms"] / 1000.0, "fixed_delay"
    )
    assert gaps.size > 0
    assert gaps == pytest.approx(np.full(gaps.size, period), abs=1e-9)
    rate = th.short_poll_rate_per_s(
        20, interval_s, latency_ms / 1000.0, sc["server.poll_ms"] / 1000.0, "fixed_delay"
    )
    assert rate == pytest.approx(20 / gaps.mean(), rel=1e-9)


def empty_polls(results, start_s: float, end_s: float) -> tuple[int, int]:
    empty = total = 0
    for r in results:
        p = polls(r)
        p = p[(p["t"] >= start_s) & (p["t"] < end_s)]
        empty += int((p["messages"] == 0).sum())
        total += len(p)
    return empty, total


@pytest.mark.parametrize(
    "rate, interval_s, schedule",
    [
        (0.05, 2.0, "fixed_rate"),
        (0.25, 2.0, "fixed_rate"),
        (1.0, 2.0, "fixed_rate"),
        (0.5, 0.4, "fixed_rate"),
        (0.5, 1.0, "fixed_delay"),
    ],
)
def test_short_poll_empty_fraction_is_exp_minus_lambda_times_period(rate, interval_s, schedule):
    # λ = send rate per user (every user online, recipients uniform over the others).
    # Only polls inside the sending period count: during the drain every poll is empty.
    d_ms = 250.0 if schedule == "fixed_delay" else 50.0
    sc = short_poll(
        interval_s,
        d_ms,
        **{
            "workload.send_rate_per_user": rate,
            "transport.poll_schedule": schedule,
            "server.poll_ms": 0.0,
        },
    )
    lam = th.receive_rate_per_user(rate, sc["workload.users"])
    expected = th.short_poll_empty_fraction(lam, interval_s, d_ms / 1000.0, 0.0, schedule)
    period = th.short_poll_period_s(interval_s, d_ms / 1000.0, 0.0, schedule)
    empty, total = empty_polls(replicate(sc, 3), period + 1.0, sc["duration_s"])
    assert_proportion_matches(
        empty, total, expected, f"empty polls λ={rate} T={interval_s} {schedule}"
    )


# --------------------------------------------------------------------------------------
# Long polling
# --------------------------------------------------------------------------------------
LONG_POLL_POINTS = [
    # (receive rate λ per user, hold H s, one-way delay ms, users, duration s)
    (0.05, 10.0, 100.0, 40, 400.0),
    (0.2, 5.0, 50.0, 100, 60.0),
    (1.0, 2.0, 200.0, 60, 60.0),
    (2.0, 2.0, 100.0, 40, 60.0),
]
LP_IDS = [f"lam{p[0]}-H{p[1]:g}-d{p[2]:g}" for p in LONG_POLL_POINTS]


def long_poll(
    lam: float, hold_s: float, latency_ms: float, users: int, duration_s: float
) -> immodel.Scenario:
    return scenario(
        **{
            "transport.kind": "long_poll",
            "transport.long_poll_hold_s": hold_s,
            "network.latency_ms": latency_ms,
            "workload.users": users,
            "workload.send_rate_per_user": lam,
            "duration_s": duration_s,
            "drain_s": hold_s + 10.0,
        }
    )


def lp_theory_args(sc: immodel.Scenario) -> tuple[float, float, float, float]:
    lam = th.receive_rate_per_user(sc["workload.send_rate_per_user"], sc["workload.users"])
    d = th.one_way_delay_mean_s(sc["network.latency_ms"])
    return lam, sc["transport.long_poll_hold_s"], d, sc["server.poll_ms"] / 1000.0


def lp_window(sc: immodel.Scenario) -> tuple[float, float]:
    """Polls whose whole cycle lies in the sending period, after a warm-up.

    Clients connected at t = 0 send their first poll within one cycle (spread by their
    phase), and the cycle has atoms (at b and at b + H), so counting polls needs a few
    cycles of warm-up before the count per second is the stationary N/C.
    """
    lam, hold, d, s_poll = lp_theory_args(sc)
    b = th.long_poll_blind_window_s(d, s_poll)
    warm_up = max(hold + 1.0, 5.0 * th.long_poll_cycle_s(lam, hold, d, s_poll))
    return warm_up, sc["duration_s"] - hold - b


@pytest.fixture(scope="module", params=LONG_POLL_POINTS, ids=LP_IDS)
def lp_runs(request) -> tuple[immodel.Scenario, list[immodel.Result]]:
    """The replications of one long-poll point, shared by the four checks below (a
    module-scoped parameter makes pytest run the checks of one point together)."""
    sc = long_poll(*request.param)
    return sc, replicate(sc, R)


# Cycle, rate and latency are compared per replication with the formula at the run's
# realized receive rate (a control variate): the Poisson count of a 60 s workload moves
# λ by ~1 %, which moves C by about as much, more than the rest of the noise.
def test_long_poll_cycle_is_blind_window_plus_expected_hold(lp_runs):
    sc, results = lp_runs
    lam, hold, d, s_poll = lp_theory_args(sc)
    start, end = lp_window(sc)
    cycles = [poll_gaps(r, start, end).mean() for r in results]
    expected = [th.long_poll_cycle_s(realized_receive_rate(r), hold, d, s_poll) for r in results]
    nominal = th.long_poll_cycle_s(lam, hold, d, s_poll)
    assert_mean_matches(
        cycles, expected, f"long poll cycle λ={lam} H={hold} d={d}", nominal=nominal, detect=DETECT
    )


def test_long_poll_polls_per_second_is_n_over_cycle(lp_runs):
    sc, results = lp_runs
    lam, hold, d, s_poll = lp_theory_args(sc)
    n = sc["workload.users"]
    start, end = lp_window(sc)
    rates = []
    for r in results:
        t = polls(r)["t"].to_numpy()
        rates.append(((t >= start) & (t < end)).sum() / (end - start))
    expected = [
        th.long_poll_rate_per_s(n, realized_receive_rate(r), hold, d, s_poll) for r in results
    ]
    nominal = th.long_poll_rate_per_s(n, lam, hold, d, s_poll)
    assert_mean_matches(
        rates,
        expected,
        f"long polls per second λ={lam} H={hold} d={d}",
        nominal=nominal,
        detect=DETECT,
    )


def test_long_poll_mean_latency_is_two_delays_plus_blind_window_share(lp_runs):
    sc, results = lp_runs
    lam, hold, d, s_poll = lp_theory_args(sc)
    path = th.message_path_service_s(sc)
    expected = [
        th.long_poll_mean_latency_s(realized_receive_rate(r), hold, d, path, s_poll)
        for r in results
    ]
    nominal = th.long_poll_mean_latency_s(lam, hold, d, path, s_poll)
    # Clients connected at t = 0 make their first poll within one cycle (their phase):
    # measure messages sent after that warm-up.
    start, _ = lp_window(sc)
    assert_mean_matches(
        mean_latency_after_s(results, start),
        expected,
        f"long poll latency λ={lam} H={hold} d={d}",
        nominal=nominal,
        detect=DETECT,
    )


def test_long_poll_empty_fraction_is_exp_minus_lambda_times_hold_plus_window(lp_runs):
    sc, results = lp_runs
    lam, hold, d, s_poll = lp_theory_args(sc)
    start, end = lp_window(sc)
    empty, total = empty_polls(results, start, end)
    expected = th.long_poll_empty_fraction(lam, hold, d, s_poll)
    assert_proportion_matches(empty, total, expected, f"empty long polls λ={lam} H={hold} d={d}")


@pytest.mark.parametrize("hold_s, latency_ms", [(1.0, 10.0), (5.0, 100.0), (30.0, 250.0)])
def test_idle_long_poll_client_polls_once_per_hold_plus_round_trip(hold_s, latency_ms):
    # No messages; constant service; more poll workers than clients (no queueing).
    sc = scenario(
        **{
            "transport.kind": "long_poll",
            "transport.long_poll_hold_s": hold_s,
            "network.latency_ms": latency_ms,
            "workload.users": 10,
            "workload.send_rate_per_user": 0.0,
            "server.workers": 16,
            "server.service_dist": "constant",
            "duration_s": 3 * hold_s + 5.0,
        }
    )
    result = replicate(sc, 1)[0]
    d, s_poll = latency_ms / 1000.0, sc["server.poll_ms"] / 1000.0
    # A client connected at t = 0 starts with a residual hold (phase × H): count the
    # gaps that start after every client's second poll, which are full cycles.
    gaps = poll_gaps(result, hold_s + 3 * d + 0.01, sc["duration_s"])
    cycle = th.long_poll_cycle_s(0.0, hold_s, d, s_poll)
    assert gaps.size > 0
    assert gaps == pytest.approx(np.full(gaps.size, cycle), abs=1e-9)
    assert th.long_poll_rate_per_s(10, 0.0, hold_s, d, s_poll) == pytest.approx(10 / cycle)

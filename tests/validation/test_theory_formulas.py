"""The formulas of ``immodel.analysis.theory`` against independent computations.

Before the simulator is judged by them, each formula is checked on its own: against the
textbook closed form it generalises, a limit it must reach, or a small Monte Carlo /
Lindley recursion written here from the definition (numpy only, no simulator).
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

import immodel
from immodel.analysis import theory as th
from immodel.sim.network import latency_mean_s


def erlang_c_direct(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize("c, a", [(1, 0.3), (2, 1.2), (4, 2.8), (8, 6.4), (16, 15.0)])
def test_erlang_c_recursion_equals_the_direct_sum(c, a):
    assert th.erlang_c(c, a) == pytest.approx(erlang_c_direct(c, a), rel=1e-12)


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_one_server_queues_reduce_to_mm1_and_md1(rho):
    s = 0.01
    lam = rho / s
    assert th.erlang_c(1, rho) == pytest.approx(rho)
    mm1 = rho * s / (1 - rho)
    assert th.mmc_mean_wait_s(lam, s, 1) == pytest.approx(mm1)
    assert th.mg1_mean_wait_s(lam, s, 1.0) == pytest.approx(mm1)
    assert th.md1_mean_wait_s(lam, s) == pytest.approx(mm1 / 2)
    for dist in ("exponential", "lognormal"):
        assert th.mean_stage_wait_s(lam, s, 1, dist) == pytest.approx(mm1)


def lindley_periodic_mean_wait(n: int, period: float, reps: int, rng) -> float:
    """Mean wait of n periodic unit-service sources with uniform phases (Lindley)."""
    waits = []
    for _ in range(reps):
        t = np.sort(rng.random(n) * period)
        arrivals = np.concatenate([t + k * period for k in range(4)])
        w, out = 0.0, []
        for i in range(1, arrivals.size):
            w = max(0.0, w + 1.0 - (arrivals[i] - arrivals[i - 1]))
            out.append(w)
        waits.append(np.mean(out[-n:]))  # the last period: periodic steady state
    return float(np.mean(waits)), float(np.std(waits, ddof=1) / math.sqrt(reps))


@pytest.mark.parametrize("n, period", [(5, 10.0), (20, 25.0), (50, 100.0)])
def test_periodic_sources_wait_matches_a_lindley_recursion(n, period):
    mean, se = lindley_periodic_mean_wait(n, period, 1500, np.random.default_rng(n))
    assert th.periodic_sources_mean_wait_s(n, period, 1.0) == pytest.approx(mean, abs=4 * se)


def test_periodic_sources_wait_rises_to_md1_as_sources_grow():
    rho, s = 0.8, 1.0
    md1 = th.md1_mean_wait_s(rho / s, s)
    # The gap closes about like 1/N (≈ 50/N at ρ = 0.8): 17 % at N = 100, 0.5 % at 10⁴.
    waits = [th.periodic_sources_mean_wait_s(n, n * s / rho, s) for n in (5, 20, 100, 10_000)]
    assert all(a < b for a, b in pairwise(waits))
    assert waits[-1] == pytest.approx(md1, rel=0.01)
    assert waits[0] < 0.6 * md1


@pytest.mark.parametrize("lam, hold, d", [(0.1, 30.0, 0.04), (1.0, 5.0, 0.2), (5.0, 1.0, 0.1)])
def test_long_poll_cycle_is_the_textbook_form_when_the_poll_takes_no_service(lam, hold, d):
    textbook = math.exp(-2 * lam * d) * (1 - math.exp(-lam * hold)) / lam + 2 * d
    assert th.long_poll_cycle_s(lam, hold, d) == pytest.approx(textbook)
    latency = 2 * d + 0.002 + 2 * d * d / textbook
    assert th.long_poll_mean_latency_s(lam, hold, d, 0.002) == pytest.approx(latency)


def test_long_poll_cycle_of_an_idle_client_is_hold_plus_blind_window():
    assert th.long_poll_cycle_s(0.0, 30.0, 0.04, 0.0002) == pytest.approx(30.0802)
    assert th.long_poll_cycle_s(1e-9, 30.0, 0.04, 0.0002) == pytest.approx(30.0802, rel=1e-6)


def test_long_poll_latency_matches_a_monte_carlo_of_the_cycle_model():
    # The cycle model on its own: one client, Poisson arrivals, blind window b after each
    # response R; then the poll is answered at once if anything waits, else held for H.
    rng = np.random.default_rng(7)
    lam, hold, b = 2.0, 2.0, 0.2
    arrivals = np.cumsum(rng.exponential(1 / lam, 200_000))
    response, i, cycles, extra = 0.0, 0, 0, []
    while i < arrivals.size:
        served = response + b
        j = i
        while j < arrivals.size and arrivals[j] <= served:
            extra.append(served - arrivals[j])  # waited for the blind window to end
            j += 1
        if j > i:
            response = served  # answered as soon as the poll is served
        elif j < arrivals.size and arrivals[j] - served <= hold:
            extra.append(0.0)  # answered the moment it arrives at the held poll
            response = arrivals[j]
            j += 1
        else:
            response = served + hold  # the hold expired: empty response
        i = j
        cycles += 1
    assert response / cycles == pytest.approx(th.long_poll_cycle_s(lam, hold, b / 2), rel=0.01)
    blind_share = th.long_poll_mean_latency_s(lam, hold, b / 2, 0.0) - b
    assert np.mean(extra) == pytest.approx(blind_share, rel=0.03)


@pytest.mark.parametrize("p", [0.05, 0.2, 0.4])
def test_retry_penalty_sum_reaches_the_closed_forms(p):
    assert th.retry_penalty_s(p, 1.0, 1.0, 400) == pytest.approx(p / (1 - p))
    assert th.retry_penalty_s(p, 1.0) == pytest.approx(p / (1 - p))
    assert th.retry_penalty_s(p, 1.0, 1.0, 1) == 0.0
    if 2 * p < 1:
        assert th.retry_penalty_s(p, 0.5, 2.0, 400) == pytest.approx(0.5 * p / (1 - 2 * p))


@pytest.mark.parametrize("p_up, p_down", [(0.1, 0.1), (0.3, 0.05), (0.05, 0.4)])
def test_loss_formulas_follow_from_the_retry_process(p_up, p_down):
    q = (1 - p_up) * (1 - p_down)
    assert th.mean_uplink_transmissions(p_up, p_down) == pytest.approx(1 / q)
    assert th.mean_push_transmissions(p_up, p_down) == pytest.approx(1 / q)
    # copies: 1 + E[failed attempts] · P(push arrived | attempt failed)
    copies = 1 + (1 - q) / q * ((1 - p_down) * p_up / (1 - q))
    assert th.mean_copies_at_client(p_up, p_down) == pytest.approx(copies)
    assert th.duplicates_per_message(p_up) == pytest.approx(copies - 1)
    for m in (1, 3, 10):
        assert th.failed_but_stored_probability(p_up, p_down, m) >= 0
    # Monte Carlo of the pending-ACK loop: push until push and ACK both survive.
    rng = np.random.default_rng(3)
    pushes = copies_mc = 0
    for _ in range(20_000):
        while True:
            pushes += 1
            arrived = rng.random() >= p_down
            copies_mc += arrived
            if arrived and rng.random() >= p_up:
                break
    assert pushes / 20_000 == pytest.approx(1 / q, rel=0.03)
    assert copies_mc / 20_000 == pytest.approx(copies, rel=0.03)


@pytest.mark.parametrize(
    "spec",
    [
        40.0,
        {"dist": "constant", "value": 25.0},
        {"dist": "exponential", "mean": 50.0},
        {"dist": "lognormal", "median": 40.0, "p99": 300.0},
        {"dist": "empirical", "samples": [10.0, 20.0, 90.0]},
    ],
)
def test_one_way_delay_mean_agrees_with_the_model_and_with_sampling(spec):
    assert th.one_way_delay_mean_s(spec) == pytest.approx(latency_mean_s(spec))
    if isinstance(spec, dict) and spec["dist"] == "lognormal":
        sigma = math.log(spec["p99"] / spec["median"]) / th.Z_99
        draws = np.random.default_rng(1).lognormal(math.log(spec["median"]), sigma, 400_000)
        assert th.one_way_delay_mean_s(spec) * 1000 == pytest.approx(draws.mean(), rel=0.01)


def test_message_path_sums_the_stages_a_message_passes():
    sc = immodel.Scenario.load("baseline")
    assert th.message_path_service_s(sc) == pytest.approx(
        (0.3 + 0.3 + 0.3 + 1.0 + 0.1 + 0.02) / 1000
    )
    sc = sc.with_overrides({"server.screening_enabled": True, "server.callback_enabled": True})
    cb = 0.030 * (1 - math.exp(-0.5 / 0.030))
    expected = (0.3 + 0.3 + 5.0 + 0.3 + 1.0 + 0.1 + 0.02) / 1000 + cb
    assert th.message_path_service_s(sc) == pytest.approx(expected)


def test_receive_rate_counts_only_online_senders():
    assert th.receive_rate_per_user(0.2, 100) == pytest.approx(0.2)
    assert th.receive_rate_per_user(0.2, 101, online=51) == pytest.approx(0.2 * 50 / 100)


def test_short_poll_freshness_tends_to_push_and_is_0_63_of_it_at_the_publish_interval():
    lam, base = 0.5, 0.1
    push = th.fresh_fraction_push(lam, base)
    assert th.fresh_fraction_short_poll(lam, 1e-6, base) == pytest.approx(push, rel=1e-5)
    assert th.fresh_fraction_short_poll(lam, 1 / lam, base) / push == pytest.approx(
        1 - math.exp(-1)
    )
    assert th.fresh_fraction_periodic_publish(2.0, 1.5, 0.1) == 1.0
    assert th.fresh_fraction_periodic_publish(2.0, 3.8, 0.1) == pytest.approx(0.5)


def test_fresh_fraction_counts_messages_shown_before_the_next_send():
    m = pd.DataFrame(
        {
            "recipient": [1, 1, 1, 2, 2],
            "t_send": [0.0, 1.0, 5.0, 0.0, 9.0],
            "t_first_show": [0.5, 6.0, 5.1, np.nan, 9.2],
            "stored": True,
            "online_at_store": True,
        }
    )
    # r1: 0→0.5 < 1 fresh; 1→6 > 5 stale; 5 (last) fresh; r2: never shown; 9 beyond until.
    assert th.fresh_fraction(m, until_s=8.0) == (2, 4)


def mmc_wait_from_the_birth_death_chain(lam: float, s: float, c: int) -> float:
    """W_q of M/M/c from its stationary distribution (truncated far in the tail), by
    Little's law W_q = L_q/λ: no Erlang formula involved."""
    a = lam * s
    n = np.arange(0, 4000)
    # log p_n up to a constant: a^n/n! below c, a^c/c!·(a/c)^(n−c) from c on.
    log_p = np.where(
        n < c,
        n * math.log(a) - np.array([math.lgamma(k + 1) for k in n]),
        c * math.log(a) - math.lgamma(c + 1) + (n - c) * math.log(a / c),
    )
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    return float(np.sum(np.clip(n - c, 0, None) * p)) / lam


@pytest.mark.parametrize("c, rho", [(1, 0.5), (2, 0.6), (4, 0.7), (8, 0.9), (16, 0.95)])
def test_mmc_wait_equals_the_birth_death_chain(c, rho):
    s = 0.01
    lam = rho * c / s
    assert th.mmc_mean_wait_s(lam, s, c) == pytest.approx(
        mmc_wait_from_the_birth_death_chain(lam, s, c), rel=1e-9
    )
    assert th.mean_stage_wait_s(lam, s, c, "exponential") == pytest.approx(
        th.mmc_mean_wait_s(lam, s, c), rel=1e-12
    )


@pytest.mark.parametrize("schedule", ["fixed_rate", "fixed_delay"])
@pytest.mark.parametrize(
    "interval_s, d, service_s, poll_s", [(2.0, 0.05, 0.002, 0.001), (0.5, 0.2, 0.0, 0.0)]
)
def test_short_poll_latency_matches_a_monte_carlo_of_the_poll_cycle(
    schedule, interval_s, d, service_s, poll_s
):
    # One client with constant delays, written from the event order: polls leave at
    # φ + kT (fixed rate) or T after each response (fixed delay); a poll is served
    # (s_poll) d after it leaves and answers d later. A message submitted at t0 enters the
    # outbox at t0 + d + S, leaves with the first poll served after that, and is shown d
    # after that poll's service. Poisson submissions, 200 000 of them.
    rng = np.random.default_rng(11)
    n = 200_000
    t0 = np.cumsum(rng.exponential(0.37, n))
    if schedule == "fixed_rate":
        leave = rng.random() * interval_s + interval_s * np.arange(int(t0[-1] / interval_s) + 10)
    else:
        period = interval_s + 2 * d + poll_s
        leave = rng.random() * period + period * np.arange(int(t0[-1] / period) + 10)
    served = leave + d + poll_s
    ready = t0 + d + service_s
    taken = served[np.searchsorted(served, ready, side="left")]
    latency = taken + d - t0
    se = latency.std() / math.sqrt(n)
    expected = th.short_poll_mean_latency_s(interval_s, d, service_s, schedule, poll_s)
    assert latency.mean() == pytest.approx(expected, abs=4 * se)
    # The closed forms of the docstring, written out.
    closed = {
        "fixed_rate": interval_s / 2 + 2 * d + service_s,
        "fixed_delay": interval_s / 2 + 3 * d + service_s + poll_s / 2,
    }[schedule]
    assert expected == pytest.approx(closed, rel=1e-12)


# --------------------------------------------------------------------------------------
# The remaining closed forms, each written out once more or computed another way
# --------------------------------------------------------------------------------------
def test_short_poll_period_rate_and_empty_fraction_are_their_closed_forms():
    t, d, s = 2.0, 0.05, 0.004
    assert th.short_poll_period_s(t, d, s) == t
    assert th.short_poll_period_s(t, d, s, "fixed_delay") == pytest.approx(t + 2 * d + s)
    assert th.short_poll_rate_per_s(50, t, d, s) == pytest.approx(25.0)
    assert th.short_poll_rate_per_s(50, t, d, s, "fixed_delay") == pytest.approx(
        50 / (t + 2 * d + s)
    )
    # Empty: no Poisson arrival in one period; counted from Poisson draws as well.
    lam = 0.3
    assert th.short_poll_empty_fraction(lam, t) == pytest.approx(math.exp(-lam * t))
    period = t + 2 * d + s
    assert th.short_poll_empty_fraction(lam, t, d, s, "fixed_delay") == pytest.approx(
        math.exp(-lam * period)
    )
    counts = np.random.default_rng(5).poisson(lam * t, 400_000)
    assert th.short_poll_empty_fraction(lam, t) == pytest.approx((counts == 0).mean(), abs=0.003)


@pytest.mark.parametrize("p_up, p_down", [(0.1, 0.0), (0.05, 0.2)])
def test_short_poll_loss_penalty_is_one_period_per_failed_round_trip(p_up, p_down):
    q = (1 - p_up) * (1 - p_down)
    failures = np.random.default_rng(2).geometric(q, 400_000) - 1
    t = 1.5
    assert th.short_poll_loss_penalty_s(t, p_up, p_down) == pytest.approx(t * (1 - q) / q)
    assert th.short_poll_loss_penalty_s(t, p_up, p_down) == pytest.approx(
        t * failures.mean(), rel=0.02
    )


def test_long_poll_rates_and_empty_fraction_are_their_closed_forms():
    lam, hold, d, s = 0.5, 20.0, 0.05, 0.001
    b = 2 * d + s
    assert th.long_poll_blind_window_s(d, s) == pytest.approx(b)
    cycle = b + math.exp(-lam * b) * (1 - math.exp(-lam * hold)) / lam
    assert th.long_poll_cycle_s(lam, hold, d, s) == pytest.approx(cycle)
    assert th.long_poll_rate_per_s(40, lam, hold, d, s) == pytest.approx(40 / cycle)
    assert th.long_poll_rate_per_s(40, 0.0, hold, d, s) == pytest.approx(40 / (hold + b))
    assert th.long_poll_empty_fraction(lam, hold, d, s) == pytest.approx(
        math.exp(-lam * (b + hold))
    )
    assert th.long_poll_mean_latency_s(lam, hold, d, 0.003, s) == pytest.approx(
        2 * d + 0.003 + b * b / (2 * cycle)
    )


def test_light_load_and_unprotected_delivery_closed_forms():
    assert th.push_mean_latency_s(0.04, 0.002) == pytest.approx(0.082)
    assert th.utilization(300.0, 0.01, 4) == pytest.approx(0.75)
    assert th.unprotected_delivered_fraction(0.1, 0.2) == pytest.approx(0.72)
    assert th.polls_matching_push_traffic_interval_s(0.5, 30.0) == pytest.approx(1 / (0.5 + 1 / 30))


@pytest.mark.parametrize("p_up, p_down, m", [(0.2, 0.1, 1), (0.2, 0.1, 3), (0.5, 0.3, 5)])
def test_sender_outcome_probabilities_enumerate_the_attempts(p_up, p_down, m):
    # Enumerate every attempt's fate (send lost / reply lost / both through) exactly.
    q = (1 - p_up) * (1 - p_down)
    fail_all = (1 - q) ** m
    assert th.send_failure_probability(p_up, p_down, m) == pytest.approx(fail_all)
    assert th.never_stored_probability(p_up, m) == pytest.approx(p_up**m)
    assert th.failed_but_stored_probability(p_up, p_down, m) == pytest.approx(fail_all - p_up**m)
    transmissions = sum(k * (1 - q) ** (k - 1) * q for k in range(1, m + 1)) + m * fail_all
    assert th.mean_uplink_transmissions(p_up, p_down, m) == pytest.approx(transmissions)


@pytest.mark.parametrize("p, backoff, m", [(0.3, 1.0, 3), (0.2, 2.0, 4), (0.4, 1.5, 6)])
def test_retry_penalty_with_an_attempt_limit_enumerates_the_failures(p, backoff, m):
    timeout = 2.0
    delays = [timeout * sum(backoff**i for i in range(f)) for f in range(m)]
    weights = [(1 - p) * p**f for f in range(m)]
    expected = sum(w * x for w, x in zip(weights, delays, strict=True)) / sum(weights)
    assert th.retry_penalty_s(p, timeout, backoff, m) == pytest.approx(expected)
    assert th.retry_penalty_s(0.0, timeout, backoff, m) == 0.0
    assert th.retry_penalty_s(0.6, timeout, 2.0) == math.inf  # b·p ≥ 1: no finite mean


def test_callback_mean_is_the_mean_of_an_exponential_cut_at_the_timeout():
    rng = np.random.default_rng(4)
    x = np.minimum(rng.exponential(0.03, 400_000), 0.05)
    assert th.callback_mean_s(0.03, 0.05) == pytest.approx(x.mean(), rel=0.005)
    assert th.callback_mean_s(0.03, 0.05) == pytest.approx(0.03 * (1 - math.exp(-0.05 / 0.03)))
    assert th.callback_mean_s(0.0, 0.05) == 0.0


def test_stage_wait_for_each_service_distribution_and_overload():
    lam, s = 60.0, 0.01
    assert th.mean_stage_wait_s(lam, s, 1, "constant") == pytest.approx(0.6 * s / (2 * 0.4))
    assert th.mean_stage_wait_s(lam, s, 1, "lognormal") == pytest.approx(0.6 * s / 0.4)
    # c > 1 and constant service: Allen–Cunneen, half the M/M/c wait (CV = 0).
    assert th.mean_stage_wait_s(150.0, s, 2, "constant") == pytest.approx(
        th.mmc_mean_wait_s(150.0, s, 2) / 2
    )
    assert th.mean_stage_wait_s(150.0, s, 2, "lognormal") == pytest.approx(
        th.mmc_mean_wait_s(150.0, s, 2)
    )
    assert th.erlang_c(2, 2.0) == 1.0
    assert th.mmc_mean_wait_s(200.0, s, 2) == math.inf
    assert th.mg1_mean_wait_s(100.0, s, 1.0) == math.inf
    assert th.periodic_sources_mean_wait_s(10, 1.0, 0.1) == math.inf
    assert th.periodic_sources_mean_wait_s(1, 1.0, 0.1) == 0.0  # a lone source never waits


def test_short_poll_freshness_integrates_push_freshness_over_the_poll_phase():
    lam, t, base = 0.4, 3.0, 0.1
    u = (np.arange(200_000) + 0.5) / 200_000  # midpoint rule over the phase U
    integral = float(np.mean(np.exp(-lam * (base + u * t))))
    assert th.fresh_fraction_short_poll(lam, t, base) == pytest.approx(integral, rel=1e-8)
    assert th.fresh_fraction_short_poll(0.0, t, base) == 1.0
    assert th.fresh_fraction_push(lam, base) == pytest.approx(math.exp(-lam * base))
    assert th.fresh_fraction_periodic_publish(0.05, 1.0, 0.1) == 0.0


# --------------------------------------------------------------------------------------
# Edges that mutation testing showed unchecked (make mutation)
# --------------------------------------------------------------------------------------
def test_defaults_mean_no_delay_no_poll_service_fixed_rate_and_one_server():
    t, d, s, lam = 2.0, 0.05, 0.003, 0.4
    assert th.short_poll_period_s(t, schedule="fixed_delay") == t
    assert th.short_poll_rate_per_s(10, t, schedule="fixed_delay") == pytest.approx(5.0)
    assert th.short_poll_mean_latency_s(t, d, s) == pytest.approx(t / 2 + 2 * d + s)
    assert th.short_poll_mean_latency_s(t, d, s, "fixed_delay") == pytest.approx(t / 2 + 3 * d + s)
    assert th.short_poll_empty_fraction(lam, t, d, s) == pytest.approx(math.exp(-lam * t))
    assert th.short_poll_empty_fraction(lam, t, schedule="fixed_delay") == pytest.approx(
        math.exp(-lam * t)
    )
    assert th.long_poll_blind_window_s(d) == pytest.approx(2 * d)
    assert th.long_poll_rate_per_s(10, 0.0, 30.0, d) == pytest.approx(10 / (30.0 + 2 * d))
    assert th.long_poll_empty_fraction(lam, 30.0, d) == pytest.approx(
        math.exp(-lam * (30.0 + 2 * d))
    )
    assert th.utilization(50.0, 0.01) == pytest.approx(0.5)


def test_long_poll_latency_counts_the_poll_service_in_its_cycle():
    # A slow poll stage (0.5 s) makes the blind window, hence the cycle, visibly longer.
    lam, hold, d, s_poll = 1.0, 2.0, 0.05, 0.5
    b = 2 * d + s_poll
    cycle = b + math.exp(-lam * b) * (1 - math.exp(-lam * hold)) / lam
    assert th.long_poll_mean_latency_s(lam, hold, d, 0.0, s_poll) == pytest.approx(
        2 * d + b * b / (2 * cycle)
    )


def test_group_fan_out_costs_one_fan_out_step_per_recipient():
    sc = immodel.Scenario.load("baseline")
    one = th.message_path_service_s(sc)
    assert th.message_path_service_s(sc, recipients=5) == pytest.approx(one + 4 * 0.02 / 1000)


def test_two_periodic_sources_wait_s_squared_over_two_periods():
    # The other source's job lands uniformly in the period: this one waits S − u when
    # the other arrived u < S earlier, so E[W] = ∫₀^S (S − u) du / T = S²/(2T).
    assert th.periodic_sources_mean_wait_s(2, 10.0, 1.0) == pytest.approx(0.05, rel=1e-9)


def test_pollaczek_khinchine_for_a_service_cv_between_constant_and_exponential():
    assert th.mg1_mean_wait_s(50.0, 0.01, 0.5) == pytest.approx(0.5 * 0.01 * 1.25 / (2 * 0.5))


def test_retry_penalty_at_the_divergence_edge_is_infinite():
    assert th.retry_penalty_s(0.5, 1.0, 2.0) == math.inf  # b·p = 1 exactly


def test_periodic_publish_freshness_with_less_than_one_second_of_slack():
    assert th.fresh_fraction_periodic_publish(1.0, 1.8, 0.1) == pytest.approx(0.5)


def test_fresh_fraction_edges_ties_unstored_and_the_cut_off():
    m = pd.DataFrame(
        {
            "recipient": [1, 1, 1, 2],
            "t_send": [0.0, 1.0, 4.0, 2.0],
            "t_first_show": [1.0, 1.5, np.nan, np.nan],
            "stored": [True, True, True, False],
            "online_at_store": True,
        }
    )
    # r1: 0 shown at 1.0, exactly when the next was sent: not before, so stale; 1 → 1.5
    # before 4: fresh; 4 is the cut-off (not counted). r2's message was never stored.
    assert th.fresh_fraction(m, until_s=4.0) == (1, 2)

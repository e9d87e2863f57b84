"""Deadlines fire at their own instant: a timer scheduled with ``at_time`` runs at exactly
the deadline it was armed for, where ``later(t - now)`` can land one rounding step early
(the case that once left a client's timer armed forever and its sync never retried)."""

from __future__ import annotations

import simpy

from immodel.sim.kernel import at_time, later, run_until

# A pair seen in a run: now + (deadline - now) rounds to just below the deadline.
NOW_S = 5.832730856899777
DEADLINE_S = 15.003176123247057


def _fire_times(schedule) -> list[float]:
    env = simpy.Environment()
    fired: list[float] = []
    later(env, NOW_S, lambda _: schedule(env, fired), None)
    run_until(env, 100.0)
    return fired


def test_a_delay_from_now_can_round_below_the_deadline():
    # why at_time exists: the arithmetic SimPy does for a delay
    assert NOW_S + (DEADLINE_S - NOW_S) < DEADLINE_S


def test_at_time_fires_exactly_at_the_deadline():
    fired = _fire_times(
        lambda env, out: at_time(env, DEADLINE_S, lambda _: out.append(env.now), None)
    )
    assert fired == [DEADLINE_S]


def test_at_time_in_the_past_fires_now():
    fired = _fire_times(lambda env, out: at_time(env, 1.0, lambda _: out.append(env.now), None))
    assert fired == [NOW_S]

"""Deadlines kept in slots run in exactly the order they would from the event heap.

:class:`immodel.sim.kernel.Deadlines` keeps far deadlines out of the heap until their
slot opens. The promise is that nothing observable changes: every deadline that is not
cancelled runs at its own instant and, among events at the same instant, in the order
it was set — the same sequence as scheduling each one on the heap with ``at_time`` and
making a cancelled one do nothing. Here random programs of timers (some setting more
timers when they run, some cancelling others, many on the same instant) run both ways.
"""

from __future__ import annotations

import random

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from immodel.sim.kernel import Deadlines, at_time, later, run_until

HORIZON_S = 40.0


def _program(seed: int) -> list[tuple[float, float, int, int | None]]:
    """``(set_at, fire_at, ident, cancel_ident_when_run)``: a plan of timers. Times sit on a
    coarse grid so that ties (same instant, and slot starts) are common."""
    rnd = random.Random(seed)
    plan = []
    for ident in range(rnd.randint(1, 60)):
        set_at = rnd.randint(0, 120) / 8.0
        fire_at = set_at + rnd.choice([0.0, 0.125, 0.25, 0.3, 1.0, 2.5, rnd.randint(0, 80) / 4])
        victim = rnd.randrange(ident + 1) if rnd.random() < 0.3 else None
        plan.append((set_at, fire_at, ident, victim))
    return plan


def _run(plan, slotted: bool, slot_s: float = 0.25) -> list[tuple[float, int]]:
    env = simpy.Environment()
    deadlines = Deadlines(env, slot_s)
    handles: dict[int, object] = {}
    cancelled: set[int] = set()
    armed: set[int] = set()
    fired: list[tuple[float, int]] = []

    def fire(arg) -> None:
        ident, victim = arg
        if not slotted and ident in cancelled:
            return  # the heap-only reference: a cancelled timer does nothing
        fired.append((env.now, ident))
        if victim is not None and victim in armed:  # only a timer that was set is cancelled
            cancelled.add(victim)
            if slotted:
                Deadlines.cancel(handles.get(victim))

    def arm(arg) -> None:
        fire_at, ident, victim = arg
        armed.add(ident)
        if slotted:
            handles[ident] = deadlines.at(fire_at, fire, (ident, victim))
        else:
            at_time(env, fire_at, fire, (ident, victim))

    for set_at, fire_at, ident, victim in plan:
        later(env, set_at, arm, (fire_at, ident, victim))
    run_until(env, HORIZON_S)
    return fired


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), slot_exp=st.integers(-4, 3))
def test_slots_run_the_same_deadlines_in_the_same_order_as_the_heap(seed, slot_exp):
    plan = _program(seed)
    assert _run(plan, slotted=True, slot_s=2.0**slot_exp) == _run(plan, slotted=False)


def test_a_cancelled_far_deadline_never_reaches_the_heap():
    env = simpy.Environment()
    deadlines = Deadlines(env, 0.25)
    fired = []
    handle = deadlines.later(10.0, fired.append, "late")
    deadlines.later(10.0, fired.append, "kept")
    Deadlines.cancel(handle)
    # one slot-opening event and nothing else on the heap until the slot opens
    assert len(env._queue) == 1
    run_until(env, 20.0)
    assert fired == ["kept"]
    assert deadlines.dropped == 1


def test_only_the_earliest_slot_waits_in_the_heap_and_every_slot_opens_on_time():
    env = simpy.Environment()
    deadlines = Deadlines(env, 0.25)
    fired = []
    # set latest first: each new slot is earlier than every slot armed so far
    for t in (9.0, 7.5, 5.0, 2.5, 3.0, 8.0, 1.0):
        deadlines.at(t, lambda t: fired.append((env.now, t)), t)
    # one opening event per slot that was the earliest when set (9, 7.5, 5, 2.5, 1), not
    # for 3.0 or 8.0, which slots before them arm when they open
    assert len(env._queue) == 5
    run_until(env, 20.0)
    assert fired == [(t, t) for t in (1.0, 2.5, 3.0, 5.0, 7.5, 8.0, 9.0)]
    assert not deadlines.slots and not env._queue


def test_a_deadline_in_the_past_runs_now():
    env = simpy.Environment()
    deadlines = Deadlines(env)
    fired = []
    later(env, 3.0, lambda _: deadlines.at(1.0, lambda _: fired.append(env.now), None), None)
    run_until(env, 5.0)
    assert fired == [3.0]


@pytest.mark.parametrize("slot_s", [0.0, -1.0, 0.3, 3.0])
def test_a_slot_that_is_not_a_power_of_two_is_refused(slot_s):
    with pytest.raises(ValueError, match="power of two"):
        Deadlines(simpy.Environment(), slot_s)

"""The kernel reuses events that have run (``kernel.FREE_CALLS``, ``stage.FREE_JOBS``,
``stage.FREE_TIMED_JOBS``): a reused event runs what it was last given, a timer whose
handle its owner keeps (a :class:`~immodel.sim.kernel.Deadline`) is never reused, and the
free lists are emptied when a run ends (what they hold refers to that run's world)."""

from __future__ import annotations

import simpy

from immodel.sim import kernel
from immodel.sim.kernel import Deadlines, later, run_until
from immodel.sim.stage import FREE_JOBS, FREE_TIMED_JOBS, Stage, TimedStage


def test_reused_calls_and_jobs_run_what_they_were_given_last() -> None:
    env = simpy.Environment()
    stage = Stage(env, "s", 0, 1, lambda scale=1.0: 0.25 * scale)
    timed = TimedStage(env, "t", 0, 1, lambda scale=1.0: 0.25 * scale)
    log: list[tuple[float, str]] = []

    def note(tag: str) -> None:
        log.append((env.now, tag))

    def chain(i: int) -> None:  # each event schedules the next: the lists refill and empty
        note(f"call{i}")
        if i < 5:
            later(env, 1.0, chain, i + 1)
            stage.submit(note, f"job{i}")
            timed.submit(note, f"timed{i}")

    later(env, 0.0, chain, 0)
    run_until(env, 10.0)
    expected = []
    for i in range(6):
        expected.append((float(i), f"call{i}"))
        if i < 5:
            expected += [(i + 0.25, f"job{i}"), (i + 0.25, f"timed{i}")]
    assert log == expected
    assert not kernel.FREE_CALLS and not FREE_JOBS and not FREE_TIMED_JOBS


def test_a_deadline_handle_is_never_reused_for_another_event() -> None:
    env = simpy.Environment()
    deadlines = Deadlines(env)
    fired: list[str] = []
    handle = deadlines.at(1.0, fired.append, "deadline")
    reused: list[bool] = []

    def after(_arg) -> None:
        # the deadline ran at 1 s: its handle is on no free list, and what later() takes
        # now is another object
        reused.append(any(c is handle for c in kernel.FREE_CALLS))
        later(env, 1.0, fired.append, "call")
        reused.append(any(entry[3] is handle for entry in env._queue))

    later(env, 1.5, after, None)
    run_until(env, 5.0)
    assert fired == ["deadline", "call"]
    assert reused == [False, False]
    # cancelling the handle after it ran touches nothing else
    Deadlines.cancel(handle)
    later(env, 1.0, fired.append, "after cancel")
    run_until(env, 10.0)
    assert fired == ["deadline", "call", "after cancel"]

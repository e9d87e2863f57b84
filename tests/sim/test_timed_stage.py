"""A :class:`TimedStage` is the same FIFO multi-server queue as a :class:`Stage`: fed the
same arrivals and the same service times, its jobs complete at the same instants and its
busy time, queue area and waits agree — also across a crash. Its :meth:`reserve` gives
the completion time a submitted job would have had."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from immodel.sim.kernel import later, run_until
from immodel.sim.stage import Stage, TimedStage


def _drive(stage_cls, workers: int, crash_at: float | None, seed: int):
    """Poisson arrivals (rate 9/s) of exponential jobs (mean 0.2 s) for ~190 s, queried
    at a few instants on the way and at the end."""
    env = simpy.Environment()
    draws = np.random.default_rng(seed).exponential(0.2, size=4000)
    it = iter(draws)
    stage = stage_cls(env, "s", 0, workers, lambda scale=1.0: float(next(it)) * scale)
    done: list[tuple[float, int]] = []
    seen: list[tuple] = []
    gaps = np.random.default_rng(seed + 1).exponential(1 / 9.0, size=1700)
    t = 0.0
    for i, gap in enumerate(gaps):
        t += float(gap)
        later(env, t, lambda k: stage.submit(lambda j: done.append((env.now, j)), k), i)
    for q in (37.0, 81.5, 150.25):
        later(env, q, lambda _: seen.append((len(stage.queue), stage.busy)), None)
    if crash_at is not None:
        later(env, crash_at, lambda _: seen.append(("dropped", stage.crash())), None)
    run_until(env, 400.0)
    return stage, done, seen


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("crash_at", [None, 93.7])
def test_timed_stage_completes_the_same_jobs_at_the_same_instants(workers, crash_at):
    a, done_a, seen_a = _drive(Stage, workers, crash_at, seed=11)
    b, done_b, seen_b = _drive(TimedStage, workers, crash_at, seed=11)
    assert done_a == done_b  # every completion, in order, at the same float instant
    assert seen_a == seen_b  # queue lengths and busy workers (and jobs a crash dropped)
    assert b.arrivals == a.arrivals and b.completed == a.completed
    assert math.isclose(b.busy_area(), a.busy_area(), rel_tol=1e-9)
    assert math.isclose(b.mean_queue_length(400.0), a.mean_queue_length(400.0), rel_tol=1e-9)
    assert math.isclose(b.wait_total_s, a.wait_total_s, rel_tol=1e-9, abs_tol=1e-9)
    assert a.wait_total_s > 0  # the comparison covers jobs that queued


def test_reserve_returns_the_completion_a_submitted_job_gets():
    env = simpy.Environment()
    services = iter([0.5, 0.25, 1.0, 0.125])
    stage = TimedStage(env, "s", 0, 2, lambda scale=1.0: next(services) * scale)
    # two free workers: the first two start now; the third waits for the earlier free one
    assert stage.reserve() == 0.5
    assert stage.reserve() == 0.25
    assert stage.reserve() == 0.25 + 1.0
    assert stage.reserve() == 0.5 + 0.125
    assert len(stage.queue) == 2 and stage.busy == 2
    env.run(until=0.4)
    assert len(stage.queue) == 1 and stage.busy == 2  # the third job started at 0.25
    assert math.isclose(stage.busy_area(), 0.4 + 0.25 + 0.15)

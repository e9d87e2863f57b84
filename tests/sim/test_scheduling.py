"""The simulator's own events: scheduled callbacks and server-stage jobs on SimPy's clock.

Both are scheduled as lightweight objects rather than ``simpy.Event``s (one allocation
per event instead of three); these tests pin that they behave like events: they fire at
their time, ties in scheduling order, and a stage is a FIFO multi-server queue.
"""

from __future__ import annotations

import simpy

from immodel import Scenario
from immodel.sim.stage import Stage, service_sampler
from immodel.sim.world import World


def test_scheduled_callbacks_fire_at_their_time_and_ties_in_scheduling_order():
    # A World takes a resolved scenario (drain_s a number, not "auto").
    world = World(Scenario.load("baseline", {"workload.users": 2}).resolved())
    fired: list[tuple[float, str]] = []
    for delay, name in [(2.0, "c"), (1.0, "a"), (2.0, "d"), (1.0, "b"), (0.0, "now")]:
        world.later(delay, lambda n: fired.append((world.env.now, n)), name)
    world.env.run(until=3.0)
    assert fired == [(0.0, "now"), (1.0, "a"), (1.0, "b"), (2.0, "c"), (2.0, "d")]


def _constant_stage(env: simpy.Environment, workers: int, service_s: float) -> Stage:
    return Stage(env, "test", 0, workers, service_sampler("constant", service_s, None))


def test_a_stage_serves_jobs_first_in_first_out_with_its_workers():
    env = simpy.Environment()
    stage = _constant_stage(env, workers=2, service_s=1.0)
    done: list[tuple[float, int]] = []
    for job in range(5):
        stage.submit(lambda j: done.append((env.now, j)), job)
    env.run()
    # Two at a time: jobs 0, 1 end at 1 s; 2, 3 at 2 s; 4 at 3 s.
    assert done == [(1.0, 0), (1.0, 1), (2.0, 2), (2.0, 3), (3.0, 4)]
    assert stage.completed == 5
    assert stage.wait_total_s == 0 + 0 + 1 + 1 + 2
    # Busy worker-seconds = total service; utilisation over 4 s with 2 workers.
    assert stage.busy_area() == 5.0
    assert stage.utilization(4.0) == 5.0 / 8.0
    # Queue length integral: 3 waiting during [0, 1), 1 during [1, 2).
    assert stage.mean_queue_length(4.0) == (3 * 1.0 + 1 * 1.0) / 4.0


def test_a_crash_drops_jobs_in_service_and_in_the_queue():
    env = simpy.Environment()
    stage = _constant_stage(env, workers=1, service_s=1.0)
    done: list[int] = []
    for job in range(3):
        stage.submit(done.append, job)
    env.run(until=1.5)  # job 0 done, job 1 in service, job 2 waiting
    assert stage.crash() == 2
    stage.submit(done.append, 99)  # after the crash the stage works again
    env.run()
    assert done == [0, 99]
    assert env.now == 2.5

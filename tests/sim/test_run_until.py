"""The model's event loop (``kernel.run_until``) runs what ``Environment.run`` runs, in
the same order, and stops where it stops."""

from __future__ import annotations

import simpy

from immodel.sim.kernel import later, run_until
from immodel.sim.stage import Stage


def _scenario(env: simpy.Environment, log: list) -> None:
    """Calls, stage jobs and a SimPy process, with ties at the same instants and at the end."""
    stage = Stage(env, "s", 0, 1, lambda scale=1.0: 0.5 * scale)

    def note(tag):
        log.append((env.now, tag))

    def proc():
        for i in range(4):
            yield env.timeout(1.0)
            note(f"proc{i}")
            stage.submit(note, f"job{i}")

    env.process(proc())
    for t in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0):
        later(env, t, note, f"call@{t}")
    later(env, 2.0, lambda _: stage.submit(note, "tie"), None)


def test_run_until_replays_simpy_run_event_for_event():
    a, b = [], []
    env_a, env_b = simpy.Environment(), simpy.Environment()
    _scenario(env_a, a)
    _scenario(env_b, b)
    env_a.run(until=3.0)
    run_until(env_b, 3.0)
    assert a == b
    assert env_a.now == env_b.now == 3.0
    # an event at exactly the end time is left for later, as SimPy's run leaves it
    assert (3.0, "call@3.0") not in b
    # all three kinds of event ran: calls, stage jobs (one queued behind the tie) and the process
    tags = {tag for _, tag in b}
    assert {"call@2.0", "proc1", "job0", "tie"} <= tags


def test_run_until_rejects_a_time_in_the_past():
    env = simpy.Environment()
    env.run(until=1.0)
    try:
        run_until(env, 1.0)
    except ValueError as exc:
        assert "until" in str(exc)
    else:
        raise AssertionError("run_until accepted an end time that is not in the future")

"""Progress reports while a world runs, without touching the model's own events.

:func:`run_with_progress` adds one watcher process to the world's SimPy environment, then
calls ``world.run()`` as usual. The watcher wakes every few simulated seconds (a step it
adapts so that it wakes about every :data:`SLICE_WALL_S` of wall time), reads the clock
and calls ``report(sim_now_s, horizon_s, events)``. It reads nothing of the model and
changes nothing: its timeouts take event ids, but events of the model keep their
relative order (SimPy orders by time, priority, then id), so the records are the same
with and without it. :func:`run_with_progress` returns how many events the watcher
itself scheduled, so the caller can leave them out of ``sim_events``.

What this needs of a world: ``env`` (a SimPy environment, public), ``horizon_s`` and
``run()`` that runs ``env`` until the horizon. Nothing in ``World.run`` has to call back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from immodel.sim.kernel import events_scheduled

#: About how often (wall seconds) ``report`` is called.
SLICE_WALL_S = 0.5

Report = Callable[[float, float, int], None]


def run_with_progress(world: Any, report: Report) -> int:
    """Run ``world`` (``world.run()``) and call ``report(now_s, horizon_s, events)`` about
    every :data:`SLICE_WALL_S` wall seconds and once at the end. Returns the number of
    events the watcher added (to subtract from an event count)."""
    env = world.env
    horizon = float(world.horizon_s)
    state = {"events": 0}

    def events_so_far() -> int:
        return events_scheduled(env) - state["events"]

    def watcher():
        step = max(horizon / 10_000.0, 1e-3)
        last = time.perf_counter()
        while env.now + step < horizon:
            state["events"] += 1
            yield env.timeout(step)
            wall = time.perf_counter()
            elapsed = wall - last
            if elapsed >= SLICE_WALL_S:
                report(env.now, horizon, events_so_far())
                last = wall
            # Adapt the step so that the next wake-up is about SLICE_WALL_S / 4 away.
            if elapsed > 0:
                step = min(max(step * (SLICE_WALL_S / 4) / elapsed, 1e-3), horizon / 20)

    state["events"] += 2  # the process's own event and its initialisation
    env.process(watcher())
    world.run()
    report(horizon, horizon, events_so_far())
    return state["events"]


def cli_reporter(stream: Any = None, delay_s: float = 1.0) -> tuple[Report, Callable[[], None]]:
    """A tqdm bar of simulated seconds (with events/s and ETA) for the command line.

    Returns ``(report, close)``. The bar appears only after ``delay_s`` of wall time,
    so short runs print nothing.
    """
    import sys

    from tqdm import tqdm

    stream = stream or sys.stderr
    bar: dict[str, Any] = {}
    start = time.perf_counter()

    def report(now_s: float, horizon_s: float, events: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(
                total=round(horizon_s, 1),
                unit="sim s",
                desc="simulating",
                file=stream,
                delay=delay_s,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} sim s "
                "[{elapsed}<{remaining}{postfix}]",
            )
        b = bar["bar"]
        b.n = round(now_s, 1)
        wall = time.perf_counter() - start
        b.set_postfix_str(f"{events / wall:,.0f} events/s" if wall > 0 else "", refresh=False)
        b.refresh()

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return report, close


__all__ = ["SLICE_WALL_S", "cli_reporter", "run_with_progress"]

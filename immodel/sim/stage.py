"""Server processing stages: multi-server FIFO queues on SimPy's clock.

A :class:`Stage` is one step of the server's pipeline (auth, checks, callback, screening,
recent contacts, store, downlink, poll, sync) on one node: ``workers`` identical servers
and one FIFO queue, each job taking a service time drawn from the stage's distribution.
A job is a callback; when its service completes, the callback runs and the next queued
job starts. This is an M/G/c queue built directly on SimPy events — one scheduled event
per job rather than a process with request/release events — so a node with hundreds of
thousands of jobs stays cheap. The stage integrates its busy workers and queue length
over time, which gives utilisation and (with Little's law) mean waiting times.

A crash (:meth:`Stage.crash`) empties the queue and marks jobs in service as lost: their
callbacks do not run.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

from simpy import Environment
from simpy.events import NORMAL

from immodel.sim.rng import Stream


def service_sampler(dist: str, mean_s: float, stream: Stream) -> Callable[[float], float]:
    """Service-time draws (s) for ``dist``; the argument scales the mean (batch work)."""
    if mean_s <= 0:
        return lambda scale=1.0: 0.0
    if dist == "constant":
        return lambda scale=1.0: mean_s * scale
    if dist == "lognormal":
        # Coefficient of variation 1, like the exponential, but with a heavier tail.
        sigma = math.sqrt(math.log(2.0))
        mu = math.log(mean_s) - sigma * sigma / 2
        exp, normal = math.exp, stream.normal
        return lambda scale=1.0: exp(mu + sigma * normal()) * scale
    exponential = stream.exponential
    return lambda scale=1.0: exponential(mean_s) * scale


def _complete(job: _Job) -> None:
    job.stage._finish(job)


class _Job:
    """A job, and once in service the event of its completion: ``Environment.step``
    needs only ``callbacks`` (called with the event, then set to None) and ``_ok``."""

    __slots__ = ("arg", "callbacks", "epoch", "fn", "stage")
    _ok = True

    def __init__(self, stage: Stage, fn: Callable[[Any], None], arg: Any) -> None:
        self.stage = stage
        self.fn = fn
        self.arg = arg
        self.epoch = stage.epoch
        self.callbacks: tuple | None = _COMPLETE


_COMPLETE = (_complete,)


class Stage:
    """One processing step with ``workers`` servers and a FIFO queue."""

    __slots__ = (
        "_area_busy",
        "_area_queue",
        "_last_t",
        "arrivals",
        "busy",
        "completed",
        "env",
        "epoch",
        "name",
        "node",
        "queue",
        "service",
        "wait_total_s",
        "workers",
    )

    def __init__(
        self,
        env: Environment,
        name: str,
        node: int,
        workers: int,
        service: Callable[[float], float],
    ) -> None:
        self.env = env
        self.name = name
        self.node = node
        self.workers = workers
        self.service = service
        self.busy = 0
        self.queue: deque[tuple[_Job, float, float]] = deque()
        self.epoch = 0
        self.arrivals = 0
        self.completed = 0
        self.wait_total_s = 0.0
        self._area_busy = 0.0
        self._area_queue = 0.0
        self._last_t = 0.0

    def _account(self) -> None:
        now = self.env.now
        dt = now - self._last_t
        if dt:
            self._area_busy += self.busy * dt
            self._area_queue += len(self.queue) * dt
            self._last_t = now

    def submit(self, fn: Callable[[Any], None], arg: Any, scale: float = 1.0) -> None:
        """Queue a job; ``fn(arg)`` runs when its service completes.

        A job of zero cost (``scale`` ≤ 0: a stage configured to take no time) that finds
        a free worker and nobody waiting completes at once, without an event: it would
        run at this same instant anyway, and the scenarios that zero a stage (to check
        one stage's theory alone) then cost no more events than the stages they keep."""
        self.arrivals += 1
        busy = self.busy
        queue = self.queue
        if scale <= 0.0 and busy < self.workers and not queue:
            self.completed += 1
            fn(arg)
            return
        # The hot path of every server action: ``_account`` and ``Environment.schedule``
        # written out (same arithmetic, same order), as SimPy's loop is the cost here.
        env = self.env
        now = env._now
        dt = now - self._last_t
        if dt:
            self._area_busy += busy * dt
            self._area_queue += len(queue) * dt
            self._last_t = now
        job = _Job(self, fn, arg)
        if busy < self.workers:
            self.busy = busy + 1
            heappush(env._queue, (now + self.service(scale), NORMAL, next(env._eid), job))
        else:
            queue.append((job, self.service(scale), now))

    def _finish(self, job: _Job) -> None:
        env = self.env
        now = env._now
        queue = self.queue
        dt = now - self._last_t
        if dt:
            self._area_busy += self.busy * dt
            self._area_queue += len(queue) * dt
            self._last_t = now
        if job.epoch != self.epoch:
            return  # the node crashed while this job was in service
        self.completed += 1
        if queue:
            nxt, service_s, queued_at = queue.popleft()
            self.wait_total_s += now - queued_at
            heappush(env._queue, (now + service_s, NORMAL, next(env._eid), nxt))
        else:
            self.busy -= 1
        job.fn(job.arg)

    def busy_area(self) -> float:
        """Worker-seconds of service so far (the integral of busy workers over time)."""
        self._account()
        return self._area_busy

    def crash(self) -> int:
        """Drop every queued and in-service job; returns how many were dropped."""
        self._account()
        dropped = len(self.queue) + self.busy
        self.queue.clear()
        self.busy = 0
        self.epoch += 1
        return dropped

    def utilization(self, horizon_s: float) -> float:
        """Mean busy fraction of the workers over [0, horizon_s]."""
        self._account()
        return self._area_busy / (self.workers * horizon_s) if horizon_s > 0 else 0.0

    def mean_queue_length(self, horizon_s: float) -> float:
        """Time-average number of waiting jobs over [0, horizon_s]."""
        self._account()
        return self._area_queue / horizon_s if horizon_s > 0 else 0.0

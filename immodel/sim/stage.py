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
from heapq import heappush, heapreplace
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
    return stream.scaled_exponential(mean_s)


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

# Jobs that have completed in kernel.run_until, kept to be filled again by the next
# submit (cheaper than building one; see kernel.FREE_CALLS): a job is referred to by
# nothing once it has run.
FREE_JOBS: list[_Job] = []
FREE_TIMED_JOBS: list[_TimedJob] = []


class Stage:
    """One processing step with ``workers`` servers and a FIFO queue."""

    __slots__ = (
        "_area_busy",
        "_area_queue",
        "_last_t",
        "arrivals",
        "busy",
        "dropped",
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
        self.dropped = 0  # jobs a crash dropped (queued or in service)
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
            fn(arg)
            return
        # The hot path of every server action: ``_account`` and ``Environment.schedule``
        # written out (same arithmetic, same order), as SimPy's loop is the cost here.
        env = self.env
        now = env._now
        dt = now - self._last_t
        if dt:
            # adding 0.0 leaves a sum as it is: an idle stage's areas need no arithmetic
            if busy:
                self._area_busy += busy * dt
            if queue:
                self._area_queue += len(queue) * dt
            self._last_t = now
        try:  # pop, not test-then-pop: safe when worlds run in threads of one process
            job = FREE_JOBS.pop()
        except IndexError:
            job = _Job(self, fn, arg)
        else:
            job.stage = self
            job.fn = fn
            job.arg = arg
            job.epoch = self.epoch
        if busy < self.workers:
            self.busy = busy + 1
            heappush(env._queue, (now + self.service(scale), NORMAL, next(env._eid), job))
        else:
            queue.append((job, self.service(scale), now))

    def _finish(self, job: _Job) -> None:
        """A job's service completed (through SimPy's own loop; ``kernel.run_until``
        writes this out for its jobs: a change here belongs there too)."""
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
        if queue:
            nxt, service_s, queued_at = queue.popleft()
            self.wait_total_s += now - queued_at
            heappush(env._queue, (now + service_s, NORMAL, next(env._eid), nxt))
        else:
            self.busy -= 1
        job.fn(job.arg)

    @property
    def completed(self) -> int:
        """Jobs whose service has completed: every arrival is done, in service, waiting or
        dropped by a crash (counted, not incremented per job: an int object each)."""
        return self.arrivals - self.busy - len(self.queue) - self.dropped

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
        self.dropped += dropped
        return dropped

    def utilization(self, horizon_s: float) -> float:
        """Mean busy fraction of the workers over [0, horizon_s]."""
        self._account()
        return self._area_busy / (self.workers * horizon_s) if horizon_s > 0 else 0.0

    def mean_queue_length(self, horizon_s: float) -> float:
        """Time-average number of waiting jobs over [0, horizon_s]."""
        self._account()
        return self._area_queue / horizon_s if horizon_s > 0 else 0.0


class TimedStage:
    """A FIFO stage with ``workers`` servers whose jobs know their completion time when
    they are queued.

    In a first-come-first-served queue with several identical workers, a job starts at
    the earliest moment a worker is free after every earlier job has taken one, and its
    service time is drawn when it arrives — so its completion time is fixed the moment
    it is queued: ``start = max(now, earliest free worker)``, ``done = start + service``.
    :class:`TimedStage` keeps the workers' free times in a heap and gives that time
    away. :meth:`submit` schedules ``fn(arg)`` at it (one event, as :class:`Stage`);
    :meth:`reserve` only returns it, for work whose effect someone else schedules — an
    access node writing a frame to a socket hands the network the moment the frame
    leaves, so the write and the flight are one event. The queue is therefore the same
    M/G/c queue as :class:`Stage`'s, with the same completion times.

    What is not held as events is derived from the times: a worker is busy now if its
    free time is later; a job waits now if its start is later; busy worker-seconds are
    the work given out minus the work still ahead. A crash (:meth:`crash`) drops the
    jobs not yet done: ``submit``'s callbacks do not run; a reserved completion already
    handed on is not taken back (for the access tier: the crash resets the node's
    connections, and both ends ignore frames of a connection they no longer hold).
    """

    __slots__ = (
        "_free",
        "_wait_dropped_s",
        "_wait_given_s",
        "_wait_lost_s",
        "_waiting",
        "_work_given_s",
        "_work_lost_s",
        "arrivals",
        "dropped",
        "env",
        "epoch",
        "name",
        "node",
        "service",
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
        self._free = [0.0] * workers  # each worker's free time: a heap
        self._waiting: deque[tuple[float, float]] = deque()  # (start, wait) of jobs not started
        self._work_given_s = 0.0  # service time of every job given to a worker
        self._wait_given_s = 0.0  # queueing time of every job, started or not
        self._work_lost_s = 0.0  # service a crash cut off
        self._wait_lost_s = 0.0  # waiting a crash cut off (it never happened)
        self._wait_dropped_s = 0.0  # waiting before a crash of jobs it dropped (it did)
        self.arrivals = 0
        self.dropped = 0
        self.epoch = 0

    def reserve(self, scale: float = 1.0) -> float:
        """Queue a job of ``scale`` × the mean service; returns the time it completes."""
        self.arrivals += 1
        now = self.env._now
        free = self._free
        first = free[0]
        service_s = self.service(scale)
        if first > now:  # every worker busy: the job waits for the earliest
            done = first + service_s
            self._waiting.append((first, first - now))
            self._wait_given_s += first - now
        else:
            done = now + service_s
        heapreplace(free, done)
        self._work_given_s += service_s
        return done

    def submit(self, fn: Callable[[Any], None], arg: Any, scale: float = 1.0) -> None:
        """Queue a job; ``fn(arg)`` runs when its service completes (not after a crash).

        A zero-cost job that finds a worker free runs at once, without an event, as in
        :class:`Stage`."""
        env = self.env
        now = env._now
        free = self._free
        first = free[0]
        self.arrivals += 1
        if scale <= 0.0 and first <= now:
            fn(arg)
            return
        # reserve(scale) written out (every request to an access node comes here)
        service_s = self.service(scale)
        if first > now:
            done = first + service_s
            self._waiting.append((first, first - now))
            self._wait_given_s += first - now
        else:
            done = now + service_s
        heapreplace(free, done)
        self._work_given_s += service_s
        try:
            job = FREE_TIMED_JOBS.pop()
        except IndexError:
            job = _TimedJob(self, fn, arg)
        else:
            job.stage = self
            job.fn = fn
            job.arg = arg
            job.epoch = self.epoch
        heappush(env._queue, (done, NORMAL, next(env._eid), job))

    def _prune(self) -> deque[tuple[float, float]]:
        waiting, now = self._waiting, self.env._now
        while waiting and waiting[0][0] <= now:
            waiting.popleft()
        return waiting

    @property
    def busy(self) -> int:
        """Workers serving a job now."""
        now = self.env._now
        return sum(1 for t in self._free if t > now)

    @property
    def queue(self) -> deque[tuple[float, float]]:
        """Jobs waiting now, as (start, wait) pairs: ``len`` is the queue length."""
        return self._prune()

    @property
    def completed(self) -> int:
        """Jobs whose service has completed by now."""
        return self.arrivals - self.dropped - self.busy - len(self._prune())

    @property
    def wait_total_s(self) -> float:
        """Seconds spent waiting by the jobs that have started (as :class:`Stage` counts)."""
        now = self.env._now
        ahead = sum(w for start, w in self._prune() if start > now)
        return self._wait_given_s - self._wait_lost_s - self._wait_dropped_s - ahead

    def busy_area(self) -> float:
        """Worker-seconds of service so far: the work given out minus the work ahead."""
        now = self.env._now
        ahead = sum(t - now for t in self._free if t > now)
        return self._work_given_s - self._work_lost_s - ahead

    def crash(self) -> int:
        """Drop every queued and in-service job; returns how many were dropped."""
        now = self.env._now
        waiting = self._prune()
        dropped = len(waiting) + self.busy
        self._work_lost_s += sum(t - now for t in self._free if t > now)
        # a dropped job's wait before the crash happened (it is in the queue's area); the
        # rest never will; neither is the wait of a job that started
        cut = sum(start - now for start, _ in waiting)
        self._wait_lost_s += cut
        self._wait_dropped_s += sum(w for _, w in waiting) - cut
        waiting.clear()
        self._free = [now] * self.workers
        self.dropped += dropped
        self.epoch += 1
        return dropped

    def utilization(self, horizon_s: float) -> float:
        """Mean busy fraction of the workers over [0, horizon_s] (horizon = now)."""
        return self.busy_area() / (self.workers * horizon_s) if horizon_s > 0 else 0.0

    def mean_queue_length(self, horizon_s: float) -> float:
        """Time-average number of waiting jobs over [0, horizon_s] (horizon = now)."""
        if horizon_s <= 0:
            return 0.0
        now = self.env._now
        ahead = sum(start - now for start, _ in self._prune())
        return (self._wait_given_s - self._wait_lost_s - ahead) / horizon_s


def _finish_timed(job: _TimedJob) -> None:
    if job.epoch == job.stage.epoch:
        job.fn(job.arg)


class _TimedJob:
    """The completion event of a :class:`TimedStage` job (see :class:`_Job`)."""

    __slots__ = ("arg", "callbacks", "epoch", "fn", "stage")
    _ok = True

    def __init__(self, stage: TimedStage, fn: Callable[[Any], None], arg: Any) -> None:
        self.stage = stage
        self.fn = fn
        self.arg = arg
        self.epoch = stage.epoch
        self.callbacks: tuple | None = _FINISH_TIMED


_FINISH_TIMED = (_finish_timed,)

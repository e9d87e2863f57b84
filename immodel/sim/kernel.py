"""The event kernel shared by every part of the simulator: cheap callbacks and stable hashes.

A :class:`Call` is a scheduled callback ``fn(arg)`` and the SimPy event itself — cheaper
than a process, an :class:`~simpy.events.Event` with a callback list, or a lambda per
event. :func:`later` schedules one. The hashes (:func:`mix64`, :func:`pair_uniform`,
:func:`rendezvous`) give fixed, platform-independent answers (Python's ``hash`` is
salted), so routing and relationship facts do not depend on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from heapq import heappush
from typing import Any

import simpy
from simpy.core import StopSimulation
from simpy.events import NORMAL, URGENT, Event


def _fire(call: Call) -> None:
    call.fn(call.arg)


_FIRE = (_fire,)
_new = object.__new__

# Calls that have run in :func:`run_until`, kept for :func:`later` to fill again: building
# a slotted object costs about four times taking one from this list and setting two
# fields, and most events of a run are Calls. Only Calls nobody holds a handle to go
# here (``later``, ``at_time``, slot openers); a :class:`Deadline` — which its owner may
# still cancel after it ran — never does. The pop-or-build is written out where a Call is
# scheduled (``later``, ``at_time``, ``Deadlines.at`` and the network's ``send_up``, which
# needs the event id to share an arrival): a helper call would cost what the list saves.
FREE_CALLS: list[Call] = []


class Call:
    """A scheduled callback ``fn(arg)``: the event itself.

    ``Environment.step`` needs only what this class has: ``callbacks`` (an iterable it
    calls with the event and then sets to None) and ``_ok`` (the event succeeded). The
    callback is a module function, not a bound method, so no reference cycle is made
    (the cyclic GC is paused during a run).
    """

    __slots__ = ("arg", "callbacks", "fn")
    _ok = True

    def __init__(self, fn: Callable[[Any], None], arg: Any) -> None:
        self.fn = fn
        self.arg = arg
        self.callbacks: tuple | None = _FIRE


def later(env: simpy.Environment, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
    """Call ``fn(arg)`` after ``delay`` seconds of simulated time.

    :meth:`Environment.schedule` written out (the same queue entry: time ``now + delay``,
    priority, next event id), as this is called for most events of a run."""
    try:  # pop, not test-then-pop: worlds run in threads of one process share the list
        call = FREE_CALLS.pop()
    except IndexError:
        call = Call(fn, arg)
    else:
        call.fn = fn
        call.arg = arg
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), call))


def at_time(env: simpy.Environment, t: float, fn: Callable[[Any], None], arg: Any) -> None:
    """Call ``fn(arg)`` at time ``t`` exactly (now, if ``t`` has passed).

    A deadline must be scheduled this way, not as ``later(t - now)``: SimPy adds the
    delay back to ``now``, and ``now + (t - now)`` can round to a hair *before* ``t`` —
    a timer that fires then finds its deadline not yet due, and one that keeps that
    deadline as "already armed" never fires again."""
    now = env._now
    try:  # pop, not test-then-pop: worlds run in threads of one process share the list
        call = FREE_CALLS.pop()
    except IndexError:
        call = Call(fn, arg)
    else:
        call.fn = fn
        call.arg = arg
    heapq.heappush(env._queue, (t if t > now else now, NORMAL, next(env._eid), call))


def events_scheduled(env: simpy.Environment) -> int:
    """How many events ``env`` has scheduled so far, without scheduling or consuming one.

    SimPy numbers events with an ``itertools.count``; ``next`` would use up an id (and
    copying a count is deprecated since Python 3.12), so this reads its repr,
    ``count(N)``: N is the next id, i.e. the number handed out."""
    text = repr(env._eid)
    return int(text[text.index("(") + 1 : -1])


def _cancelled(arg: Any) -> None:
    """What a cancelled :class:`Call` runs if it is popped after all: nothing."""


class Deadline(Call):
    """A :class:`Call` whose handle its owner keeps (to cancel it, maybe after it ran):
    never reused for another event."""

    __slots__ = ()


class Deadlines:
    """Timers that are mostly cancelled before they fire, kept out of the event heap.

    A client's retransmit and sync deadlines, a long poll's client-side timeout and the
    access node's hold expiry are armed for every request and almost never fire: the
    answer comes first. As heap entries each one costs a push, a pop and a call that
    finds nothing to do, and a heap of tens of thousands of them makes every other pop
    deeper. Here a deadline more than :attr:`slot_s` ahead is appended to the list of
    its slot (``floor(t / slot_s)``); one event at the slot's start (URGENT, so before
    anything else at that instant) moves the slot's live deadlines into the heap.
    :meth:`cancel` marks a deadline dead: in its slot it is dropped when the slot opens,
    never reaching the heap; already in the heap it pops and does nothing.

    Only the earliest slots wait in the heap as opening events: a slot that starts
    after one already armed is armed when the slots before it have opened (the earliest
    unopened slot always has its event, so every slot opens at its start). Tens of
    openers — one per quarter second up to the longest timeout — would otherwise make
    the heap several times deeper than what is due soon, and every push and pop pays
    for its depth.

    The order of events is exactly the order without slots: a deadline gets its queue
    entry — time, priority and event id — when it is set, and enters the heap with that
    entry before its time comes. ``slot_s`` is a power of two, so slot boundaries are
    exact in binary floating point.
    """

    __slots__ = ("_armed", "_first_armed", "_unarmed", "dropped", "env", "slot_s", "slots")

    def __init__(self, env: simpy.Environment, slot_s: float = 0.25) -> None:
        mantissa, _ = math.frexp(slot_s)
        if slot_s <= 0 or mantissa != 0.5:
            raise ValueError(f"slot_s must be a positive power of two, got {slot_s!r}")
        self.env = env
        self.slot_s = slot_s
        self.slots: dict[int, list] = {}
        self.dropped = 0  # deadlines cancelled before their slot opened: never run
        self._armed: set[int] = set()  # slots whose opening event is in the heap
        self._first_armed = math.inf  # the earliest of them
        self._unarmed: list[int] = []  # a heap of the other slots not yet opened

    def at(
        self, t: float, fn: Callable[[Any], None], arg: Any, held: bool = True
    ) -> Deadline | None:
        """Call ``fn(arg)`` at time ``t`` exactly (now, if ``t`` has passed) unless
        :meth:`cancel` is called first; returns the handle to cancel. ``held=False``: a
        timer its owner never cancels (a poller's next tick), which returns no handle and
        takes a used Call (:data:`FREE_CALLS`) instead of building one."""
        env = self.env
        now = env._now
        if held:  # Deadline(fn, arg) without the class call (two per delivered message)
            call = _new(Deadline)
            call.fn = fn
            call.arg = arg
            call.callbacks = _FIRE
        else:
            try:
                call = FREE_CALLS.pop()
            except IndexError:
                call = Call(fn, arg)
            else:
                call.fn = fn
                call.arg = arg
        entry = (t if t > now else now, NORMAL, next(env._eid), call)
        k = int(t / self.slot_s) if t - now >= self.slot_s else 0
        start = k * self.slot_s
        if start <= now:  # near, or its slot has begun (and so been opened): the heap
            heappush(env._queue, entry)
            return call if held else None
        slot = self.slots.get(k)
        if slot is None:  # a slot that starts after now has not been opened yet
            slot = self.slots[k] = []
            if k < self._first_armed:
                self._arm(k)
            else:  # a slot before it opens first, and arms the next
                heappush(self._unarmed, k)
        slot.append(entry)
        return call if held else None

    def _arm(self, k: int) -> None:
        """Put slot ``k``'s opening event in the heap (at its start, URGENT)."""
        env = self.env
        heappush(env._queue, (k * self.slot_s, URGENT, next(env._eid), Call(self._open, k)))
        self._armed.add(k)
        if k < self._first_armed:
            self._first_armed = k

    def later(
        self, delay: float, fn: Callable[[Any], None], arg: Any, held: bool = True
    ) -> Deadline | None:
        """:meth:`at` ``now + delay`` — the time :func:`later` would give."""
        return self.at(self.env._now + delay, fn, arg, held)

    @staticmethod
    def cancel(call: Call | None) -> None:
        """Make sure ``call`` does nothing (a deadline that fired already is left as is)."""
        if call is not None:
            call.fn = _cancelled

    def _open(self, k: int) -> None:
        queue = self.env._queue
        slot = self.slots.pop(k)
        for entry in slot:
            if entry[3].fn is not _cancelled:
                heappush(queue, entry)
            else:
                self.dropped += 1
        armed = self._armed
        armed.discard(k)
        self._first_armed = min(armed) if armed else math.inf
        unarmed = self._unarmed
        if unarmed and unarmed[0] < self._first_armed:  # the earliest slot left: arm it
            self._arm(heapq.heappop(unarmed))


def run_until(env: simpy.Environment, at: float) -> None:
    """``env.run(until=at)``, with the model's own events dispatched inline.

    The same event queue in the same order as SimPy's loop — the end marker is scheduled
    as ``run`` schedules it, so an event at exactly ``at`` runs or not as it would there —
    but a :class:`Call` or a :class:`~immodel.sim.stage.Stage` job is called directly,
    without :meth:`Environment.step`'s callback list, which is most of the cost of an
    event whose callback does little. Every other event (processes, timeouts) goes
    through SimPy's own logic.
    """
    if at <= env.now:
        raise ValueError(f"until ({at}) must be greater than the current simulation time")
    end = Event(env)
    end._ok = True
    end._value = None
    env.schedule(end, URGENT, at - env.now)
    # stage builds on this module, not the reverse
    from immodel.sim.stage import FREE_JOBS, FREE_TIMED_JOBS, _Job, _TimedJob

    queue = env._queue
    eids = env._eid
    pop = heapq.heappop
    call, deadline, job, timed = Call, Deadline, _Job, _TimedJob
    # what has run goes back to its free list (nothing else refers to it any more)
    free_call, free_job, free_timed = FREE_CALLS.append, FREE_JOBS.append, FREE_TIMED_JOBS.append
    try:
        while queue:
            now, _, _, event = pop(queue)
            env._now = now
            kind = type(event)
            if kind is call:
                event.fn(event.arg)
                event.arg = None
                free_call(event)
            elif kind is job:
                # Stage._finish written out (seven stage jobs per delivered message): the
                # same accounting, the same next job started, then the callback.
                stage = event.stage
                waiting = stage.queue
                dt = now - stage._last_t
                if dt:
                    stage._area_busy += stage.busy * dt
                    if waiting:  # adding 0.0 would leave the sum as it is
                        stage._area_queue += len(waiting) * dt
                    stage._last_t = now
                if event.epoch == stage.epoch:  # else the node crashed while it was served
                    if waiting:
                        nxt, service_s, queued_at = waiting.popleft()
                        stage.wait_total_s += now - queued_at
                        heappush(queue, (now + service_s, NORMAL, next(eids), nxt))
                    else:
                        stage.busy -= 1
                    event.fn(event.arg)
                event.arg = None
                free_job(event)
            elif kind is timed:
                if event.epoch == event.stage.epoch:
                    event.fn(event.arg)
                event.arg = None
                free_timed(event)
            elif kind is deadline:
                event.fn(event.arg)
            elif event is end:
                return
            else:
                callbacks, event.callbacks = event.callbacks, None
                try:
                    for callback in callbacks:
                        callback(event)
                except StopSimulation:
                    # Someone else asked SimPy to stop (an ``until`` event): stop here too.
                    return
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
    finally:
        # the free lists end with the run: what they hold refers to this world
        FREE_CALLS.clear()
        FREE_JOBS.clear()
        FREE_TIMED_JOBS.clear()


def crash_lifecycle(env: simpy.Environment, node: Any, on_crash, on_recover):
    """A server node's process: it runs until interrupted; an interrupt is a crash
    lasting ``cause`` seconds (``node.down_until`` is set, ``on_crash(node)`` runs), and
    ``on_recover(node)`` runs when the outage ends. A crash that overlaps the outage
    moves ``node.down_until`` instead of interrupting again, so the node stays down
    longer and recovers once."""
    while True:
        try:
            yield env.timeout(math.inf)
        except simpy.Interrupt as crash:
            node.down_until = env.now + crash.cause
            on_crash(node)
            while env.now < node.down_until:
                yield env.timeout(node.down_until - env.now)
            on_recover(node)


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a stable integer hash (Python's hash() is salted)."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def pair_uniform(seed: int, a: int, b: int, salt: int) -> float:
    """A fixed uniform draw in [0, 1) for the ordered pair (a, b): relationship facts
    (friends, blacklists) are properties of a pair, not of a message."""
    h = mix64(mix64(mix64(seed * 1_000_003 + salt) ^ a) ^ (b * 0x2545F4914F6CDD1D))
    return (h >> 11) / float(1 << 53)


def rendezvous(key: int, nodes: Sequence[int]) -> int:
    """The node of ``nodes`` that owns ``key`` by highest-random-weight hashing.

    Stable: removing a node moves only the keys it owned (to the survivors, spread
    evenly), and adding it back moves exactly those keys home again — what a
    consistent-hash router in an access tier does when a logic node fails.
    """
    if len(nodes) == 1:
        return nodes[0]
    k = mix64(key)
    return max(nodes, key=lambda n: mix64(k ^ (n * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF)))


__all__ = [
    "FREE_CALLS",
    "Call",
    "Deadline",
    "Deadlines",
    "at_time",
    "crash_lifecycle",
    "later",
    "mix64",
    "pair_uniform",
    "rendezvous",
    "run_until",
]

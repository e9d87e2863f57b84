"""Records of a real run: the simulator's frames and summary, from what the processes saw.

After the run the orchestrator hands over the load generator's client-side events
(:class:`immodel.real.loadgen.Events`), the store's rows (:func:`immodel.real.store.
read_stored`: one per stored copy, with its time and the recipients connected then),
the processes' counters and CPU times. :func:`build_result` replays them, in time
order, into the simulator's own :class:`immodel.sim.records.Recorder` — so
``messages``, ``requests`` and ``trace`` have exactly the columns and dtypes of a
simulated run — and computes the summary with the same
:func:`immodel.analysis.metrics.summarize` and
:func:`~immodel.analysis.metrics.recovery_metrics`. Times are shifted so that t = 0 is
the start of the sending period (the run clock's origin is the orchestrator's start).

Summary keys the harness cannot measure (simulation events, per-stage queues and waits,
network-model counters) are present and ``null``, so a real run's ``summary.json`` has
every key of a simulated one. What the harness measures instead is under keys of its
own (``docs/metrics.md``, "Real runs"): ``cpu_s_by_process``, ``cpu_s_logic``,
``cpu_s_access``, ``cpu_s_loadgen`` and ``real_*``; ``utilization_logic`` /
``utilization_access`` / ``server_utilization`` are the tiers' CPU time in the
sending window over the window, divided by their processes (one core each: a process is
one asyncio thread), where the simulator reports its stages' busy fraction.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from types import SimpleNamespace
from typing import Any

import pandas as pd

from immodel.analysis.metrics import RECOVERY_KEYS, recovery_metrics, summarize
from immodel.protocol.messages import Message
from immodel.sim import reachability
from immodel.sim.faults import CRASH_KINDS
from immodel.sim.model import Result
from immodel.sim.records import Recorder


@functools.lru_cache(maxsize=8)
def _sim_summary_keys(scenario_toml: str) -> tuple[str, ...]:
    """The keys of a simulated run's summary for this scenario (a tiny run of it)."""
    import tomllib

    from immodel.scenario import Scenario
    from immodel.sim.model import run

    sc = Scenario.load(tomllib.loads(scenario_toml))
    # the same scenario, briefly and without faults (its keys do not depend on either)
    # nor on the backend's broadcast times, which must fall within the tiny run
    tiny = sc.with_overrides(
        {"duration_s": 0.5, "drain_s": 0.5, "faults": [], "workload.rest_broadcasts": []}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its short drain is on purpose: only keys count
        return tuple(run(tiny).summary)


def build_result(
    scenario,
    events,
    stored_rows: list[tuple],
    *,
    t_start: float,
    users: int,
    kind: str | list[str],
    online_at_end: set[int],
    fault_log: list[dict],
    load_rows: list[dict],
    extra: dict[str, Any],
    devices=None,
    screening: dict[str, str] | None = None,
    offline_pushes: list[tuple[float, str, int]] | None = None,
) -> Result:
    """The :class:`~immodel.sim.model.Result` of a real run (see the module docstring)."""
    rec = Recorder()
    rec.recipient_kind = [kind] * users if isinstance(kind, str) else list(kind)
    rec.devices = devices  # several devices per user: ``users`` counts the devices
    messages_by_id: dict[str, Message] = {}
    rows: list[tuple[float, int, int, tuple]] = []
    for i, (t, msg, rcpt) in enumerate(events.sent):
        messages_by_id[msg.msg_id] = msg
        rows.append((t - t_start, 0, i, (msg, rcpt)))
    for i, (msg_id, key, t, online) in enumerate(stored_rows):
        if msg_id in messages_by_id:
            rows.append((t - t_start, 1, i, (msg_id, key, set(online))))
    for i, (t, msg, key, user, via, repair) in enumerate(events.shown):
        rows.append((t - t_start, 2, i, (msg, key, user, via, repair)))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    screening = screening or {}
    for t, kind, _, data in rows:
        if kind == 0:
            rec.sent(t, data[0], data[1])
            action = screening.get(data[0].msg_id)
            if action:  # before its stored and shown rows: a replaced text is what they show
                rec.set_screening(data[0].msg_id, action)
        elif kind == 1:
            msg_id, key, online = data
            msg = messages_by_id[msg_id]
            rcpt = rec.recipients(msg_id)
            rec.stored(t, msg, key, {r: r in online for r in rcpt})
        else:
            msg, key, user, via, repair = data
            rec.shown(t, msg, key, user, via, repair)
    # offline notifications at their devices (immodel.real.vendor_push): t_offline_push
    for t, msg_id, eid in offline_pushes or ():
        if msg_id in messages_by_id:
            rec.offline_push(msg_id, eid, t - t_start)
    for msg_id, attempts in events.attempts.items():
        rec.set_attempts(msg_id, attempts)
    for msg_id, t, failure in events.outcomes:
        rec.outcome(msg_id, t - t_start, failure)
    for row in sorted(events.requests, key=lambda r: r[0]):
        t, user, kind, n, size = row[:5]
        if t < t_start:
            if len(row) < 6 or row[5] < t_start:
                continue  # the start population's set-up: not the run
            # a poll held across the start, answered in the run: the simulator's start
            # state has it (a poll held at t = 0), so it is the run's, at its start
            t = t_start
        rec.request(t - t_start, user, kind, n, size)

    trace = rec.trace_frame()
    messages = rec.messages_frame()
    requests = rec.requests_frame()
    load = pd.DataFrame(load_rows)

    reach = reachability.Reachability()
    for uid, t in events.connects:
        reach.connected(uid, t - t_start)
    world = SimpleNamespace(
        reach=reach,
        devices=devices,
        clients=[
            SimpleNamespace(uid=u, conn=(True if u in online_at_end else None))
            for u in range(users)
        ],
    )
    messages[reachability.COLUMN] = reachability.messages_column(world, messages)
    trace[reachability.COLUMN] = reachability.trace_column(world, trace)

    horizon = float(scenario["duration_s"]) + float(scenario["drain_s"])
    out = dict(extra)
    for action in ("blocked", "flagged", "replaced", "sender_only"):  # the simulator's keys
        out["screening_" + action] = sum(1 for a in screening.values() if a == action)
    incidents = [  # crashes, as the simulator's recovery metrics take them
        {**e, "at_s": e["at_s"] - t_start, "end_s": e["end_s"] - t_start}
        for e in fault_log
        if e["kind"] in CRASH_KINDS
    ]
    out.update(
        recovery_metrics(messages, requests, incidents)
        if incidents
        else dict.fromkeys(RECOVERY_KEYS)
    )
    summary = summarize(
        messages,
        requests,
        trace,
        horizon_s=horizon,
        window_s=float(scenario["duration_s"]),
        extra=out,
    )
    for key in _sim_summary_keys(scenario.to_toml()):
        summary.setdefault(key, None)
    return Result(scenario, summary, messages, requests, load, trace, {})


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; NaN when the
    process is gone).

    The scheduler's run time of each of its threads (``/proc/PID/task/TID/schedstat``,
    nanoseconds) where the kernel has it: ``/proc/PID/stat``'s clock ticks (10 ms) are
    a large part of a short run's logic CPU (~0.15 s in 3 s), and a calibration divides
    it by frames. A thread that has exited is not in it (the servers' threads do not
    exit); without schedstat, the ticks."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tasks = []
    ns, read = 0, 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                ns += int(f.read().split()[0])
            read += 1
        except (OSError, ValueError, IndexError):
            continue  # a thread that exited meanwhile
    if read:
        return ns / 1e9
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / ticks


__all__ = ["build_result", "proc_cpu_s"]

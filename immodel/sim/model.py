"""``immodel.run``: one scenario in, a :class:`Result` (summary + records) out.

>>> from immodel import Scenario, run
>>> result = run(Scenario.load("baseline", {"workload.users": 100, "duration_s": 10}))
>>> result.summary["lost"]
0

A run is a pure function of its scenario: the same scenario (seed included) gives
bit-identical records and summary, ``wall_s`` aside.

**Faults and recovery.** A scenario with ``faults`` also reports how it recovered
(:func:`immodel.analysis.metrics.recovery_metrics`: ``recovery_time_s``,
``reconnect_time_s``, ``recovery_pairs``, ``recovered_via_sync``, ``recovered_via_push``,
``recovery_undelivered``) and what the faults cost in traffic against the same scenario
without its faults, same seed (simulated too, once per process and scenario):
``extra_requests`` (send, ack, poll, sync and login requests minus the fault-free
run's; heartbeats are left out, a disconnected client sends none) and per kind
``extra_requests_send`` … ``extra_requests_login``, ``extra_bytes_up``,
``extra_bytes_down``, ``extra_bytes`` (their sum). A negative figure is real: cut-off
clients cannot send, so their messages' ACKs and syncs are missing while logins, sync
pages and retries are extra. The workload does not depend on the
faults (separate random streams), so the difference is the faults' own cost.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from immodel.analysis.live import live_summary
from immodel.analysis.metrics import RECOVERY_KEYS, recovery_metrics, summarize
from immodel.analysis.rest import rest_latency_metrics
from immodel.errors import ConfigError, DrainWarning
from immodel.protocol import admission
from immodel.scenario import Scenario
from immodel.sim import idle_poll, reachability
from immodel.sim.faults import CRASH_KINDS
from immodel.sim.kernel import events_scheduled
from immodel.sim.offline_push import push_metrics
from immodel.sim.world import PUSH, World


@dataclass
class Result:
    """The outcome of one run: the summary dict and the record DataFrames."""

    scenario: Scenario
    summary: dict[str, Any]
    messages: pd.DataFrame
    requests: pd.DataFrame
    load: pd.DataFrame
    trace: pd.DataFrame
    counters: dict[str, Any] = field(default_factory=dict)
    # live-broadcast rooms (immodel.sim.live): empty without live rooms
    live_messages: pd.DataFrame = field(default_factory=pd.DataFrame)
    live_trace: pd.DataFrame = field(default_factory=pd.DataFrame)

    def trace_hash(self) -> str:
        """SHA-256 of the trace's bytes: equal for equal runs, whatever the machine."""
        h = hashlib.sha256()
        for col in self.trace.columns:
            h.update(col.encode())
            h.update(pd.util.hash_pandas_object(self.trace[col], index=False).to_numpy().tobytes())
        return h.hexdigest()

    def equals(self, other: Result) -> bool:
        """Same scenario, summary, counters and record frames (values and dtypes)."""
        frames = ("messages", "requests", "load", "trace", "live_messages", "live_trace")

        def text(d: dict) -> str:  # NaN equals NaN here, as it should for records
            return json.dumps(d, sort_keys=True)

        return (
            self.scenario == other.scenario
            and text(self.summary) == text(other.summary)
            and text(self.counters) == text(other.counters)
            and all(getattr(self, f).equals(getattr(other, f)) for f in frames)
        )

    def write(self, out: str | Path) -> Path:
        """Write ``summary.json``, ``scenario.toml``, ``counters.json`` and the records as
        parquet to ``out`` (:func:`load_run` reads them back)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
        (out / "counters.json").write_text(json.dumps(self.counters, indent=2) + "\n")
        (out / "scenario.toml").write_text(self.scenario.to_toml())
        self.trace.to_parquet(out / "trace.parquet", index=False)
        self.messages.to_parquet(out / "messages.parquet", index=False)
        self.requests.to_parquet(out / "requests.parquet", index=False)
        self.load.to_parquet(out / "load.parquet", index=False)
        if len(self.live_messages):  # only a run with live rooms has these files
            self.live_messages.to_parquet(out / "live_messages.parquet", index=False)
            self.live_trace.to_parquet(out / "live_trace.parquet", index=False)
        return out


#: The files :meth:`Result.write` writes (and ``immodel run --out --force`` replaces).
RUN_FILES = (
    "summary.json",
    "scenario.toml",
    "counters.json",
    "trace.parquet",
    "messages.parquet",
    "requests.parquet",
    "load.parquet",
    "live_messages.parquet",
    "live_trace.parquet",
)
#: Files of :data:`RUN_FILES` a run folder may lack (a run without live rooms).
OPTIONAL_RUN_FILES = ("counters.json", "live_messages.parquet", "live_trace.parquet")


def load_run(directory: str | Path) -> Result:
    """The :class:`Result` saved by :meth:`Result.write` (``immodel run --out DIR``):
    scenario, summary, counters and record frames, equal to what :func:`run` returned.

    Raises :class:`~immodel.errors.UserError` when ``directory`` is not a run folder.
    """
    from immodel.errors import UserError

    folder = Path(directory)
    if not folder.is_dir():
        raise UserError(f"run folder '{directory}' does not exist")
    missing = [
        name
        for name in RUN_FILES
        if name not in OPTIONAL_RUN_FILES and not (folder / name).is_file()
    ]
    if missing:
        raise UserError(
            f"'{directory}' is not a run folder (missing {', '.join(missing)}); "
            "write one with `immodel run SCENARIO --out DIR`"
        )
    scenario = Scenario.load(folder / "scenario.toml")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    counters_file = folder / "counters.json"
    counters = (
        json.loads(counters_file.read_text(encoding="utf-8")) if counters_file.is_file() else {}
    )
    frames = {
        name: pd.read_parquet(folder / f"{name}.parquet")
        for name in ("messages", "requests", "load", "trace")
    }
    for name in ("live_messages", "live_trace"):
        path = folder / f"{name}.parquet"
        frames[name] = pd.read_parquet(path) if path.is_file() else pd.DataFrame()
    return Result(scenario, summary, counters=counters, **frames)


def resolve_drain(scenario: Scenario) -> tuple[Scenario, bool, float | None]:
    """``(scenario ready to simulate, drain was "auto", required drain in s)``.

    ``drain_s = "auto"`` becomes :func:`immodel.sim.faults.required_drain_s`; an explicit
    drain shorter than that raises a :class:`~immodel.errors.DrainWarning` (a
    ``UserWarning``) naming both. The required drain is ``None`` when it cannot be
    derived for an explicit drain (a network that loses every packet).
    """
    auto = scenario.drain_is_auto
    try:
        required: float | None = scenario.required_drain_s()
    except ConfigError:
        if auto:
            raise
        required = None
    if auto:
        return scenario.resolved(), True, required
    drain = scenario["drain_s"]
    if required is not None and drain < required:
        warnings.warn(
            f"drain_s = {drain:g} s is shorter than the {required:g} s this scenario needs "
            "(immodel.sim.faults.required_drain_s): messages still in repair when the run "
            'ends count as lost and the latency tail is cut; use drain_s = "auto"',
            DrainWarning,
            stacklevel=3,
        )
    return scenario, False, required


def run(
    scenario: Scenario | str | Path | dict,
    progress: Callable[[float, float, int], None] | None = None,
    **overrides: Any,
) -> Result:
    """Simulate ``scenario`` (a Scenario, a built-in name, a TOML path or a mapping).

    ``drain_s = "auto"`` (the default) is resolved first (:func:`resolve_drain`); the
    result's scenario and ``scenario.toml`` carry the number used, and the summary says
    which (``drain_s_used``, ``drain_auto``, ``drain_s_required``).

    ``progress(sim_now_s, horizon_s, events)`` is called about every
    :data:`immodel.sim.progress.SLICE_WALL_S` of wall time while the world runs (see
    :mod:`immodel.sim.progress`); ``None`` runs without interruption.
    """
    if not isinstance(scenario, Scenario) or overrides:
        scenario = Scenario.load(scenario, overrides or None)
    scenario, auto, required = resolve_drain(scenario)
    t0 = time.perf_counter()
    world = World(scenario)
    watcher_events = 0
    if progress is None:
        world.run()
    else:
        from immodel.sim.progress import run_with_progress

        watcher_events = run_with_progress(world, progress)
    result = collect(world, started_at=t0, drain_auto=auto, drain_required_s=required)
    result.summary["sim_events"] -= watcher_events  # the model's events only
    return result


def collect(
    world: World,
    started_at: float | None = None,
    *,
    drain_auto: bool = False,
    drain_required_s: float | None = None,
) -> Result:
    """The :class:`Result` of a world that has run: record frames and the summary.

    ``started_at`` (a ``time.perf_counter()`` reading) sets ``wall_s``; building the
    world yourself and calling this is how a benchmark separates set-up from the run.
    ``drain_auto`` and ``drain_required_s`` (what :func:`resolve_drain` said) go into the
    summary as ``drain_auto`` and ``drain_s_required`` beside ``drain_s_used``.
    """
    t0 = time.perf_counter() if started_at is None else started_at
    with _arrow_from_malloc():
        result = _collect(world, drain_auto, drain_required_s)
    result.summary["wall_s"] = time.perf_counter() - t0
    return result


def _collect(world: World, drain_auto: bool, drain_required_s: float | None) -> Result:
    scenario = world.sc
    trace = world.rec.trace_frame()
    messages = world.rec.messages_frame()
    requests = world.rec.requests_frame()
    load = world.rec.load_frame()
    # lost pairs split by whether their device connected after the store (reachability)
    messages[reachability.COLUMN] = reachability.messages_column(world, messages)
    trace[reachability.COLUMN] = reachability.trace_column(world, trace)
    horizon = world.horizon_s
    extra = _extra_metrics(world, messages, requests)
    summary = summarize(
        messages, requests, trace, horizon_s=horizon, window_s=world.duration_s, extra=extra
    )
    live_messages, live_trace = pd.DataFrame(), pd.DataFrame()
    if world.live is not None:
        live_messages, live_trace = world.live.messages_frame(), world.live.trace_frame()
    summary.update(_live_metrics(world, live_messages, live_trace))
    summary["drain_s_used"] = float(scenario["drain_s"])
    summary["drain_auto"] = bool(drain_auto)
    summary["drain_s_required"] = drain_required_s
    # events scheduled, less the deadlines cancelled before they reached the queue and
    # the frames that rode on another frame's arrival (the counter is read, not advanced,
    # so collecting again says the same)
    summary["sim_events"] = (
        events_scheduled(world.env) - world.deadlines.dropped - world.net.coalesced
    )
    return Result(
        scenario,
        summary,
        messages,
        requests,
        load,
        trace,
        dict(world.counters),
        live_messages,
        live_trace,
    )


@contextlib.contextmanager
def _arrow_from_malloc() -> Iterator[None]:
    """Arrow's allocations (the frames' strings, and pandas' work on them in the summary)
    made with malloc for the duration, then the default pool back.

    Arrow's default pool (mimalloc) kept about twice what it handed out resident: one
    factorisation of a 450 k-row string column cost 30 MiB of resident memory against
    10 MiB with malloc, and the pool keeps what it grew to. Every Arrow buffer is returned
    to the pool that made it, so switching the default for a while changes nothing but
    where the memory comes from."""
    try:
        import pyarrow as pa
    except ImportError:  # pandas without Arrow strings
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _live_metrics(world: World, live_messages: pd.DataFrame, live_trace: pd.DataFrame) -> dict:
    """The ``live_*`` summary keys (zeros and None without live rooms)."""
    live = world.live
    if live is None:
        return live_summary(pd.DataFrame(), pd.DataFrame())
    return live_summary(
        live_messages,
        live_trace,
        rooms=len(live.rooms),
        missed=live.missed,
        joined=live.joins,
        left=live.leaves,
    )


def _extra_metrics(world: World, messages: pd.DataFrame, requests: pd.DataFrame) -> dict[str, Any]:
    horizon = world.horizon_s
    window = world.duration_s
    out: dict[str, Any] = {}
    per_stage: dict[str, float] = {}
    by_name: dict[str, list] = {}
    tier_busy = {"access": 0.0, "logic": 0.0}
    tier_capacity = {"access": 0.0, "logic": 0.0}
    # Utilisation over the sending period: the drain would only dilute it.
    for tier, node_id, name, stage in world.all_stages():
        busy_s = world.window_busy.get((tier, node_id, name), 0.0)
        u = busy_s / (stage.workers * window)
        tier_busy[tier] += busy_s / window
        tier_capacity[tier] += stage.workers
        per_stage[name] = max(per_stage.get(name, 0.0), u)
        by_name.setdefault(name, []).append(stage)
    # Per-stage queueing figures over the whole run, all nodes (for Little's law and
    # Erlang C checks; the drain empties the queues, so L = λW holds exactly):
    # arrivals per second, time-average queue length, mean wait in queue per job.
    for name, stages in by_name.items():
        arrivals = sum(st.arrivals for st in stages)
        started = arrivals - sum(len(st.queue) for st in stages)
        out[f"arrival_rate_{name}"] = arrivals / horizon
        out[f"queue_mean_{name}"] = sum(st.mean_queue_length(horizon) for st in stages)
        out[f"wait_mean_ms_{name}"] = (
            1000.0 * sum(st.wait_total_s for st in stages) / started if started else None
        )
    busy = sum(tier_busy.values())
    capacity = sum(tier_capacity.values())
    out["server_utilization"] = busy / capacity if capacity else 0.0
    # Busy fraction of each tier's capacity: an access node is one stage of
    # ``server.access_workers`` cores; a logic node has ``server.workers`` per stage.
    out["utilization_access"] = tier_busy["access"] / tier_capacity["access"]
    out["utilization_logic"] = tier_busy["logic"] / tier_capacity["logic"]
    out["server_utilization_max_stage"] = max(per_stage.values()) if per_stage else 0.0
    for name, u in per_stage.items():
        if name != "access":
            out[f"utilization_{name}"] = u
    out["heartbeats"] = _heartbeats(world)
    out["heartbeats_window"] = int(world.window_push_connected_s / world.heartbeat_s)
    out["retransmits_downlink"] = world.logic.retransmits_downlink
    out["sync_bytes"] = world.sync_bytes
    out["segments_retransmitted"] = world.net.segments_retransmitted
    held_peak = sum(node.held_peak for node in world.access.nodes)
    out["held_polls_peak"] = held_peak
    out["held_poll_memory_peak_bytes"] = held_peak * world.sc["server.held_poll_bytes"]
    out["network_model"] = world.sc["network.model"]
    out["bytes_up"] = world.up.bytes
    out["bytes_down"] = world.down.bytes
    out["packets_lost_up"] = world.up.packets_lost
    out["packets_lost_down"] = world.down.packets_lost
    out["users"] = world.n_users
    out["horizon_s"] = horizon
    for key, value in world.counters.items():
        out[key] = value
    sec = world.security
    # every auth reason, 0 included: one shape for every run (a sweep flattens it into
    # logins_rejected_<reason> columns)
    out["logins_rejected_by_reason"] = {
        str(r): int(sec.rejected_by_reason.get(str(r), 0))
        for r in admission.Reason
        if r.stage == "auth"
    }
    # connect start (the SDK decides to connect) → login reply, retries included
    lat = sec.connect_latency_s
    out["connect_latency_p50_ms"] = float(np.percentile(lat, 50) * 1000.0) if lat else None
    out["connect_latency_p99_ms"] = float(np.percentile(lat, 99) * 1000.0) if lat else None
    out.update(_fault_metrics(world, messages, requests))
    # backend senders over the REST API (immodel.sim.backend)
    out.update(world.backend.summary())
    out.update(rest_latency_metrics(messages))
    out.update(push_metrics(world.counters))  # offline push end to end
    # idle short pollers in cohorts (immodel.sim.idle_poll): their polls are counted here
    out.update(world.idle.summary() if world.idle is not None else idle_poll.empty_summary())
    return out


def _heartbeats(world: World) -> int:
    """Heartbeats on push connections, counted from connected time (they are not events)."""
    connected = sum(c.connected_total_s for c in world.clients if c.kind == PUSH)
    return int(connected / world.heartbeat_s)


_REQUEST_KINDS = ("send", "ack", "poll", "sync", "login")


def _traffic(world: World) -> dict[str, int]:
    """Requests by kind and bytes of a finished world.

    Requests are the access layer's request rows (send, ack, poll, sync, login) without
    heartbeats: a client cut off by a fault sends no heartbeats, which would otherwise
    hide what recovering cost.
    """
    kinds = world.rec.req_kind
    out = {f"requests_{k}": kinds.count(k) for k in _REQUEST_KINDS}
    out["requests"] = len(kinds)
    out["bytes_up"] = world.up.bytes
    out["bytes_down"] = world.down.bytes
    return out


@functools.lru_cache(maxsize=32)
def _fault_free_traffic(scenario_toml: str) -> dict[str, int]:
    # Keyed by the TOML text so that the cells of a fault sweep that share a fault-free
    # twin (same seed and mechanisms) simulate it once per process.
    import tomllib

    twin = World(Scenario.load(tomllib.loads(scenario_toml)))
    twin.run()
    return _traffic(twin)


def _by_endpoint(devices, messages: pd.DataFrame, requests: pd.DataFrame):
    """``messages`` and ``requests`` with ``recipient`` / ``user`` as the device's endpoint
    id (:mod:`immodel.sim.devices`) instead of the user id."""
    eid = {(u, k): e for e, (u, k) in enumerate(zip(devices.user, devices.kind, strict=True))}

    def ids(users: pd.Series, kinds: pd.Series) -> np.ndarray:
        pairs = zip(users.tolist(), kinds.astype(str).tolist(), strict=True)
        return np.fromiter((eid[p] for p in pairs), dtype=np.int64, count=len(users))

    messages = messages.assign(recipient=ids(messages["recipient"], messages["device"]))
    requests = requests.assign(user=ids(requests["user"], requests["device"]))
    return messages, requests


def _fault_metrics(world: World, messages: pd.DataFrame, requests: pd.DataFrame) -> dict:
    """Recovery and extra-traffic metrics (module docstring); None without faults."""
    extra_keys = ("extra_requests", *(f"extra_requests_{k}" for k in _REQUEST_KINDS))
    extra_keys += ("extra_bytes_up", "extra_bytes_down", "extra_bytes")
    out: dict[str, Any] = dict.fromkeys((*RECOVERY_KEYS, *extra_keys))
    if not world.sc["faults"]:
        return out
    incidents = [e for e in world.fault_log if e["kind"] in CRASH_KINDS]
    if world.devices is not None:
        # The fault log names devices (endpoint ids): judge each device's rows by them.
        messages, requests = _by_endpoint(world.devices, messages, requests)
    out.update(recovery_metrics(messages, requests, incidents))
    twin = world.sc.with_overrides({"faults": []})
    base = _fault_free_traffic(twin.to_toml())
    mine = _traffic(world)
    for key, value in mine.items():
        out[f"extra_{key}"] = value - base[key]
    out["extra_bytes"] = out["extra_bytes_up"] + out["extra_bytes_down"]
    return out

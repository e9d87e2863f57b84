"""Sweeps: a grid of scenarios × replications, run on an executor, resumable.

A sweep file (TOML) names a base scenario, fixed overrides and a grid::

    scenario = "baseline"        # a built-in name, or a scenario file relative to this file
    replications = 5             # runs per grid point (default 1)
    seed = 1                     # root seed of the sweep (default 1)
    description = "transports under downlink loss"
    [set]                        # fixed overrides, dotted scenario keys
    duration_s = 600.0
    [grid]                       # every combination of these lists (last key varies fastest)
    "network.downlink_loss" = [0.0, 0.05, 0.1]
    "transport.kind" = ["short_poll", "long_poll", "push", "hybrid"]

:func:`load_sweep` validates all of it up front, every grid point included, so that a bad
value fails before hours of work rather than midway; errors are
:class:`~immodel.errors.ConfigError` (exit status 2, one ``error:`` line).

**Seeds (common random numbers).** ``numpy.random.SeedSequence(seed)`` is spawned into one
child per replication, and replication *r* uses child *r* at *every* grid point, so two
strategies are compared on the same random numbers and their difference has less noise
than either. The scenario's ``seed`` key is set to
``int(child.generate_state(1, dtype=np.uint64)[0] % 2**63)`` (see
:func:`replication_seeds`). Child *r* does not depend on how many children are spawned, so
raising ``replications`` later keeps the seeds of the replications already run.

**The result folder** ``OUT`` (default ``<sweep dir>/<sweep stem>-results/``)::

    sweep.toml       the resolved sweep; `immodel sweep OUT/sweep.toml --out OUT` resumes it
    scenario.toml    the base scenario, fully resolved (before [set])
    meta.json        format version, immodel version, the sweep's identity and its hash
    parts/           one single-row parquet file per finished task, p{point}-r{replication}
    results.parquet  all finished tasks, one row per grid point × replication
    failures.json    the tasks that raised in the last run, with replay commands (if any)

``results.parquet`` columns: ``point``, one column per grid key (named by its dotted key;
values that are tables or lists are stored as their JSON text), ``replication``, ``seed``,
then every summary metric (the headline metrics in their documented order, then any
extra keys in name order; ``immodel columns`` describes each).

**Resume.** A part file is written (temporary file + ``os.replace``) as each task finishes,
so a killed sweep loses at most the runs in flight. Re-running the same command computes
only the tasks without a part file; a finished sweep recomputes nothing.
``results.parquet`` is rebuilt from the parts at the end of every run (also after an
interruption) and by :func:`collect_results`, which also works while a sweep is running.

**Interruption.** A first Ctrl-C stops starting runs and says how many are in flight;
local worker processes ignore SIGINT, so those runs finish and are saved. A second
Ctrl-C — and, from the command line, SIGTERM or SIGHUP — terminates the workers at once
(:func:`immodel.experiments.executors.terminate_workers`; no worker outlives the sweep)
and loses only the runs in flight. Either way ``results.parquet`` is rebuilt from the
parts before the sweep ends, and re-running the same command continues.

**Progress.** On a terminal a tqdm bar with an ETA; otherwise (a log file, CI) one line
on stderr every :data:`PROGRESS_EVERY_S` seconds or 10 % of the runs.

**Overrides.** :func:`with_overrides` fixes scenario keys at every point (``immodel
sweep --set``; a grid key given this way leaves the grid) and changes the replications;
:func:`default_out_for` gives such a changed sweep its own folder. :func:`estimate_run_s`
is how ``immodel sweep --dry-run`` estimates the time.

**Refusing to mix.** ``meta.json`` records what decides the tasks — the fixed scenario
(base file + ``[set]``, without its name, description and seed), the grid (keys, order,
values) and the root seed — and its hash. If the sweep file changes any of them, the run
stops with a :class:`~immodel.errors.UserError` saying what changed and asking for another
``--out``. The description and the number of replications may change: more replications
only add tasks (existing seeds are unchanged), fewer leave the extra parts on disk but out
of ``results.parquet``. One run at a time per result folder: two runs on the same ``OUT``
would compute the same tasks twice (harmlessly, but for nothing).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import difflib
import hashlib
import importlib
import itertools
import json
import math
import os
import queue
import re
import shlex
import signal
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import tomli_w

from immodel.errors import ConfigError, UserError
from immodel.scenario import KEYS, Scenario, flatten, validate_value

__all__ = [
    "HEADLINE_METRICS",
    "SUMMARY_KEYS",
    "Sweep",
    "SweepAborted",
    "SweepFailed",
    "SweepStatus",
    "Task",
    "TaskFailure",
    "collect_results",
    "default_out_for",
    "default_runner",
    "estimate_run_s",
    "load_sweep",
    "prepare_out",
    "replication_seeds",
    "run_sweep",
    "short_drain_message",
    "short_drains",
    "summary_table",
    "sweep_status",
    "with_overrides",
]

FORMAT_VERSION = 1

#: Top-level keys of a sweep file.
SWEEP_KEYS = ("scenario", "replications", "seed", "description", "set", "grid")

#: The headline summary metrics, in their documented order (the runner adds more).
SUMMARY_KEYS = (
    "messages_sent",
    "deliveries_expected",
    "deliveries",
    "lost",
    "send_failures",
    "duplicates",
    "order_violations",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "requests_total",
    "requests_per_s",
    "empty_poll_fraction",
    "server_utilization",
    "retransmits_uplink",
    "retransmits_downlink",
    "sync_pulls",
    "sim_events",
    "wall_s",
)

#: Metrics shown (mean over replications) in the table printed at the end of a sweep.
HEADLINE_METRICS = (
    "lost",
    "duplicates",
    "order_violations",
    "latency_p50_ms",
    "latency_p99_ms",
    "requests_per_s",
)

# Columns every row has besides the grid keys and the metrics.
_RESERVED = ("point", "replication", "seed")
# Scenario keys that document a scenario without changing its runs.
_NOT_IDENTITY = ("seed", "name", "description")
_PART_RE = re.compile(r"^p(\d+)-r(\d+)\.parquet$")

Runner = Callable[[Scenario], Mapping[str, Any]]


# --------------------------------------------------------------------------------------
# The sweep and its tasks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One simulation run of a sweep: grid point ``point``, replication ``replication``.

    ``values`` are the grid values of the point (dotted key → normalised value), ``seed``
    the run's seed (already set in ``scenario``), ``scenario`` the complete scenario.
    """

    point: int
    values: Mapping[str, Any]
    replication: int
    seed: int
    scenario: Scenario

    @property
    def key(self) -> tuple[int, int]:
        """``(point, replication)``: the task's identity within its sweep."""
        return (self.point, self.replication)

    @property
    def part_name(self) -> str:
        """File name of the task's result under ``OUT/parts/``."""
        return f"p{self.point:06d}-r{self.replication:04d}.parquet"


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: base scenario, fixed overrides, grid, replications, root seed.

    Build one with :func:`load_sweep`. :meth:`points` lists the grid points,
    :meth:`tasks` the runs (points × replications) with their complete scenarios.
    ``scenario_ref`` is how the command line names the base scenario (a built-in name or
    an absolute file path; ``None`` when it was given as a mapping or a
    :class:`~immodel.scenario.Scenario`), ``path`` the sweep file (``None`` for a mapping).
    """

    scenario: Scenario
    scenario_ref: str | None
    set: Mapping[str, Any] = field(default_factory=dict)
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    replications: int = 1
    seed: int = 1
    description: str = ""
    path: Path | None = None

    @property
    def grid_keys(self) -> tuple[str, ...]:
        """The grid's dotted keys, in file order (also the grid columns of the results)."""
        return tuple(k for k, _ in self.grid)

    def point_scenario(self, values: Mapping[str, Any]) -> Scenario:
        """The base scenario with ``[set]`` and the grid ``values`` applied (validated).

        ``[set]`` alone need not be consistent (``workload.users = 10`` is fine when the
        grid gives every point a ``workload.group_size`` ≤ 10); each point must be.
        """
        return self.scenario.with_overrides({**self.set, **values})

    def points(self) -> list[tuple[int, dict[str, Any]]]:
        """``(point index, {grid key: value})`` for every combination, last key fastest.

        Without a grid there is one point, ``(0, {})``.
        """
        keys = self.grid_keys
        combos = itertools.product(*(values for _, values in self.grid))
        return [(i, dict(zip(keys, combo, strict=True))) for i, combo in enumerate(combos)]

    def replication_seeds(self) -> list[int]:
        """The run seed of each replication (the same at every grid point)."""
        return replication_seeds(self.seed, self.replications)

    def tasks(self) -> list[Task]:
        """Every run, point-major: ``points() × range(replications)``."""
        seeds = self.replication_seeds()
        out = []
        for point, values in self.points():
            scenario = self.point_scenario(values)
            for rep, seed in enumerate(seeds):
                # The seed was validated as a non-negative int: no need to re-validate.
                run = Scenario({**scenario.values, "seed": seed})
                out.append(Task(point, values, rep, seed, run))
        return out

    def identity(self) -> dict[str, Any]:
        """What decides the tasks, as JSON-able data: fixed scenario, grid, root seed.

        Replications and descriptions are not part of it (see the module docstring).
        """
        merged = {**self.scenario.values, **self.set}
        fixed = {k: v for k, v in merged.items() if k not in _NOT_IDENTITY}
        return _jsonable(
            {
                "scenario": fixed,
                "grid": [[k, list(v)] for k, v in self.grid],
                "seed": self.seed,
            }
        )

    def identity_hash(self) -> str:
        """SHA-256 (hex) of :meth:`identity`; equal hashes mean equal task lists."""
        return _digest(self.identity())

    def default_out(self) -> Path:
        """``<sweep file dir>/<sweep file stem>-results``; needs a sweep file."""
        if self.path is None:
            raise UserError("a sweep given as a mapping needs an explicit output folder (out)")
        return self.path.parent / f"{self.path.stem}-results"

    def to_toml(self, scenario_file: str = "scenario.toml") -> str:
        """The resolved sweep as TOML, its base scenario referred to as ``scenario_file``."""
        data: dict[str, Any] = {}
        if self.description:
            data["description"] = self.description
        data["scenario"] = scenario_file
        data["replications"] = self.replications
        data["seed"] = self.seed
        data["set"] = _tomlable(dict(self.set))
        data["grid"] = {k: _tomlable(list(v)) for k, v in self.grid}
        return tomli_w.dumps(data)

    def replay_command(self, task: Task, scenario_ref: str | None = None) -> str:
        """The ``immodel run`` command line that repeats ``task`` on its own.

        ``scenario_ref`` replaces the base scenario's name or path (needed when the sweep
        was built from a mapping: pass the saved ``OUT/scenario.toml``).
        """
        ref = scenario_ref or self.scenario_ref or "scenario.toml"
        words = ["immodel", "run", shlex.quote(_display_path(ref))]
        for key, value in {**self.set, **task.values}.items():
            words += ["--set", shlex.quote(f"{key}={toml_value(value)}")]
        words += ["--seed", str(task.seed)]
        return " ".join(words)


def replication_seeds(root: int, replications: int) -> list[int]:
    """Seeds of replications ``0 … replications-1`` derived from the root ``seed``.

    Replication *r*'s seed is ``int(child.generate_state(1, dtype=np.uint64)[0] % 2**63)``
    where ``child = SeedSequence(root).spawn(replications)[r]``: independent streams per
    replication, a valid TOML integer, and independent of how many are spawned.
    """
    children = np.random.SeedSequence(root).spawn(replications)
    return [int(c.generate_state(1, dtype=np.uint64)[0] % 2**63) for c in children]


def load_sweep(
    source: str | os.PathLike[str] | Mapping[str, Any] | Sweep,
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Sweep:
    """Read and validate a sweep from a TOML file or a mapping with the same keys.

    A relative scenario path is resolved against the sweep file's folder (``base_dir``,
    default the current folder, for a mapping). In a mapping, ``scenario`` may also be a
    :class:`~immodel.scenario.Scenario` or a mapping of scenario keys. Every grid point is
    built and validated here. Raises :class:`~immodel.errors.ConfigError` with one line
    naming the key and what is allowed.
    """
    if isinstance(source, Sweep):
        return source
    path: Path | None = None
    if isinstance(source, Mapping):
        data = dict(source)
        where = "sweep"
        root = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"sweep file '{source}' does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"sweep file '{source}' is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"sweep file '{source}' is not UTF-8 text") from None
        where = path.name
        path = path.resolve()
        root = path.parent

    def fail(message: str) -> ConfigError:
        return ConfigError(f"{where}: {message}")

    for key in data:
        if key not in SWEEP_KEYS:
            hint = _suggest(key, SWEEP_KEYS)
            if not hint and (key in KEYS or any(k.startswith(f"{key}.") for k in KEYS)):
                hint = "; scenario keys go in [set] (fixed) or [grid] (lists)"
            raise fail(
                f"unknown key '{key}' (allowed: scenario, replications, seed, description, "
                f"[set], [grid]){hint}"
            )

    scenario, scenario_ref = _load_base(data.get("scenario"), root, fail)

    replications = data.get("replications", 1)
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise fail(f"replications must be an integer ≥ 1, got {replications!r}")
    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise fail(f"seed must be an integer ≥ 0, got {seed!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail(f"description must be a string, got {description!r}")

    raw_set = data.get("set", {})
    if not isinstance(raw_set, Mapping):
        raise fail(f"[set] must be a table of scenario keys, got {raw_set!r}")
    fixed_overrides: dict[str, Any] = {}
    for name, value in flatten(raw_set).items():
        if name == "seed":
            raise fail(
                "[set] cannot set 'seed': each replication's seed derives from the "
                "sweep's top-level seed"
            )
        try:
            fixed_overrides[name] = validate_value(name, value)
        except ConfigError as exc:
            raise fail(f"[set] {exc}") from None

    raw_grid = data.get("grid", {})
    if not isinstance(raw_grid, Mapping):
        raise fail(f"[grid] must be a table of scenario keys → lists, got {raw_grid!r}")
    grid: list[tuple[str, tuple[Any, ...]]] = []
    for name, values in flatten(raw_grid).items():
        if name == "seed":
            raise fail(
                "[grid] cannot vary 'seed': use replications (and the top-level seed) instead"
            )
        if name not in KEYS:
            raise fail(f"[grid] unknown scenario key '{name}'{_suggest(name, KEYS)}")
        if name in fixed_overrides:
            raise fail(f"'{name}' is in both [set] and [grid]; keep it in one of them")
        if not isinstance(values, list):
            raise fail(
                f"[grid] {name} must be a list of values, e.g. [{toml_value(values)}], got "
                f"{toml_value(values)}; a single value belongs in [set]"
            )
        if not values:
            raise fail(f"[grid] {name} is an empty list; give at least one value")
        normalised = []
        seen: set[str] = set()
        for value in values:
            try:
                v = validate_value(name, value)
            except ConfigError as exc:
                raise fail(f"[grid] {exc}") from None
            token = _digest(_jsonable(v))
            if token in seen:
                raise fail(f"[grid] {name} lists {toml_value(v)} twice")
            seen.add(token)
            normalised.append(v)
        grid.append((name, tuple(normalised)))

    sweep = Sweep(
        scenario=scenario,
        scenario_ref=scenario_ref,
        set=fixed_overrides,
        grid=tuple(grid),
        replications=replications,
        seed=seed,
        description=description,
        path=path,
    )
    for index, values in sweep.points():
        try:
            sweep.point_scenario(values)
        except ConfigError as exc:
            prefix = f"grid point {index} ({_point_label(values)}): " if values else "[set] "
            raise fail(f"{prefix}{exc}") from None
    return sweep


def with_overrides(
    sweep: Sweep,
    set_overrides: Mapping[str, Any] | None = None,
    replications: int | None = None,
) -> Sweep:
    """``sweep`` with scenario keys fixed at every point and/or another replication count.

    A key of ``set_overrides`` replaces its ``[set]`` entry, or — if the grid varies it —
    takes it out of the grid (the sweep shrinks to that value). This is ``immodel sweep
    --set KEY=VALUE --replications N``. Every point is validated again; a changed
    ``[set]`` or grid is another sweep (another default result folder, see
    :func:`default_out_for`).
    """
    import dataclasses

    where = sweep.path.name if sweep.path else "sweep"
    fixed = dict(sweep.set)
    for name, value in (set_overrides or {}).items():
        if name == "seed":
            raise ConfigError(
                "--set cannot set 'seed': each replication's seed derives from the sweep's seed"
            )
        try:
            fixed[name] = validate_value(name, value)
        except ConfigError as exc:
            raise ConfigError(f"--set {exc}") from None
    grid = tuple((k, v) for k, v in sweep.grid if k not in (set_overrides or {}))
    bad = isinstance(replications, bool) or not isinstance(replications, int) or replications < 1
    if replications is not None and bad:
        raise ConfigError(f"--replications must be an integer ≥ 1, got {replications!r}")
    new = dataclasses.replace(
        sweep,
        set=fixed,
        grid=grid,
        replications=sweep.replications if replications is None else replications,
    )
    for index, values in new.points():
        try:
            new.point_scenario(values)
        except ConfigError as exc:
            prefix = f"grid point {index} ({_point_label(values)}): " if values else ""
            raise ConfigError(f"{where} with --set: {prefix}{exc}") from None
    return new


def default_out_for(sweep: Sweep, original: Sweep) -> Path:
    """The default result folder of ``sweep`` derived from ``original`` by
    :func:`with_overrides`: the original's folder if they are the same sweep (only the
    replications changed), else ``<stem>-results-<hash>`` beside it, so a shrunk or
    changed sweep never mixes with the file's own results."""
    base = original.default_out()
    if sweep.identity_hash() == original.identity_hash():
        return base
    return base.with_name(f"{base.name}-{sweep.identity_hash()[:10]}")


def short_drains(sweep: Sweep) -> list[tuple[int, float, float]]:
    """``(point, drain_s, required_drain_s)`` for every point whose explicit drain is
    shorter than :func:`immodel.sim.faults.required_drain_s` (none with ``"auto"``)."""
    out = []
    for index, values in sweep.points():
        scenario = sweep.point_scenario(values)
        if scenario.drain_is_auto:
            continue
        try:
            required = scenario.required_drain_s()
        except ConfigError:
            continue
        if scenario["drain_s"] < required:
            out.append((index, scenario["drain_s"], required))
    return out


def short_drain_message(sweep: Sweep) -> str | None:
    """One line about the points whose explicit drain is shorter than required (None if
    there are none): what :func:`run_sweep` warns (:class:`~immodel.errors.DrainWarning`)."""
    short = short_drains(sweep)
    if not short:
        return None
    point, drain, required = max(short, key=lambda item: item[2] - item[1])
    return (
        f"drain_s is shorter than required at {len(short)} of {len(sweep.points())} "
        f"point(s) (worst: point {point}, {drain:g} s < {required:g} s, "
        "immodel.sim.faults.required_drain_s); lost and the latency tail count only what "
        'arrives within the drain: set drain_s = "auto" to derive it'
    )


def estimate_run_s(scenario: Scenario, budget_s: float = 0.5) -> float:
    """Wall seconds one run of ``scenario`` takes here, estimated by simulating it for
    about ``budget_s`` of wall time and extrapolating the simulated-time rate to the
    whole horizon (sending period + drain); a run shorter than the budget is simply
    timed. It is a lower bound for long runs: a run slows down as its users accumulate
    conversations (each receipt sync walks them), which the first moments do not show.
    On the development machine, point 0 of ``experiments/loss_sweep.toml`` (short
    polling, 2 000 users, 1 200 s) was estimated at 132 s and took 295 s."""
    from immodel.sim.model import resolve_drain, run

    class _Enough(Exception):
        pass

    seen: dict[str, float] = {}
    t0 = time.perf_counter()

    def stop(now_s: float, horizon_s: float, events: int) -> None:
        if now_s < horizon_s and time.perf_counter() - t0 >= budget_s and now_s > 0:
            seen["now"], seen["horizon"] = now_s, horizon_s
            raise _Enough

    import warnings

    from immodel.errors import DrainWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DrainWarning)
        scenario = resolve_drain(scenario)[0]
        try:
            run(scenario, progress=stop)
        except _Enough:
            return (time.perf_counter() - t0) * seen["horizon"] / seen["now"]
    return time.perf_counter() - t0


def load_sweep_with(
    sweep_file: str | os.PathLike[str],
    *,
    set_overrides: Mapping[str, Any] | None = None,
    grid_overrides: Mapping[str, Any] | None = None,
    replications: int | None = None,
    out: str | os.PathLike[str] | None = None,
) -> tuple[Sweep, Path]:
    """A sweep file with some of its ``[set]``/``[grid]`` entries (and replications)
    replaced, validated, plus its result folder.

    This is how a notebook runs a scaled-down version of a batch experiment: the folder
    defaults to ``results/<file stem>-<hash of the resolved sweep>``, so each variant
    resumes into its own folder and never mixes with another.
    """
    path = Path(sweep_file)
    if not path.is_file():
        raise ConfigError(f"sweep file '{sweep_file}' does not exist")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file '{sweep_file}' is not valid TOML: {exc}") from None
    spec.setdefault("set", {}).update(set_overrides or {})
    spec.setdefault("grid", {}).update(grid_overrides or {})
    if replications:
        spec["replications"] = replications
    sweep = load_sweep(spec, base_dir=path.parent)
    folder = Path(out) if out else Path("results") / f"{path.stem}-{sweep.identity_hash()[:10]}"
    return sweep, folder


def _load_base(source: Any, root: Path, fail) -> tuple[Scenario, str | None]:
    if source is None:
        raise fail(
            "missing key 'scenario' (a built-in scenario name such as 'baseline', or a "
            "scenario file relative to the sweep file)"
        )
    if isinstance(source, Scenario | Mapping):
        try:
            return Scenario.load(source), None
        except ConfigError as exc:
            raise fail(f"scenario: {exc}") from None
    if not isinstance(source, str | os.PathLike):
        raise fail(f"scenario must be a built-in name or a file path, got {source!r}")
    text = os.fspath(source)
    candidate = Path(text) if Path(text).is_absolute() else root / text
    is_file = text.endswith(".toml") or candidate.exists() or isinstance(source, os.PathLike)
    if is_file:
        if not candidate.is_file():
            raise fail(f"scenario file '{text}' does not exist (looked for {candidate})")
        ref = str(candidate.resolve())
        target: str | Path = candidate
    else:
        ref = text
        target = text
    try:
        return Scenario.load(target), ref
    except ConfigError as exc:
        raise fail(f"scenario '{text}': {exc}") from None


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def default_runner(scenario: Scenario) -> dict[str, Any]:
    """Run ``scenario`` with the simulator and return its summary dict.

    Imports :mod:`immodel.sim.model` on first use, in the process that runs the task.
    """
    import warnings

    from immodel.errors import DrainWarning
    from immodel.sim.model import run

    with warnings.catch_warnings():
        # Reported once for the whole sweep (:func:`short_drains`), not once per run.
        warnings.simplefilter("ignore", DrainWarning)
        return run(scenario).summary


def _require_simulator() -> None:
    try:
        importlib.import_module("immodel.sim.model")
    except ImportError as exc:
        raise UserError(
            f"the simulator (immodel.sim.model) cannot be imported here: {exc}"
        ) from None


def execute_task(runner: Runner, scenario: Scenario) -> tuple[bool, Any]:
    """Run one task where the executor puts it; never raises an ``Exception``.

    Returns ``(True, summary)`` with plain Python values (numpy scalars unwrapped,
    tables and lists as JSON text), or ``(False, traceback text)`` if the runner raised,
    so that a failure travels back as plain data from any executor.
    """
    try:
        summary = runner(scenario)
        if not isinstance(summary, Mapping):
            raise TypeError(
                f"the runner returned {type(summary).__name__}, not a mapping of summary metrics"
            )
        return True, _flat_metrics(summary)
    except Exception:
        return False, traceback.format_exc()


@dataclass(frozen=True)
class TaskFailure:
    """A task whose runner raised (or whose worker died): what, where, how to replay."""

    point: int
    values: Mapping[str, Any]
    replication: int
    seed: int
    error: str
    details: str
    replay: str

    def describe(self) -> str:
        """One line: the point, its grid values, replication, seed and the error."""
        label = _point_label(self.values) or "no grid"
        return (
            f"point {self.point} ({label}), replication {self.replication}, "
            f"seed {self.seed}: {self.error}"
        )


class SweepFailed(RuntimeError):
    """Some tasks of a sweep raised; the others' results were kept.

    ``failures`` lists them (:class:`TaskFailure`), ``not_run`` counts tasks never started
    (the executor broke), ``results`` is the frame of finished tasks (also in
    ``out/results.parquet``) and ``out`` the result folder. Re-running the sweep retries
    only the failed and unstarted tasks.
    """

    def __init__(self, failures: list[TaskFailure], not_run: int, results: pd.DataFrame, out: Path):
        self.failures = failures
        self.not_run = not_run
        self.results = results
        self.out = out
        extra = f" and {not_run} did not start" if not_run else ""
        super().__init__(
            f"{len(failures)} task(s) failed{extra}; the {len(results)} finished are in "
            f"{out / 'results.parquet'}"
        )


@dataclass(frozen=True)
class SweepStatus:
    """How far a sweep is in a result folder: ``done`` and ``todo`` task keys."""

    total: int
    done: frozenset[tuple[int, int]]
    todo: tuple[tuple[int, int], ...]


def sweep_status(sweep: Sweep, out: str | os.PathLike[str]) -> SweepStatus:
    """Which tasks of ``sweep`` already have results in ``out`` (nothing is written).

    Raises :class:`~immodel.errors.UserError` if ``out`` holds a different sweep.
    """
    out = Path(out)
    _check_identity(sweep, out)
    keys = [t.key for t in sweep.tasks()]
    done = _done_keys(out) & set(keys)
    return SweepStatus(
        total=len(keys), done=frozenset(done), todo=tuple(k for k in keys if k not in done)
    )


def run_sweep(
    sweep: Sweep | str | os.PathLike[str] | Mapping[str, Any],
    out: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    runner: Runner | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run every task of ``sweep`` not yet in ``out`` and return all results.

    ``out`` defaults to :meth:`Sweep.default_out`. ``workers`` local processes
    (default ``os.cpu_count()``; 1 runs in this process) unless ``scheduler`` names a Dask
    scheduler (``tcp://host:8786``) or is ``"local"`` (a Dask ``LocalCluster`` with
    ``workers`` workers). ``runner(scenario) -> summary dict`` runs one simulation
    (default :func:`default_runner`; it must pickle, i.e. be a module-level function, for
    process pools and Dask). ``progress`` shows a tqdm bar with ETA on stderr (default:
    when stderr is a terminal; otherwise progress lines, see the module docstring;
    ``False``: neither).

    Lifecycle: checks that ``out`` holds no other sweep, writes ``sweep.toml``,
    ``scenario.toml`` and ``meta.json``, then a part file per finished task, then
    ``results.parquet`` (also when interrupted). Returns the results frame (one row per
    finished grid point × replication, sorted). Raises :class:`SweepFailed` after saving
    everything else if any task raised.
    """
    from immodel.experiments.executors import open_backend, validate_workers
    from immodel.experiments.scheduling import longest_first

    sweep = load_sweep(sweep)
    out = Path(out) if out is not None else sweep.default_out()
    validate_workers(workers)
    if runner is None:
        if scheduler is None:  # Dask workers import it themselves (executors.worker_version)
            _require_simulator()
        runner = default_runner
    prepare_out(sweep, out)
    message = short_drain_message(sweep)
    if message:
        import warnings

        from immodel.errors import DrainWarning

        warnings.warn(message, DrainWarning, stacklevel=2)
    parts = out / "parts"
    tasks = sweep.tasks()
    done = _done_keys(out)
    todo = [t for t in tasks if t.key not in done]
    total = len(tasks)
    labels = _grid_labels(sweep)
    scenario_ref = sweep.scenario_ref or str((out / "scenario.toml").resolve())
    failures: list[TaskFailure] = []
    finished = 0
    show = sys.stderr.isatty() if progress is None else bool(progress)

    lines = _ProgressLines(total, total - len(todo)) if not show and progress is None else None
    try:
        if todo:
            if show:
                from tqdm.auto import tqdm
            else:  # no bar: skip importing tqdm (a fixed cost of every sweep in a log or CI)
                tqdm = _NoBar

            interrupts = _Interrupts()
            with (
                interrupts.installed(),
                open_backend(workers=workers, scheduler=scheduler) as backend,
                tqdm(
                    total=total,
                    initial=total - len(todo),
                    desc="sweep",
                    unit="run",
                    disable=not show,
                    file=sys.stderr,
                    dynamic_ncols=True,
                ) as bar,
            ):
                if show:
                    bar.write(f"running on {backend.label}", file=sys.stderr)
                # The longest expected runs first, so that no long run starts last
                # while the other workers idle (:mod:`immodel.experiments.scheduling`).
                order = longest_first(todo) if backend.window != 1 else todo
                for task, outcome in _execute(backend, runner, order, interrupts):
                    finished += 1
                    bar.update(1)
                    if lines is not None:
                        lines.update(finished)
                    if isinstance(outcome, BaseException):  # the executor, not the runner
                        ok, payload = False, f"{type(outcome).__name__}: {outcome}"
                    else:
                        ok, payload = outcome
                    if ok:
                        _write_part(parts / task.part_name, _row(task, payload, labels))
                        continue
                    failure = TaskFailure(
                        point=task.point,
                        values=task.values,
                        replication=task.replication,
                        seed=task.seed,
                        error=_last_line(payload),
                        details=payload,
                        replay=sweep.replay_command(task, scenario_ref),
                    )
                    failures.append(failure)
                    if show:
                        bar.write(f"failed: {failure.describe()}", file=sys.stderr)
    except BaseException:
        # Keep what finished readable even when interrupted; never mask the interruption.
        with contextlib.suppress(Exception):
            _collect(sweep, out, write=True)
        raise

    frame = _collect(sweep, out, write=True)
    not_run = len(todo) - finished
    failures_file = out / "failures.json"
    if failures or not_run:
        _atomic_write_text(
            failures_file,
            json.dumps(
                [
                    {**f.__dict__, "values": _jsonable(dict(f.values))}
                    for f in sorted(failures, key=lambda f: (f.point, f.replication))
                ],
                indent=2,
                ensure_ascii=False,
            ),
        )
        raise SweepFailed(failures, not_run, frame, out)
    failures_file.unlink(missing_ok=True)
    return frame


class _NoBar(contextlib.nullcontext):
    """Stands in for a disabled tqdm bar: the same calls, nothing shown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(self)

    def update(self, n: int = 1) -> None:
        """Nothing to show."""

    def write(self, text: str, file: Any = None) -> None:
        """Nothing to show."""


class _ProgressLines:
    """Progress as plain lines on stderr when it is not a terminal (a log file, CI):
    one line every :data:`PROGRESS_EVERY_S` seconds or 10 % of the runs, whichever
    comes first, with runs done, rate and ETA."""

    def __init__(self, total: int, done_before: int) -> None:
        self.total = total
        self.before = done_before
        self.start = self.last = time.monotonic()
        self.last_share = 0

    def update(self, finished: int) -> None:
        now = time.monotonic()
        done = self.before + finished
        share = int(10 * done / self.total) if self.total else 10
        if now - self.last < PROGRESS_EVERY_S and share == self.last_share:
            return
        self.last, self.last_share = now, share
        elapsed = now - self.start
        rate = finished / elapsed if elapsed > 0 else 0.0
        left = self.total - done
        eta = f", about {human_duration(left / rate)} left" if rate > 0 and left else ""
        print(
            f"sweep: {done}/{self.total} runs done ({100 * done / self.total:.0f} %), "
            f"{rate * 60:.1f} runs/min{eta}",
            file=sys.stderr,
            flush=True,
        )


#: Seconds between progress lines of a sweep whose stderr is not a terminal.
PROGRESS_EVERY_S = 30.0


def human_duration(seconds: float) -> str:
    """``seconds`` as a short human duration: 45 s, 12 min, 3.4 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class SweepAborted(KeyboardInterrupt):
    """The sweep was stopped at once (a second Ctrl-C, SIGTERM or SIGHUP): the worker
    processes were terminated and the runs in flight are lost; finished runs are kept."""


class _Interrupts:
    """Ctrl-C during a sweep, as a flag rather than an exception wherever it lands.

    Installed as the SIGINT handler while the runs execute (main thread only): the first
    Ctrl-C sets :attr:`requested` (:func:`_execute` notices within half a second), a
    second raises :class:`SweepAborted` at once. Elsewhere (a thread), Ctrl-C keeps its
    default meaning and :func:`_execute` treats a ``KeyboardInterrupt`` the same way.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        if self.requested:
            raise SweepAborted("interrupted twice")
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Interrupts]:
        try:
            previous = signal.signal(signal.SIGINT, self)
        except ValueError:  # not the main thread
            yield self
            return
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def _execute(
    backend, runner: Runner, tasks: list[Task], interrupts: _Interrupts | None = None
) -> Iterator[tuple[Task, Any]]:
    """Yield ``(task, outcome)`` as tasks finish, at most ``backend.window`` in flight.

    ``outcome`` is what :func:`execute_task` returned, or the exception the executor
    raised for the task (a dead worker, a broken pool). Once the executor refuses new
    work, the tasks not yet submitted are dropped (the caller counts them as not run).
    Completions arrive through a queue fed by done-callbacks, so each costs O(1) however
    many tasks are in flight (Dask gets them all at once).

    **Interruption** (``interrupts``, or a ``KeyboardInterrupt``): stop submitting,
    cancel what the executor has not started, say on stderr how many runs it waits for,
    and keep yielding those as they finish (local worker processes ignore SIGINT, so
    they complete and are saved); then raise ``KeyboardInterrupt``. A second Ctrl-C
    raises :class:`SweepAborted` at once (the backend then terminates the workers).
    """
    interrupts = interrupts or _Interrupts()
    finished: queue.SimpleQueue = queue.SimpleQueue()
    pending = list(reversed(tasks))
    window = backend.window or len(tasks)
    inflight: dict[Any, Task] = {}
    announced = False

    def stop_submitting() -> None:
        pending.clear()
        for future in list(inflight):
            future.cancel()  # only succeeds for tasks no worker has taken yet
        waiting = sum(1 for f in inflight if not f.cancelled())
        print(
            f"interrupted: waiting for the {waiting} run(s) in flight to finish "
            "(each is saved); press Ctrl-C again to stop them now",
            file=sys.stderr,
            flush=True,
        )

    while pending or inflight:
        while pending and len(inflight) < window and not interrupts.requested:
            task = pending.pop()
            try:
                future = backend.executor.submit(execute_task, runner, task.scenario)
            except Exception as exc:  # e.g. BrokenProcessPool: no point submitting more
                pending.clear()
                yield task, exc
                break
            inflight[future] = task
            future.add_done_callback(lambda f, t=task: finished.put((t, f)))
        if not inflight:
            break
        while True:  # a timeout keeps Ctrl-C responsive on every platform
            if interrupts.requested and not announced:
                announced = True
                stop_submitting()
            try:
                task, future = finished.get(timeout=0.5)
                break
            except queue.Empty:
                continue
            except SweepAborted:
                raise
            except KeyboardInterrupt:
                if interrupts.requested:
                    raise SweepAborted("interrupted twice") from None
                interrupts.requested = True
        inflight.pop(future, None)
        if future.cancelled():
            if not interrupts.requested:
                yield task, RuntimeError("the executor cancelled the task")
            continue
        exc = future.exception()
        yield task, (exc if exc is not None else future.result())
    if interrupts.requested:
        if not announced:
            stop_submitting()
        raise KeyboardInterrupt


# --------------------------------------------------------------------------------------
# The result folder
# --------------------------------------------------------------------------------------


def collect_results(out: str | os.PathLike[str], *, write: bool = True) -> pd.DataFrame:
    """The results frame of the sweep in ``out``, built from its part files.

    Works during a run (the finished tasks so far) and after one. With ``write``,
    ``out/results.parquet`` is (re)written too, atomically.
    """
    out = Path(out)
    if not (out / "sweep.toml").is_file():
        raise UserError(f"'{out}' is not a sweep result folder (no sweep.toml in it)")
    return _collect(load_sweep(out / "sweep.toml"), out, write=write)


def _collect(sweep: Sweep, out: Path, *, write: bool) -> pd.DataFrame:
    wanted = {(p, r) for p, _ in sweep.points() for r in range(sweep.replications)}
    rows = []
    for path in sorted((out / "parts").glob("p*-r*.parquet")):
        m = _PART_RE.match(path.name)
        if m is None or (int(m[1]), int(m[2])) not in wanted:
            continue
        try:
            rows.extend(pq.read_table(path).to_pylist())
        except (OSError, pa.ArrowException) as exc:
            raise UserError(
                f"result part '{path}' is unreadable ({exc}); delete it and re-run the "
                "sweep to recompute it"
            ) from None
    grid_keys = list(sweep.grid_keys)
    metrics: list[str] = []
    seen = set(_RESERVED) | set(grid_keys)
    extras: set[str] = set()
    for row in rows:
        extras.update(k for k in row if k not in seen)
    metrics = [k for k in SUMMARY_KEYS if k in extras] + sorted(extras - set(SUMMARY_KEYS))
    columns = ["point", *grid_keys, "replication", "seed", *metrics]
    frame = pd.DataFrame(rows, columns=columns)
    for name in metrics:
        frame[name] = _numeric_if_possible(frame[name])
    for name in ("point", "replication", "seed"):
        frame[name] = frame[name].astype("int64")
    frame = frame.sort_values(["point", "replication"], kind="stable").reset_index(drop=True)
    if write:
        tmp = out / f".results.parquet.{os.getpid()}.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, out / "results.parquet")
    return frame


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    values = [v for v in column if v is not None and not _is_nan(v)]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pd.to_numeric(column)
    return column


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _done_keys(out: Path) -> set[tuple[int, int]]:
    parts = out / "parts"
    if not parts.is_dir():
        return set()
    done = set()
    for path in parts.iterdir():
        m = _PART_RE.match(path.name)
        if m is not None and path.stat().st_size > 0:
            done.add((int(m[1]), int(m[2])))
    return done


def _check_identity(sweep: Sweep, out: Path) -> dict[str, Any] | None:
    """The existing meta.json of ``out`` if it holds this sweep; raise if another."""
    if out.exists() and not out.is_dir():
        raise UserError(f"the output folder '{out}' is a file; pass another --out")
    meta_path = out / "meta.json"
    if not meta_path.exists():
        if _done_keys(out):
            raise UserError(
                f"'{out}' holds result parts but no meta.json, so they cannot be matched to "
                "this sweep; pass another --out (or delete the folder to start over)"
            )
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        stored_hash = meta["sweep_hash"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(
            f"'{meta_path}' is unreadable; pass another --out (or delete the folder)"
        ) from None
    if stored_hash != sweep.identity_hash():
        what = _explain_difference(meta.get("identity"), sweep.identity())
        raise UserError(
            f"'{out}' holds results of a different sweep ({what}); mixing them would "
            "corrupt both: pass another --out (or delete the folder to start over)"
        )
    return meta


def _explain_difference(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "its sweep hash differs"
    changes = []
    if old.get("seed") != new["seed"]:
        changes.append(f"seed {old.get('seed')} → {new['seed']}")
    old_grid, new_grid = old.get("grid") or [], new["grid"]
    if old_grid != new_grid:
        old_keys = [k for k, _ in old_grid]
        new_keys = [k for k, _ in new_grid]
        if old_keys != new_keys:
            changes.append(f"[grid] keys {old_keys} → {new_keys}")
        else:
            differ = [k for (k, a), (_, b) in zip(old_grid, new_grid, strict=True) if a != b]
            changes.append(f"[grid] values of {', '.join(differ)}")
    old_s, new_s = old.get("scenario") or {}, new["scenario"]
    if old_s != new_s:
        differ = sorted(k for k in set(old_s) | set(new_s) if old_s.get(k) != new_s.get(k))
        shown = ", ".join(
            f"{k} {toml_value(old_s.get(k))} → {toml_value(new_s.get(k))}" for k in differ[:3]
        )
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        changes.append(f"scenario/[set]: {shown}{more}")
    return "; ".join(changes) or "its sweep hash differs"


def prepare_out(sweep: Sweep, out: Path) -> None:
    """Check ``out`` against ``sweep`` (another sweep's folder, a file, a place that cannot
    be written: :class:`~immodel.errors.UserError`) and write sweep.toml, scenario.toml,
    meta.json. :func:`run_sweep` calls it first; the command line calls it for every
    sweep file before running any."""
    meta = _check_identity(sweep, out)
    try:
        (out / "parts").mkdir(parents=True, exist_ok=True)
        probe = out / "parts" / f".write-test.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"the output folder '{out}' cannot be written ({reason}); pass another --out"
        ) from None
    # Temporary files of runs killed mid-write. Writing one takes milliseconds, so an old
    # one is stale; a young one may belong to another run on this folder right now.
    for tmp in (out / "parts").glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - tmp.stat().st_mtime > 60:
                tmp.unlink()
    from immodel import __version__

    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    origin = f" from {sweep.path}" if sweep.path else ""
    header = (
        f"# Resolved by immodel {__version__}{origin}.\n"
        f"# Resume or extend: immodel sweep {shlex.quote(str(out / 'sweep.toml'))} "
        f"--out {shlex.quote(str(out))}\n"
    )
    _atomic_write_text(out / "scenario.toml", sweep.scenario.to_toml())
    _atomic_write_text(out / "sweep.toml", header + sweep.to_toml("scenario.toml"))
    new_meta = {
        "format": FORMAT_VERSION,
        "immodel_version": __version__,
        "sweep_hash": sweep.identity_hash(),
        "identity": sweep.identity(),
        "points": len(sweep.points()),
        "replications": sweep.replications,
        "grid_keys": list(sweep.grid_keys),
        "created": (meta or {}).get("created", now),
        "updated": now,
    }
    _atomic_write_text(out / "meta.json", json.dumps(new_meta, indent=2, ensure_ascii=False))


def _write_part(path: Path, row: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(pa.Table.from_pylist([row]), tmp)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _row(task: Task, summary: Mapping[str, Any], labels: Mapping[str, Callable]) -> dict:
    row: dict[str, Any] = {"point": task.point}
    for key, label in labels.items():
        row[key] = label(task.values[key])
    row["replication"] = task.replication
    row["seed"] = task.seed
    for key, value in summary.items():
        if key not in row:  # a metric cannot shadow the point, grid or seed columns
            row[key] = value
    return row


def _grid_labels(sweep: Sweep) -> dict[str, Callable[[Any], Any]]:
    """Per grid key, how its values are stored in a column of one type."""
    labels: dict[str, Callable[[Any], Any]] = {}
    for key, values in sweep.grid:
        kinds = {type(v) for v in values}
        scalar = len(kinds) == 1 and kinds <= {bool, int, float, str}
        labels[key] = (lambda v: v) if scalar else _json_text
    return labels


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------


def summary_table(
    frame: pd.DataFrame,
    grid_keys: tuple[str, ...] | list[str],
    metrics: tuple[str, ...] = HEADLINE_METRICS,
    max_rows: int = 40,
) -> str:
    """One line per grid point: its grid values, ``n`` runs and the mean of ``metrics``."""
    if frame.empty:
        return "(no finished runs)"
    grouped = frame.groupby("point", sort=True)
    table = pd.DataFrame(index=grouped.size().index)
    for key in grid_keys:
        table[key] = grouped[key].first()
    table["n"] = grouped.size()
    for m in metrics:
        if m in frame.columns and _numeric(frame[m]):
            table[m] = grouped[m].mean()
    table = table.reset_index()
    lines = table.head(max_rows).to_string(
        index=False, float_format=lambda x: f"{x:.4g}", na_rep="-"
    )
    if len(table) > max_rows:
        lines += f"\n… {len(table) - max_rows} more points"
    return lines


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """``value`` as a TOML inline value (what ``--set KEY=VALUE`` reads back)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _point_label(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={toml_value(v)}" for k, v in values.items())


def _display_path(ref: str) -> str:
    if not os.path.isabs(ref):
        return ref
    rel = os.path.relpath(ref)
    return ref if rel.startswith("..") else rel


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _jsonable(value: Any) -> Any:
    """Tuples → lists, mappings → dicts (recursively): the JSON view of a value."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _json_text(value: Any) -> str:
    return json.dumps(_jsonable(value), sort_keys=True, ensure_ascii=False)


def _tomlable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _tomlable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tomlable(v) for v in value]
    return value


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _flat_metrics(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` with plain values; a mapping of counts (``logins_rejected_by_reason``)
    becomes one column per entry (``logins_rejected_auth_expired`` …), which a results
    table can sort and plot, rather than one JSON text."""
    out: dict[str, Any] = {}
    for k, v in summary.items():
        if isinstance(v, Mapping) and str(k).endswith(("_by_reason", "_by_priority")):
            prefix = str(k).removesuffix("_by_reason").removesuffix("_by_priority")
            for sub, count in v.items():
                out[f"{prefix}_{sub}"] = _plain(count)
        else:
            out[str(k)] = _plain(v)
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return _json_text(value)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"

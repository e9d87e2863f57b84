"""Command-line handlers of the experiments layer (``immodel sweep`` …).

:mod:`immodel.cli` parses the arguments and calls the handler here; each handler returns
the exit status. A :class:`~immodel.errors.UserError` propagates to :func:`immodel.cli.main`,
which prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from immodel.errors import UserError
from immodel.experiments.executors import validate_workers
from immodel.experiments.sweep import (
    Sweep,
    SweepAborted,
    SweepFailed,
    _point_label,
    default_out_for,
    estimate_run_s,
    human_duration,
    load_sweep,
    prepare_out,
    run_sweep,
    short_drain_message,
    summary_table,
    sweep_status,
    with_overrides,
)
from immodel.scenario import parse_override

# How many failed tasks are described in full (the rest are in OUT/failures.json).
_FAILURES_SHOWN = 3
# Grid points listed by --dry-run before "… and N more".
_POINTS_SHOWN = 50
# Wall seconds each grid point is simulated for by --dry-run's estimate.
_CALIBRATION_S = 0.5


def cmd_sweep(args: argparse.Namespace) -> int:
    """``immodel sweep SWEEP.toml… [--out DIR] [--workers N] [--scheduler ADDRESS]
    [--set KEY=VALUE]… [--replications N] [--dry-run]``.

    Validates every sweep (with the overrides) before running any, says how many runs
    are left, runs them (a progress bar on a terminal, progress lines otherwise), then
    prints one line per grid point (means over replications) and where the results are.
    Several files run one after the other. Exit status: 0 when every run finished, 1
    when some raised (their replay commands are printed; the rest is saved), 2 for bad
    input, 130 when interrupted (finished runs are saved; see :func:`_abort_on_signals`).
    """
    validate_workers(args.workers)
    files = list(args.sweep_files)
    if args.out and len(files) > 1:
        raise UserError("--out takes one sweep file; give each sweep its own run, or drop --out")
    overrides = dict(parse_override(o) for o in args.overrides)
    plans: list[tuple[Sweep, Path]] = []
    for file in files:
        original = load_sweep(file)
        sweep = with_overrides(original, overrides, args.replications)
        out = Path(args.out) if args.out else default_out_for(sweep, original)
        plans.append((sweep, out))
    statuses = [sweep_status(sweep, out) for sweep, out in plans]  # a foreign folder fails here
    if args.dry_run:
        for (sweep, out), status in zip(plans, statuses, strict=True):
            _dry_run(sweep, out, status, args.workers)
        return 0
    for sweep, out in plans:  # every output folder checked and claimed before any run
        prepare_out(sweep, out)
    worst = 0
    with _abort_on_signals():
        for (sweep, out), status in zip(plans, statuses, strict=True):
            worst = max(worst, _run_one(sweep, out, status, args))
    return worst


def _run_one(sweep: Sweep, out: Path, status, args: argparse.Namespace) -> int:
    points = len(sweep.points())
    name = f"{sweep.path.name}: " if sweep.path else ""
    print(
        f"sweep {name}{points} point(s) × {sweep.replications} replication(s) = "
        f"{status.total} runs; {len(status.done)} already in {out}, {len(status.todo)} to run",
        file=sys.stderr,
    )
    try:
        frame = run_sweep(sweep, out, workers=args.workers, scheduler=args.scheduler)
    except SweepFailed as exc:
        print(summary_table(exc.results, sweep.grid_keys))
        for failure in exc.failures[:_FAILURES_SHOWN]:
            print(f"failed: {failure.describe()}", file=sys.stderr)
            print(f"  replay: {failure.replay}", file=sys.stderr)
        hidden = len(exc.failures) - _FAILURES_SHOWN
        if hidden > 0:
            print(f"… and {hidden} more failures", file=sys.stderr)
        if exc.not_run:
            print(f"{exc.not_run} run(s) did not start (the executor broke)", file=sys.stderr)
        print(
            f"error: {exc}; details in {out / 'failures.json'}; re-running the same command "
            "retries only these",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt as exc:
        how = "stopped" if isinstance(exc, SweepAborted) else "interrupted"
        print(
            f"{how}: finished runs are saved in {out / 'results.parquet'}; re-run the same "
            "command to continue",
            file=sys.stderr,
        )
        raise
    print(summary_table(frame, sweep.grid_keys))
    print(f"results: {out / 'results.parquet'} ({len(frame)} rows)")
    return 0


def _dry_run(sweep: Sweep, out: Path, status, workers: int | None) -> None:
    """Print the runs of ``sweep`` and an estimated wall time, run nothing."""
    points = sweep.points()
    todo_by_point: dict[int, int] = {}
    for point, _ in status.todo:
        todo_by_point[point] = todo_by_point.get(point, 0) + 1
    name = f"{sweep.path.name}: " if sweep.path else ""
    print(
        f"sweep {name}{len(points)} point(s) × {sweep.replications} replication(s) = "
        f"{status.total} runs; {len(status.done)} already in {out}, {len(status.todo)} to run"
    )
    estimates: dict[int, float] = {}
    for index, values in points:
        if todo_by_point.get(index):
            estimates[index] = estimate_run_s(sweep.point_scenario(values), _CALIBRATION_S)
    for index, values in points[:_POINTS_SHOWN]:
        label = _point_label(values) or "(no grid)"
        todo = todo_by_point.get(index, 0)
        each = f", about {human_duration(estimates[index])} each" if index in estimates else ""
        print(f"  point {index}: {label}: {todo} run(s) to do{each}")
    if len(points) > _POINTS_SHOWN:
        print(f"  … and {len(points) - _POINTS_SHOWN} more points")
    cpu_s = sum(estimates[p] * n for p, n in todo_by_point.items())
    n = workers or os.cpu_count() or 1
    n = min(n, max(1, len(status.todo)))
    print(
        f"estimated: {human_duration(cpu_s)} of CPU, about {human_duration(cpu_s / n)} on {n} "
        f"worker(s) (each point simulated here for {_CALIBRATION_S:g} s of wall time and "
        "extrapolated at that pace: a lower bound, long runs slow down as conversations "
        "accumulate, expect up to 2-3× more)"
    )
    message = short_drain_message(sweep)
    if message:
        print(f"warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def _abort_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the sweep like a second Ctrl-C: workers are terminated,
    finished runs stay saved (``results.parquet`` is rebuilt) and the command exits 130."""

    def handler(signum, frame):
        raise SweepAborted(f"signal {signal.Signals(signum).name}")

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            with contextlib.suppress(ValueError, OSError):  # not the main thread
                previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

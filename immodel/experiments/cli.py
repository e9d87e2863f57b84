"""Command-line handlers of the experiments layer (``immodel sweep`` …).

:mod:`immodel.cli` parses the arguments and calls the handler here; each handler returns
the exit status. A :class:`~immodel.errors.UserError` propagates to :func:`immodel.cli.main`,
which prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from immodel.experiments.executors import validate_workers
from immodel.experiments.sweep import (
    SweepFailed,
    load_sweep,
    run_sweep,
    summary_table,
    sweep_status,
)

# How many failed tasks are described in full (the rest are in OUT/failures.json).
_FAILURES_SHOWN = 3


def cmd_sweep(args: argparse.Namespace) -> int:
    """``immodel sweep SWEEP.toml [--out DIR] [--workers N] [--scheduler ADDRESS]``.

    Validates the whole sweep, says how many runs are left, runs them (progress bar on a
    terminal), then prints one line per grid point (means over replications) and where
    the results are. Exit status: 0 when every run finished, 1 when some raised (their
    replay commands are printed; the rest is saved), 2 for bad input.
    """
    validate_workers(args.workers)
    sweep = load_sweep(args.sweep_file)
    out = Path(args.out) if args.out else sweep.default_out()
    status = sweep_status(sweep, out)
    points = len(sweep.points())
    print(
        f"sweep: {points} point(s) × {sweep.replications} replication(s) = {status.total} "
        f"runs; {len(status.done)} already in {out}, {len(status.todo)} to run",
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
    print(summary_table(frame, sweep.grid_keys))
    print(f"results: {out / 'results.parquet'} ({len(frame)} rows)")
    return 0

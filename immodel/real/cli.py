"""``immodel real SCENARIO [--set K=V]… [--seed N] [--out DIR [--force]] [--json]``: the
scenario on real processes and sockets (:mod:`immodel.real.orchestrator`), with the
outputs of ``immodel run``."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from immodel.scenario import Scenario


def cmd_real(args: argparse.Namespace) -> int:
    """Check the scenario, the harness's limits and ``--out`` first; then run and write."""
    from immodel.real.orchestrator import Terminated, check_supported, run_real
    from immodel.sim.cli import check_run_out, emit_result
    from immodel.sim.model import resolve_drain

    scenario = Scenario.load(args.scenario, args.overrides, seed=args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # run_real warns about a short drain, once
        check_supported(resolve_drain(scenario)[0])
    out = Path(args.out) if args.out else None
    if out is not None:
        check_run_out(out, args.force)
    try:
        result = run_real(scenario)
    except (RuntimeError, ConnectionError) as exc:
        # the harness itself failed (a server did not start, clients could not connect):
        # not the user's mistake, so status 1, but one line, and the processes are gone
        print(f"error: immodel real failed: {exc}", file=sys.stderr)
        return 1
    except Terminated as stop:
        print(
            f"error: stopped by signal {stop.signum}; every server process was killed",
            file=sys.stderr,
        )
        return 128 + stop.signum
    cpu = result.summary["cpu_s_by_process"]
    emit_result(
        result,
        out,
        args.json,
        f"immodel real {scenario['name']} (seed {scenario['seed']})",
        ["  CPU s by process: " + ", ".join(f"{k} {v:.3f}" for k, v in cpu.items())],
    )
    return 0

"""The ``immodel`` command line (also ``python -m immodel``).

Sub-commands are thin: each parses its arguments here and hands them to a function of the
layer that owns the work (``immodel.sim`` for ``run``, ``immodel.experiments`` for
``sweep``/``plot``/``demo``, ``immodel.analysis.checker`` for ``check``). A
:class:`~immodel.errors.UserError` anywhere becomes exit status 2 with one ``error:`` line;
argparse's own usage errors also exit 2. A ``UserWarning`` (a drain shorter than the
scenario needs) is one ``warning:`` line on stderr. Output piped into a reader that stops
early (``immodel keys | head``) ends quietly with status 141, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Sequence

from immodel import __version__
from immodel.errors import UserError


def _handler(module: str, name: str):
    """Import a sub-command handler lazily so that ``immodel --help`` stays fast."""

    def call(args: argparse.Namespace) -> int:
        import importlib

        return importlib.import_module(module).__dict__[name](args)

    return call


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line (exit 2), like every other
    user error, instead of the usage text followed by the message."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="immodel",
        description="Simulate and check how a cloud IM service delivers messages.",
    )
    parser.add_argument("--version", action="version", version=f"immodel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run one scenario and print its summary")
    run.add_argument("scenario", help="a TOML file or a built-in name (see `immodel scenarios`)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set network.downlink_loss=0.05 (repeatable)",
    )
    run.add_argument("--seed", type=int, default=None, help="root seed (overrides the file)")
    run.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write summary, resolved scenario and records to a new folder (checked first)",
    )
    run.add_argument(
        "--force",
        "--overwrite",
        dest="force",
        action="store_true",
        help="--out may be the folder of an earlier run: its outputs (figures too) are removed",
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: when stderr is a terminal)",
    )
    run.set_defaults(func=_handler("immodel.sim.cli", "cmd_run"))

    # `immodel real`: the same scenario on real processes and sockets (immodel.real)
    real = sub.add_parser(
        "real", help="run one scenario on real servers and sockets on this machine"
    )
    real.add_argument("scenario", help="a TOML file or a built-in name (see `immodel scenarios`)")
    real.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key (repeatable)",
    )
    real.add_argument("--seed", type=int, default=None, help="root seed (overrides the file)")
    real.add_argument("--out", default=None, metavar="DIR", help="write the run's records here")
    real.add_argument(
        "--force", action="store_true", help="--out may be the folder of an earlier run"
    )
    real.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    real.set_defaults(func=_handler("immodel.real.cli", "cmd_real"))

    scen = sub.add_parser("scenarios", help="list the built-in scenarios")
    scen.set_defaults(func=_handler("immodel.sim.cli", "cmd_scenarios"))

    keys = sub.add_parser("keys", help="every scenario key: type, default, allowed values, meaning")
    keys.add_argument("--json", action="store_true", help="one JSON list of keys")
    keys.set_defaults(func=_handler("immodel.sim.cli", "cmd_keys"))

    columns = sub.add_parser(
        "columns", help="the data dictionary: every column of the records and of results.parquet"
    )
    columns.add_argument("--json", action="store_true", help="one JSON object of tables")
    columns.set_defaults(func=_handler("immodel.sim.cli", "cmd_columns"))

    sweep = sub.add_parser("sweep", help="run a grid of scenarios × replications (resumable)")
    sweep.add_argument(
        "sweep_files", metavar="SWEEP.toml", nargs="+", help="one or more sweep files, in turn"
    )
    sweep.add_argument(
        "--out",
        default=None,
        help="result folder (default: next to the file; one sweep file only)",
    )
    sweep.add_argument("--workers", type=int, default=None, help="local worker processes")
    sweep.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a Dask scheduler address (tcp://host:8786), or 'local' for a LocalCluster",
    )
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key at every grid point (repeatable; replaces [set], "
        "or the grid list of that key)",
    )
    sweep.add_argument(
        "--replications", type=int, default=None, metavar="N", help="runs per grid point"
    )
    sweep.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs and an estimated time, run nothing",
    )
    sweep.set_defaults(func=_handler("immodel.experiments.cli", "cmd_sweep"))

    plot = sub.add_parser("plot", help="draw the standard figures for a run or sweep folder")
    plot.add_argument("directory", metavar="DIR")
    plot.add_argument("--out", default=None, metavar="DIR", help="folder (default DIR/figures)")
    plot.add_argument(
        "--format",
        dest="formats",
        default=None,
        metavar="FORMATS",
        help="comma-separated png, svg, pdf (default png,svg)",
    )
    plot.add_argument("--slo-ms", type=float, default=None, help="draw a latency SLO line (ms)")
    plot.set_defaults(func=_handler("immodel.analysis.plots", "cmd_plot"))

    check = sub.add_parser("check", help="check a delivery trace for loss, duplicates, order")
    check.add_argument("trace", metavar="TRACE", help="CSV or parquet event log")
    check.add_argument("--json", action="store_true", help="print the report as one JSON object")
    check.set_defaults(func=_handler("immodel.analysis.checker", "cmd_check"))

    compare = sub.add_parser("compare", help="paired comparison of two sweeps of one grid")
    compare.add_argument("dir_a", metavar="DIR_A", help="the baseline sweep folder")
    compare.add_argument("dir_b", metavar="DIR_B", help="the changed sweep folder")
    compare.add_argument("--metrics", default=None, metavar="A,B", help="metrics to compare")
    compare.add_argument("--out", default=None, help="folder for the table and figure")
    compare.add_argument("--json", action="store_true", help="print the table as JSON")
    compare.set_defaults(func=_handler("immodel.analysis.compare", "cmd_compare"))

    report = sub.add_parser("report", help="one self-contained HTML page for a run or sweep")
    report.add_argument("directory", metavar="DIR")
    report.add_argument("--out", default=None, help="HTML file (default DIR/report.html)")
    report.set_defaults(func=_handler("immodel.experiments.html_report", "cmd_report"))

    demo = sub.add_parser("demo", help="the built-in transport × loss comparison")
    demo.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    demo.add_argument("--workers", type=int, default=None, help="local worker processes")
    demo.set_defaults(func=_handler("immodel.experiments.demo", "cmd_demo"))
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings meant for the user (``UserWarning``) are one ``warning:`` line."""
    if issubclass(category, UserWarning):
        print(f"warning: {message}", file=sys.stderr if file is None else file)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``immodel … | head``): stop quietly.

    Further writes (and the interpreter's final flush) go to /dev/null so that no
    ``BrokenPipeError`` traceback follows; exit status 141 (128 + SIGPIPE) as a shell
    reports a command killed by a closed pipe.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    warnings.showwarning = _show_warning
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return status
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = _default_showwarning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

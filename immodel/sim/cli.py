"""``immodel run``, ``immodel scenarios``, ``immodel keys`` and ``immodel columns``: one run
from the command line and the reference of what goes in (scenario keys) and comes out
(record and result columns)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from immodel.errors import UserError
from immodel.scenario import Scenario, builtin_scenarios, keys_reference

# The summary table: (key, label, format) in reading order.
_TABLE = (
    ("messages_sent", "messages sent", "{:d}"),
    ("deliveries_expected", "deliveries expected", "{:d}"),
    ("deliveries", "deliveries", "{:d}"),
    ("lost", "lost", "{:d}"),
    ("lost_awaiting_login", "  awaiting login", "{:d}"),
    ("lost_while_reachable", "  while reachable", "{:d}"),
    ("send_failures", "send failures", "{:d}"),
    ("duplicates", "duplicates", "{:d}"),
    ("order_violations", "order violations", "{:d}"),
    # send → first arrival, over recipients online when the message was stored (catch-up
    # after being offline is catchup_latency_*); `immodel check` summarises every first
    # delivery instead
    ("latency_mean_ms", "latency mean (ms, online recipients)", "{:.1f}"),
    ("latency_p50_ms", "latency p50 (ms, online recipients)", "{:.1f}"),
    ("latency_p95_ms", "latency p95 (ms, online recipients)", "{:.1f}"),
    ("latency_p99_ms", "latency p99 (ms, online recipients)", "{:.1f}"),
    ("latency_max_ms", "latency max (ms, online recipients)", "{:.1f}"),
    ("requests_total", "requests at the access tier", "{:d}"),
    ("requests_per_s", "requests per second", "{:.1f}"),
    ("empty_poll_fraction", "empty poll fraction", "{:.3f}"),
    ("server_utilization", "server utilization", "{:.4f}"),
    ("utilization_access", "  access tier", "{:.4f}"),
    ("utilization_logic", "  logic tier", "{:.4f}"),
    ("retransmits_uplink", "uplink retransmits", "{:d}"),
    ("retransmits_downlink", "downlink retransmits", "{:d}"),
    ("sync_pulls", "sync pulls", "{:d}"),
    ("sync_bytes", "sync bytes", "{:d}"),
    ("sim_events", "simulation events", "{:d}"),
    ("wall_s", "wall time (s)", "{:.2f}"),
)

# Live-broadcast rooms (only when the run has some): never part of the lines above.
_LIVE_TABLE = (
    ("live_messages_offered", "live messages offered", "{:d}"),
    ("live_messages_accepted", "live messages accepted", "{:d}"),
    ("live_dropped_by_priority", "  dropped by priority", ""),
    ("live_deliveries", "live viewer-deliveries", "{:d}"),
    ("live_missed", "live missed (viewer-deliveries)", "{:d}"),
    ("live_latency_p50_ms", "live latency p50 (ms)", "{:.1f}"),
    ("live_latency_p99_ms", "live latency p99 (ms)", "{:.1f}"),
)


def format_summary(summary: dict, title: str = "") -> str:
    """The summary as an aligned two-column table, then the drain that was used."""
    width = max(len(label) for _, label, _ in _TABLE)
    lines = [title] if title else []
    for key, label, fmt in _TABLE:
        value = summary.get(key)
        text = "—" if value is None else fmt.format(value)
        lines.append(f"  {label:<{width}}  {text:>12}")
    if summary.get("live_rooms"):  # live traffic: its own lines, apart from delivery's
        for key, label, fmt in _LIVE_TABLE:
            value = summary.get(key)
            if isinstance(value, dict):
                text = " ".join(f"{k} {v}" for k, v in value.items())
            else:
                text = "—" if value is None else fmt.format(value)
            lines.append(f"  {label:<{width}}  {text:>12}")
    used = summary.get("drain_s_used")
    if used is not None:
        how = "auto" if summary.get("drain_auto") else "set"
        required = summary.get("drain_s_required")
        if not summary.get("drain_auto") and required is not None:
            how += f"; required {required:g}"
        lines.append(f"  {'drain (s)':<{width}}  {used:>12g}  ({how})")
    lines += _device_lines(summary, width)
    return "\n".join(lines)


def _device_lines(summary: dict, width: int) -> list[str]:
    """Per device kind and offline push lines, only for runs that have them (several
    device kinds, or notifications that bring users back)."""
    lines = []
    kinds = summary.get("delivery_by_device") or {}
    if len(kinds) > 1:
        for kind, d in kinds.items():
            p99 = d.get("latency_p99_ms")
            p99_text = "—" if p99 is None else f"{p99:.1f}"
            label = f"{kind}: expected / lost / p99 ms"
            lines.append(
                f"  {label:<{width}}  {d['deliveries_expected']:>12d} / {d['lost']} / {p99_text}"
            )
    if summary.get("push_opens"):
        for key, label in (
            ("offline_push_sent", "offline pushes sent"),
            ("offline_push_dropped", "offline pushes dropped"),
            ("push_opens", "apps opened on a notification"),
        ):
            lines.append(f"  {label:<{width}}  {summary[key]:>12d}")
        for key, label in (
            ("read_latency_p50_ms", "read latency p50 (ms, offline users)"),
            ("read_latency_p99_ms", "read latency p99 (ms, offline users)"),
        ):
            value = summary.get(key)
            text = "—" if value is None else f"{value:.1f}"
            lines.append(f"  {label:<{width}}  {text:>12}")
    return lines


#: What ``immodel run --out --force`` removes from the folder of an earlier run, besides
#: :data:`immodel.sim.model.RUN_FILES`: what ``immodel plot`` and ``immodel report`` add.
RUN_EXTRAS = ("figures", "report.html")


def check_run_out(out: Path, force: bool) -> None:
    """Make sure a run can be written to ``out`` before simulating it.

    ``out`` must be a new or empty folder, or — with ``force`` — the folder of an earlier
    run (its outputs are removed just before the new ones are written, see
    :func:`clear_run_out`). A file, a folder of something else, or a place that cannot be
    written is a :class:`~immodel.errors.UserError`. Creates ``out``.
    """
    from immodel.sim.model import RUN_FILES

    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file, not a folder; give a folder for the run")
    if out.is_dir() and any(out.iterdir()):
        if not any((out / name).exists() for name in RUN_FILES):
            raise UserError(
                f"--out '{out}' is a folder that holds other files, not an earlier run; "
                "give a new or empty folder"
            )
        if not force:
            raise UserError(
                f"--out '{out}' holds an earlier run; give another folder, or --force to "
                "replace it (its records and figures are removed)"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".immodel-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"--out '{out}' cannot be written ({reason}); give another folder"
        ) from None


def clear_run_out(out: Path) -> None:
    """Remove the outputs of an earlier run from ``out`` (records, summary, figures)."""
    from immodel.sim.model import RUN_FILES

    for name in (*RUN_FILES, *RUN_EXTRAS):
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def cmd_run(args: argparse.Namespace) -> int:
    """``immodel run SCENARIO [--set K=V]… [--seed N] [--out DIR [--force]] [--json]``.

    The scenario and the output folder are checked before anything is simulated; a
    progress bar (simulated time, events/s, ETA) shows on stderr when it is a terminal
    and the run takes over a second.
    """
    from immodel.sim.model import run

    scenario = Scenario.load(args.scenario, args.overrides, seed=args.seed)
    out = Path(args.out) if args.out else None
    if out is not None:
        check_run_out(out, args.force)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    if show:
        from immodel.sim.progress import cli_reporter

        report, close = cli_reporter(sys.stderr)
        try:
            result = run(scenario, progress=report)
        finally:
            close()
    else:
        result = run(scenario)
    emit_result(result, out, args.json, f"immodel run {scenario['name']} (seed {scenario['seed']})")
    return 0


def emit_result(result, out: Path | None, as_json: bool, title: str, notes=()) -> None:
    """Write a run's records to ``out`` (cleared first) and print its summary: the JSON
    object, or the table under ``title`` followed by ``notes`` lines (``immodel run``
    and ``immodel real`` report a run the same way)."""
    if out is not None:
        clear_run_out(out)
        result.write(out)
    if as_json:
        print(json.dumps(result.summary))
        return
    print(format_summary(result.summary, title))
    for line in notes:
        print(line)
    if out is not None:
        print(f"records written to {out}/")


def cmd_scenarios(args: argparse.Namespace) -> int:
    """``immodel scenarios``: the built-in scenarios, one line each."""
    names = builtin_scenarios()
    width = max(len(n) for n in names)
    for name, description in names.items():
        print(f"{name:<{width}}  {description}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """``immodel keys [--json]``: every scenario key of :data:`~immodel.scenario.SCHEMA`,
    grouped by TOML table, with its type, default, allowed values and meaning."""
    rows = keys_reference()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    tables: dict[str, list[dict]] = {}
    for row in rows:
        tables.setdefault(row["table"], []).append(row)
    first = True
    for table, entries in tables.items():
        if not first:
            print()
        first = False
        print(f"[{table}]" if table else "(top level)")
        for row in entries:
            name = row["key"].rpartition(".")[2]
            default = json.dumps(row["default"], ensure_ascii=False)
            print(f"  {name}  ({row['type']}, default {default})")
            print(f"      {row['meaning']}")
            if row["allowed"]:
                print(f"      allowed: {row['allowed']}")
    return 0


def cmd_columns(args: argparse.Namespace) -> int:
    """``immodel columns [--json]``: the data dictionary of the records and of a sweep's
    ``results.parquet`` (:mod:`immodel.columns`)."""
    from immodel.columns import TABLES, columns_markdown

    if args.json:
        data = {
            name: {
                "file": table.file,
                "about": table.about,
                "columns": [c._asdict() for c in table.columns],
            }
            for name, table in TABLES.items()
        }
        print(json.dumps(data, ensure_ascii=False))
        return 0
    print(columns_markdown(), end="")
    return 0

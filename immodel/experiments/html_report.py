"""``immodel report DIR``: one self-contained HTML page for a run or a sweep folder.

The page is a single file (figures embedded as base64 PNG, no external style sheet or
script), so it can be mailed, attached to a design review or opened from a zip:

* **Run folder** (``summary.json``, from ``immodel run --out``): the delivery outcomes,
  the latency percentiles of both populations with distribution-free 95 % confidence
  intervals (:func:`immodel.analysis.stats.quantile_ci`), load and recovery numbers, the
  run figures (:func:`immodel.analysis.plots.run_figures`), the resolved scenario and
  the command that reproduces the run bit for bit.
* **Sweep folder** (``results.parquet``, from ``immodel sweep``): one row per grid
  point with the mean ± the 95 % Student-t half width over replications
  (:func:`immodel.analysis.stats.aggregate`), the sweep figures
  (:func:`immodel.analysis.plots.sweep_figures`), the resolved sweep and the command.

Both explain what the latency is over and, when deliveries arrived out of order, why
(:data:`immodel.experiments.report.ORDER_NOTE`). Numbers are computed from the folder;
nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from immodel.errors import UserError

__all__ = ["build_report", "cmd_report", "write_html_report"]

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1040px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e4e4e4; }
th { text-align: left; background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
p.note { color: #444; font-size: 0.93em; }
"""

# Run metrics in the run table: (key, label, unit, scale, decimals).
_RUN_ROWS: tuple[tuple[str, str, str, float, int], ...] = (
    ("messages_sent", "messages sent", "", 1.0, 0),
    ("deliveries_expected", "deliveries expected (message × recipient)", "", 1.0, 0),
    ("deliveries", "deliveries", "", 1.0, 0),
    ("lost", "lost (not delivered by the end of the drain)", "", 1.0, 0),
    ("duplicates", "duplicates shown", "", 1.0, 0),
    ("order_violations", "out of order on arrival", "", 1.0, 0),
    ("order_violations_1to1", "  of which 1:1", "", 1.0, 0),
    ("order_violations_group", "  of which group", "", 1.0, 0),
    ("stored_order_inversions", "stored-order inversions (display order)", "", 1.0, 0),
    ("causal_order_violations", "causal order violations (display order)", "", 1.0, 0),
    ("requests_per_s", "requests/s at the access layer (sending window)", "req/s", 1.0, 1),
    ("empty_poll_fraction", "empty polls", "%", 100.0, 1),
    ("server_utilization", "server utilization", "%", 100.0, 2),
    ("retransmits_uplink", "uplink retransmits", "", 1.0, 0),
    ("retransmits_downlink", "downlink retransmits", "", 1.0, 0),
    ("sync_pulls", "sync pulls", "", 1.0, 0),
    ("recovery_time_s", "recovery time after the fault", "s", 1.0, 1),
    ("reconnect_time_s", "reconnect time after the fault", "s", 1.0, 1),
    ("recovery_pairs", "deliveries affected by the fault", "", 1.0, 0),
)

# Sweep metrics in the sweep table (those present): (metric, header, scale, decimals).
_SWEEP_COLUMNS: tuple[tuple[str, str, float, int], ...] = (
    ("latency_p50_ms", "p50 latency (ms)", 1.0, 0),
    ("latency_p99_ms", "p99 latency (ms)", 1.0, 0),
    ("requests_per_s", "requests/s", 1.0, 1),
    ("server_utilization", "server util. (%)", 100.0, 2),
    ("lost", "lost / run", 1.0, 1),
    ("duplicates", "duplicates / run", 1.0, 1),
    ("order_violations", "out of order / run", 1.0, 1),
)


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any, decimals: int, scale: float = 1.0) -> str:
    if value is None:
        return "–"
    try:
        x = float(value) * scale
    except (TypeError, ValueError):
        return _esc(value)
    if not math.isfinite(x):
        return "–"
    return f"{x:,.{decimals}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i >= numeric_from else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure_html(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _png(fig) -> bytes:
    from immodel.analysis.plots import save_figure

    with tempfile.TemporaryDirectory() as tmp:
        png, _svg = save_figure(fig, tmp, "figure")
        return png.read_bytes()


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _page(title: str, sections: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1>" + "\n".join(sections) + "</body></html>\n"
    )


# --------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------


def _latency_table(messages: pd.DataFrame | None, summary: dict[str, Any]) -> str:
    """Percentiles with distribution-free 95 % CIs, one row per population."""
    from immodel.analysis.stats import (
        LATENCY_POPULATIONS,
        expected_pairs,
        latency_sample,
        quantile_ci,
    )

    headers = ["population", "n of expected", "p50 (ms)", "p95 (ms)", "p99 (ms)", "max (ms)"]
    rows = []
    if messages is None:
        rows.append(
            [
                _esc(LATENCY_POPULATIONS[True]),
                "–",
                *(_number(summary.get(f"latency_{q}_ms"), 1) for q in ("p50", "p95", "p99", "max")),
            ]
        )
        return _table(headers, rows)
    for online in (True, False):
        x = latency_sample(messages, online)
        cells = [
            _esc(LATENCY_POPULATIONS[online]),
            f"{x.size:,} of {expected_pairs(messages, online):,}",
        ]
        for q in (0.5, 0.95, 0.99):
            est, low, high = quantile_ci(x, q) if x.size else (math.nan,) * 3
            text = _number(est, 1)
            if math.isfinite(est):
                text += f" <small>[{_number(low, 1)}, {_number(high, 1)}]</small>"
            cells.append(text)
        cells.append(_number(float(x.max()) if x.size else None, 1))
        rows.append(cells)
    return _table(headers, rows, numeric_from=1)


def _recipient_kind_table(messages: pd.DataFrame) -> str:
    """Latency and loss per recipient client kind (hybrid runs with ``recipient_kind``)."""
    from immodel.analysis.plots import value_label
    from immodel.analysis.stats import by_recipient_kind

    split = by_recipient_kind(messages)
    kinds = [k[len("lost_") :] for k in split if k.startswith("lost_")]
    if len(kinds) < 2:
        return ""
    rows = [
        [
            _esc(value_label("transport.kind", kind)),
            _number(split[f"deliveries_expected_{kind}"], 0),
            _number(split[f"lost_{kind}"], 0),
            *(_number(split[f"latency_{q}_ms_{kind}"], 1) for q in ("p50", "p95", "p99")),
        ]
        for kind in kinds
    ]
    headers = ["recipient client", "expected", "lost", "p50 (ms)", "p95 (ms)", "p99 (ms)"]
    return (
        "<h3>By recipient client kind</h3>"
        + _table(headers, rows)
        + "<p class='note'>Latency over online recipients of each kind; expected and lost "
        "over all recipients of that kind.</p>"
    )


def _run_report(directory: Path) -> tuple[str, list[str]]:
    from immodel.analysis.plots import run_figures
    from immodel.experiments.report import LATENCY_NOTE, ORDER_NOTE

    summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    scenario_text = _read_text(directory / "scenario.toml")
    name = None
    if scenario_text:
        import tomllib

        try:
            name = tomllib.loads(scenario_text).get("name")
        except tomllib.TOMLDecodeError:
            name = None
    title = f"immodel run report: {name or directory.name}"
    messages_path = directory / "messages.parquet"
    messages = pd.read_parquet(messages_path) if messages_path.is_file() else None

    sections = []
    horizon = summary.get("horizon_s")
    window = summary.get("window_s")
    sections.append(
        "<p>One run"
        + (f" of {_number(summary.get('users'), 0)} users" if summary.get("users") else "")
        + (f", {_number(window, 0)} s of sending" if window is not None else "")
        + (f", {_number(horizon, 0)} s in all (sending + drain)" if horizon is not None else "")
        + f", from <code>{_esc(directory)}</code>.</p>"
    )
    rows = [
        [_esc(label), _number(summary[key], dec, scale) + (f" {unit}" if unit else "")]
        for key, label, unit, scale, dec in _RUN_ROWS
        if key in summary
    ]
    sections.append("<h2>Delivery, load and recovery</h2>" + _table(["metric", "value"], rows))
    sections.append(
        "<h2>Latency</h2>"
        + _latency_table(messages, summary)
        + "<p class='note'>Brackets: distribution-free 95 % confidence interval of the "
        "percentile from the order statistics (independent samples assumed, so read it as "
        "a lower bound on the uncertainty; – where the sample is too small). "
        + _esc(LATENCY_NOTE)
        + "</p>"
    )
    if messages is not None:
        sections.append(_recipient_kind_table(messages))
    if summary.get("order_violations"):
        sections.append(f"<p class='note'>{_esc(ORDER_NOTE)}</p>")
    figures = (
        run_figures(directory)
        if (messages is not None or (directory / "load.parquet").is_file())
        else []
    )
    captions = {
        "latency_ecdf": "Latency distribution (online recipients).",
        "latency_tail": "Latency tail: share of deliveries slower than x, down to p99.9.",
        "recovery": "Deliveries stored but not yet shown over time; the fault is shaded.",
        "load_timeline": "Connections, pending ACKs and server jobs over the run.",
        "load_timeline_fault": "The same, zoomed on the fault window.",
        "latency_by_recipient_kind": "Latency distribution by recipient client kind.",
    }
    if figures:
        sections.append(
            "<h2>Figures</h2>"
            + "".join(_figure_html(_png(fig), captions.get(stem, stem)) for stem, fig in figures)
        )
    if scenario_text:
        sections.append(
            "<h2>Scenario (resolved)</h2><pre>" + _esc(scenario_text.strip()) + "</pre>"
        )
    sections.append(
        "<h2>Reproduce</h2><p>The resolved scenario holds the seed, so this gives the same "
        "records bit for bit:</p><pre>"
        + _esc(
            f"immodel run {directory / 'scenario.toml'} --out NEW_FOLDER\n"
            f"immodel plot {directory}\nimmodel report {directory}"
        )
        + "</pre>"
    )
    return title, sections


# --------------------------------------------------------------------------------------
# Sweep folders
# --------------------------------------------------------------------------------------


def _sweep_table(results: pd.DataFrame, keys: list[str]) -> str:
    from immodel.analysis.plots import key_label, value_label
    from immodel.analysis.stats import aggregate

    columns = [c for c in _SWEEP_COLUMNS if c[0] in results.columns]
    by = keys or ["_all"]
    frame = results if keys else results.assign(_all="all runs")
    agg = aggregate(frame, metrics=[c[0] for c in columns], by=by)
    configs = frame[by].drop_duplicates()
    headers = [key_label(k) for k in keys] or ["configuration"]
    headers += ["n"] + [c[1] for c in columns]
    rows = []
    for _, config in configs.iterrows():
        mask = np.ones(len(agg), dtype=bool)
        for k in by:
            mask &= (agg[k] == config[k]).to_numpy()
        sub = agg[mask].set_index("metric")
        cells = [_esc(value_label(k, config[k])) for k in keys] or ["all runs"]
        cells.append(str(int(sub["n"].max())) if len(sub) else "0")
        for metric, _header, scale, dec in columns:
            if metric not in sub.index:
                cells.append("–")
                continue
            mean, half = sub.loc[metric, "mean"], sub.loc[metric, "half_width"]
            text = _number(mean, dec, scale)
            if math.isfinite(mean) and math.isfinite(half):
                text += f" ± {_number(half, dec, scale)}"
            cells.append(text)
        rows.append(cells)
    return _table(headers, rows, numeric_from=len(keys) or 1)


def _sweep_report(directory: Path) -> tuple[str, list[str]]:
    import tomllib

    from immodel.analysis.plots import sweep_figures
    from immodel.analysis.stats import grid_columns
    from immodel.experiments.report import LATENCY_NOTE, explain_order_violations

    results = pd.read_parquet(directory / "results.parquet")
    if results.empty:
        raise UserError(f"'{directory / 'results.parquet'}' has no finished runs to report")
    sweep_text = _read_text(directory / "sweep.toml")
    description = None
    if sweep_text:
        try:
            description = tomllib.loads(sweep_text).get("description")
        except tomllib.TOMLDecodeError:
            description = None
    keys = [k for k in grid_columns(results) if results[k].nunique(dropna=False) > 1]
    reps = results.groupby(grid_columns(results) or ["point"], dropna=False).size()
    title = f"immodel sweep report: {directory.name}"
    sections = []
    if description:
        sections.append(f"<p><b>{_esc(description)}</b></p>")
    sections.append(
        f"<p>{len(results):,} runs: {len(reps):,} grid points × "
        f"{reps.min()}{'' if reps.min() == reps.max() else f'–{reps.max()}'} replications "
        f"(common random numbers), from <code>{_esc(directory)}</code>.</p>"
    )
    sections.append(
        "<h2>Results</h2>"
        + _sweep_table(results, keys)
        + "<p class='note'>Cells: mean over replications ± the 95 % confidence half width "
        "(Student t, n − 1 degrees of freedom; no ± with one replication). "
        + _esc(LATENCY_NOTE)
        + "</p>"
    )
    order = explain_order_violations(results)
    if order:
        sections.append(f"<p class='note'>{_esc(order)}</p>")
    with tempfile.TemporaryDirectory() as tmp:
        pngs = [p for p in sweep_figures(results, tmp) if p.suffix == ".png"]
        figures = [(p.stem, p.read_bytes()) for p in pngs]
    if figures:
        sections.append(
            "<h2>Figures</h2>"
            + "".join(_figure_html(png, stem.replace("_", " ")) for stem, png in figures)
        )
    if sweep_text:
        sections.append("<h2>Sweep (resolved)</h2><pre>" + _esc(sweep_text.strip()) + "</pre>")
    scenario_text = _read_text(directory / "scenario.toml")
    if scenario_text:
        sections.append(
            "<h2>Base scenario (resolved, before [set] and the grid)</h2><pre>"
            + _esc(scenario_text.strip())
            + "</pre>"
        )
    sections.append(
        "<h2>Reproduce</h2><pre>"
        + _esc(
            f"immodel sweep {directory / 'sweep.toml'} --out NEW_FOLDER\n"
            f"immodel plot {directory}\nimmodel report {directory}"
        )
        + "</pre>"
    )
    return title, sections


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def _kind(directory: Path) -> str:
    if not directory.exists():
        raise UserError(f"'{directory}' does not exist (give a run or sweep result folder)")
    if not directory.is_dir():
        raise UserError(f"'{directory}' is not a folder (give a run or sweep result folder)")
    if (directory / "results.parquet").is_file():
        return "sweep"
    if (directory / "summary.json").is_file():
        return "run"
    raise UserError(
        f"'{directory}' is neither a run folder (summary.json, from `immodel run --out`) "
        "nor a sweep folder (results.parquet, from `immodel sweep`)"
    )


def build_report(directory: str | Path) -> str:
    """The HTML page (one string) for a run or sweep folder; UserError for anything else."""
    import matplotlib

    matplotlib.use("Agg")
    directory = Path(directory)
    kind = _kind(directory)
    title, sections = _sweep_report(directory) if kind == "sweep" else _run_report(directory)
    return _page(title, sections)


def write_html_report(directory: str | Path, out: str | Path | None = None) -> Path:
    """Write :func:`build_report` to ``out`` (default ``DIR/report.html``); return the path."""
    directory = Path(directory)
    path = Path(out) if out is not None else directory / "report.html"
    if path.is_dir():
        raise UserError(f"--out: '{path}' is a folder (give the HTML file to write)")
    if not path.parent.is_dir():
        raise UserError(f"--out: the folder '{path.parent}' does not exist")
    text = build_report(directory)
    path.write_text(text, encoding="utf-8")
    return path


def cmd_report(args: argparse.Namespace) -> int:
    """``immodel report DIR [--out FILE]``: write the HTML page and print its path."""
    print(write_html_report(args.directory, getattr(args, "out", None)))
    return 0

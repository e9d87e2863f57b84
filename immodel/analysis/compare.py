"""Paired comparison of two sweeps of the same grid: ``immodel compare DIR_A DIR_B``.

The design-review question "does change B beat A, and by how much?" is answered point
by point. Two sweeps of the same grid, run with the same root seed, use *common random
numbers*: replication ``r`` of a grid point draws the same workload, losses and service
times in A and in B wherever the change leaves the draws alone. The per-replication
difference ``d_r = B_r − A_r`` then cancels most of the run-to-run noise, and its
mean has a much tighter interval than the difference of two independent means.

For each grid point and metric, with ``n`` replications:

``diff``
    the mean of ``d_r`` (B − A, in the metric's unit);
``half_width``
    ``t(1 − α/2, n − 1) · s_d / √n``, the Student-t interval of the mean difference
    (:func:`immodel.analysis.stats.aggregate`), ``s_d`` the standard deviation of the
    ``d_r`` (``ddof = 1``); NaN with one replication;
``low``, ``high``
    ``diff ∓ half_width``; the change is significant at that confidence when the
    interval excludes 0;
``mean_a``, ``mean_b``
    the two means; ``change_pct`` is ``diff / mean_a`` in % (NaN when ``mean_a`` is 0).

The comparison is refused (:class:`~immodel.errors.UserError`: exit 2 and one
``error:`` line) unless both folders hold the same grid keys, the same grid points with
the same replications, and the same seed for each replication (otherwise the runs are
not paired). A metric missing in either sweep, or unknown, is refused too.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from immodel.analysis.stats import aggregate, grid_columns
from immodel.errors import UserError

__all__ = [
    "DEFAULT_METRICS",
    "cmd_compare",
    "compare_results",
    "format_comparison",
    "load_results",
    "plot_comparison",
]

#: The metrics compared when ``--metrics`` is not given (those present in both sweeps).
DEFAULT_METRICS = ("latency_p99_ms", "lost", "requests_per_s", "server_utilization")

_PAIR = ("replication", "seed")
_TABLE_COLUMNS = ("metric", "n", "mean_a", "mean_b", "diff", "half_width", "low", "high")
_TABLE_COLUMNS += ("change_pct",)


def load_results(directory: str | Path) -> pd.DataFrame:
    """A sweep folder's ``results.parquet``, or a :class:`UserError` naming what is wrong."""
    directory = Path(directory)
    if not directory.exists():
        raise UserError(f"'{directory}' does not exist (give a sweep result folder)")
    path = directory / "results.parquet"
    if not path.is_file():
        raise UserError(
            f"'{directory}' has no results.parquet (give a sweep folder from `immodel sweep`)"
        )
    results = pd.read_parquet(path)
    if results.empty:
        raise UserError(f"'{path}' has no finished runs to compare")
    return results


def _grid(results: pd.DataFrame, name: str) -> list[str]:
    if not {"point", *_PAIR} <= set(results.columns):
        raise UserError(f"{name} is not a sweep's results (no point/replication/seed columns)")
    return grid_columns(results)


def _describe(row: tuple) -> str:
    return ", ".join(f"{v}" for v in row)


def compare_results(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
    names: tuple[str, str] = ("A", "B"),
) -> pd.DataFrame:
    """Paired differences B − A per grid point and metric (see the module docstring).

    ``a`` and ``b`` are two sweeps' results frames (one row per grid point ×
    replication). Returns one row per grid point × metric: the grid keys, ``metric``,
    ``n``, ``mean_a``, ``mean_b``, ``diff``, ``half_width``, ``low``, ``high``,
    ``change_pct``. Raises :class:`UserError` when the sweeps are not paired.
    """
    grid_a, grid_b = _grid(a, names[0]), _grid(b, names[1])
    if grid_a != grid_b:
        raise UserError(
            f"the sweeps vary different grid keys: {names[0]} {grid_a or 'none'}, "
            f"{names[1]} {grid_b or 'none'} (compare two sweeps of the same grid)"
        )
    keys = grid_a
    index = [*keys, "replication"]
    for frame, name in ((a, names[0]), (b, names[1])):
        if frame.duplicated(index).any():
            raise UserError(f"{name} has a replication twice at one grid point")
    left = a.set_index(index).sort_index()
    right = b.set_index(index).sort_index()
    only_a = left.index.difference(right.index)
    only_b = right.index.difference(left.index)
    if len(only_a) or len(only_b):
        which, extra = (names[0], only_a[0]) if len(only_a) else (names[1], only_b[0])
        raise UserError(
            f"the grids or replications do not match: only {which} has run "
            f"({_describe(extra if isinstance(extra, tuple) else (extra,))}) "
            f"({len(only_a)} runs only in {names[0]}, {len(only_b)} only in {names[1]})"
        )
    right = right.loc[left.index]
    seeds_differ = left["seed"].to_numpy() != right["seed"].to_numpy()
    if seeds_differ.any():
        i = int(np.argmax(seeds_differ))
        first = left.index[i]
        run = _describe(first if isinstance(first, tuple) else (first,))
        raise UserError(
            f"the replications do not match: run ({run}) has seed {left['seed'].iloc[i]} in "
            f"{names[0]} and {right['seed'].iloc[i]} in {names[1]} (a paired comparison "
            "needs common random numbers: run both sweeps with the same seed)"
        )
    wanted = list(metrics) if metrics else [m for m in DEFAULT_METRICS if m in a and m in b]
    if not wanted:
        raise UserError(
            f"none of the default metrics ({', '.join(DEFAULT_METRICS)}) is in both sweeps; "
            "choose some with --metrics"
        )
    for m in wanted:
        if m not in a.columns or m not in b.columns or m in (*keys, "point", *_PAIR):
            common = sorted(
                c
                for c in set(a.columns) & set(b.columns)
                if c not in (*keys, "point", *_PAIR) and pd.api.types.is_numeric_dtype(a[c])
            )
            raise UserError(
                f"--metrics: '{m}' is not a metric of both sweeps (allowed: {', '.join(common)})"
            )
    va = left[wanted].apply(pd.to_numeric, errors="coerce").astype(float)
    vb = right[wanted].apply(pd.to_numeric, errors="coerce").astype(float)
    diffs = (vb - va).reset_index()
    by = keys or ["_all"]
    if not keys:
        diffs["_all"] = "all runs"
    agg = aggregate(diffs, metrics=wanted, by=by, confidence=confidence)
    mean_a = _means(va.reset_index(), wanted, keys)
    mean_b = _means(vb.reset_index(), wanted, keys)
    out = agg.rename(columns={"mean": "diff"}).drop(columns=["std"])
    out["mean_a"] = mean_a.to_numpy()
    out["mean_b"] = mean_b.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = out["diff"].to_numpy(float) / out["mean_a"].to_numpy(float) * 100.0
    out["change_pct"] = np.where(out["mean_a"].to_numpy(float) != 0, pct, np.nan)
    cols = [*by, "metric", "n", "mean_a", "mean_b", "diff", "half_width", "low", "high"]
    return out[[*cols, "change_pct"]].drop(columns=["_all"], errors="ignore")


def _means(frame: pd.DataFrame, metrics: list[str], keys: list[str]) -> pd.Series:
    """Mean per grid point and metric, in the row order of :func:`aggregate`'s output."""
    if not keys:
        frame = frame.assign(_all="all runs")
    agg = aggregate(frame, metrics=metrics, by=keys or ["_all"])
    return agg["mean"]


def _verdict(row: pd.Series) -> str:
    low, high = row["low"], row["high"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a (1 replication)" if row["n"] < 2 else "n/a"
    if low > 0:
        return "B higher"
    if high < 0:
        return "B lower"
    return "no significant difference"


def _num(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value != 0 and abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def format_comparison(table: pd.DataFrame, confidence: float = 0.95) -> str:
    """The comparison as an aligned text table, one line per grid point × metric."""
    from immodel.analysis.plots import key_label, value_label

    keys = [c for c in table.columns if c not in _TABLE_COLUMNS]
    headers = [
        *(key_label(k) for k in keys),
        "metric",
        "n",
        "A",
        "B",
        f"B − A ± {confidence:.0%} CI",
        "change",
        "verdict",
    ]
    rows = []
    for _, row in table.iterrows():
        pm = f" ± {_num(row['half_width'])}" if math.isfinite(row["half_width"]) else ""
        change = f"{row['change_pct']:+.1f} %" if math.isfinite(row["change_pct"]) else "–"
        rows.append(
            [
                *(value_label(k, row[k]) for k in keys),
                row["metric"],
                str(int(row["n"])),
                _num(row["mean_a"]),
                _num(row["mean_b"]),
                f"{_num(row['diff'])}{pm}",
                change,
                _verdict(row),
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    nk = len(keys) + 1

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < nk or i == len(cells) - 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def plot_comparison(
    table: pd.DataFrame,
    *,
    names: tuple[str, str] = ("A", "B"),
    confidence: float = 0.95,
    title: str | None = None,
) -> Figure:
    """The paired differences B − A with their CIs: one panel per metric, one row per point.

    A forest plot: each grid point is a horizontal error bar around its mean difference,
    a vertical line marks 0; filled markers are differences whose interval excludes 0.
    """
    from immodel.analysis.plots import (
        _footnote,
        _metric_factor,
        metric_label,
        style,
        value_label,
    )

    keys = [c for c in table.columns if c not in _TABLE_COLUMNS]
    metrics = list(dict.fromkeys(table["metric"]))
    with style():
        first = table[table["metric"] == metrics[0]]
        labels = [
            ", ".join(value_label(k, row[k]) for k in keys) or "all runs"
            for _, row in first.iterrows()
        ]
        height = min(10.0, max(3.0, 1.4 + 0.3 * len(labels)))
        width = min(16.0, 1.5 + 3.2 * len(metrics) + 0.06 * max(len(s) for s in labels))
        fig = Figure(figsize=(width, height))
        axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        ys = np.arange(len(labels))
        for ax, metric in zip(axes, metrics, strict=True):
            sub = table[table["metric"] == metric]
            factor = _metric_factor(metric)  # e.g. a fraction drawn in %
            diff = sub["diff"].to_numpy(float) * factor
            half = sub["half_width"].to_numpy(float) * factor
            sig = (sub["low"].to_numpy(float) > 0) | (sub["high"].to_numpy(float) < 0)
            ax.axvline(0.0, color="#555555", linewidth=1.0)
            ax.errorbar(
                diff,
                ys,
                xerr=np.where(np.isfinite(half), half, 0.0),
                fmt="none",
                ecolor="#0072B2",
                elinewidth=1.2,
            )
            for mask, face in ((sig, "#0072B2"), (~sig, "white")):
                if mask.any():
                    ax.plot(
                        diff[mask],
                        ys[mask],
                        linestyle="none",
                        marker="o",
                        color="#0072B2",
                        markerfacecolor=face,
                    )
            label = metric_label(metric)
            unit = re.search(r"\(([^)]*)\)$", label)
            ax.set_title(label.split(" (")[0], fontsize=10.5)
            ax.set_xlabel(f"B − A ({unit[1]})" if unit else "B − A")
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(ys, labels)
        axes[0].set_ylim(len(labels) - 0.5, -0.5)
        fig.suptitle(title or f"{names[1]} vs {names[0]}: paired differences per grid point")
        n = sorted({int(v) for v in table["n"]})
        runs = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
        _footnote(
            fig,
            f"B − A per replication (common random numbers), mean of {runs}; bars: "
            f"{confidence:.0%} paired t interval; filled: interval excludes 0",
        )
    return fig


def cmd_compare(args: argparse.Namespace) -> int:
    """``immodel compare DIR_A DIR_B [--metrics a,b] [--out DIR] [--json]``.

    Prints the paired comparison table (or JSON records) and writes the differences
    figure (PNG + SVG) and ``comparison.csv`` to ``--out`` (default
    ``compare-<A>-vs-<B>``). Mismatched sweeps or an unknown metric exit 2.
    """
    import matplotlib

    from immodel.analysis.plots import save_figure

    matplotlib.use("Agg")
    metrics = None
    if getattr(args, "metrics", None):
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        if not metrics:
            raise UserError("--metrics: give metric names separated by commas")
    dir_a, dir_b = Path(args.dir_a), Path(args.dir_b)
    a, b = load_results(dir_a), load_results(dir_b)
    names = (dir_a.name or str(dir_a), dir_b.name or str(dir_b))
    out = Path(getattr(args, "out", None) or f"compare-{names[0]}-vs-{names[1]}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: '{out}' exists and is not a folder")
    table = compare_results(a, b, metrics, names=names)
    if getattr(args, "json", False):
        print(json.dumps(json.loads(table.to_json(orient="records")), indent=2))
    else:
        print(f"A = {dir_a}\nB = {dir_b}")
        print(format_comparison(table))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "comparison.csv", index=False)
    files = save_figure(plot_comparison(table, names=names), out, "comparison")
    if not getattr(args, "json", False):
        print(f"\ntable: {out / 'comparison.csv'}\nfigure: {files[0]} (also SVG)")
    return 0

"""The standard design-review figures, and ``immodel plot DIR``.

Every figure comes from a DataFrame with the documented columns, so it can be drawn from
a sweep's ``results.parquet`` (one row per grid point × replication), from a run's
``messages``/``load`` records, or from a frame assembled by hand:

=============================  ===========================================================
:func:`plot_latency`           latency p50/p99 vs a numeric grid key (loss rate…), one
                               colour per strategy, bands = confidence interval
:func:`plot_requests`          requests/s at the access layer vs users (or any key)
:func:`plot_empty_polls`       share of polls that returned nothing
:func:`plot_metric`            any metric vs any numeric key (the building block above)
:func:`plot_outcomes`          lost / duplicate / out-of-order deliveries per mechanism
                               set (bars, one panel per outcome)
:func:`plot_latency_ecdf`      latency distribution of one run (or several, overlaid),
                               its population and n of the expected pairs in the legend
:func:`plot_latency_tail`      the tail: log complementary CDF down to p99.9
:func:`plot_by_recipient_kind` latency ECDF split by the recipient's client kind
:func:`plot_load_timeline`     connections, pending ACKs and queued jobs over time, with
                               the fault window shaded (``window_s`` zooms on it)
:func:`plot_recovery`          backlog of stored-but-not-shown deliveries around a fault,
                               the recovery time marked
:func:`plot_cost_frontier`     p99 latency vs requests/s, one point per configuration,
                               Pareto-optimal ones among the loss-free configurations
                               marked, lossy ones drawn apart
=============================  ===========================================================

Latency figures take ``slo_ms`` (a dashed SLO line; ``immodel plot --slo-ms``).

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot (no
display, no global figure registry; it shows inline in a notebook) and accepts ``ax=`` to
draw into an existing axes where that makes sense. :func:`save_figure` writes it as PNG
(150 dpi) and SVG. One style applies to all of them: :data:`STYLE` (rcParams) and the
colour/marker of each strategy (:data:`SERIES_STYLE`); change them there.

Means over replications and their intervals come from
:func:`immodel.analysis.stats.aggregate` (Student t, 95 % by default); a configuration
run once is drawn without a band.

``immodel plot DIR`` (:func:`cmd_plot`) draws the run figures (:func:`run_figures`) for a
run folder (``summary.json``) or whichever sweep figures the grid allows for a sweep folder
(``results.parquet``): the x axis is the numeric grid key, one series per value of the
categorical one, one set of files per value of any further key. Files go to
``DIR/figures/``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import re
import textwrap
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from immodel.analysis.stats import (
    LATENCY_POPULATIONS,
    aggregate,
    expected_pairs,
    grid_columns,
    latency_sample,
)

__all__ = [
    "OUTCOMES",
    "SERIES_STYLE",
    "STYLE",
    "cmd_plot",
    "declutter_labels",
    "fault_window",
    "figure_formats",
    "key_label",
    "metric_label",
    "pareto_optimal",
    "plot_by_recipient_kind",
    "plot_cost_frontier",
    "plot_empty_polls",
    "plot_latency",
    "plot_latency_ecdf",
    "plot_latency_tail",
    "plot_load_timeline",
    "plot_metric",
    "plot_outcomes",
    "plot_recovery",
    "plot_requests",
    "plot_run_folder",
    "plot_sweep_folder",
    "run_figures",
    "save_figure",
    "style",
    "sweep_figures",
    "use_style",
    "value_label",
]

# --------------------------------------------------------------------------------------
# The one style
# --------------------------------------------------------------------------------------

#: rcParams of every figure: 6.4 × 4 in, fonts legible when the PNG is pasted at full
#: column width, light grid, no top/right spines, colour-blind-safe colours.
STYLE: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "savefig.dpi": 150,
    "font.family": "DejaVu Sans",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "figure.titlesize": 12,
    "figure.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9.5,
    "legend.title_fontsize": 9.5,
    "legend.frameon": True,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "none",
    "legend.facecolor": "white",
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.alpha": 0.35,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5.5,
    "errorbar.capsize": 3,
    "svg.hashsalt": "immodel",  # stable SVG ids: re-running gives the same files
    "axes.prop_cycle": matplotlib.cycler(
        color=["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
    ),
}

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies and in
# greyscale thanks to the markers.
# Then Paul Tol's muted colours for figures with more series than that.
_PALETTE = [
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#882255",
    "#999933",
    "#332288",
    "#44AA99",
    "#AA4499",
]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p"]

#: Fixed colour and marker of the strategies that appear in most figures, so that
#: "push" is the same blue in every figure of a review.
SERIES_STYLE: dict[Any, dict[str, str]] = {
    "short_poll": {"color": "#D55E00", "marker": "s"},
    "long_poll": {"color": "#E69F00", "marker": "v"},
    "push": {"color": "#0072B2", "marker": "o"},
    "hybrid": {"color": "#009E73", "marker": "^"},
    "write": {"color": "#0072B2", "marker": "o"},
    "read": {"color": "#D55E00", "marker": "s"},
}

#: The delivery outcomes of the summary: lost, duplicate and out-of-order deliveries.
OUTCOMES = ("lost", "duplicates", "order_violations")

# "Out of order" is arrival order at the app (see the checker): 1:1 copies are shown on
# arrival, so loss leaves some even with every mechanism on. The panel says so.
_OUTCOME_TITLES = {
    "lost": "lost",
    "duplicates": "duplicates",
    "order_violations": "out of order\n(arrival at the app)",
}
_OUTCOMES_TITLE = "Delivery outcomes per run"
_FAULT_COLOR = "#C0392B"
_LOSSY_COLOR = "#666666"
# messages columns that describe how a pair was delivered (absent for a lost pair).
_DELIVERY_PROPERTIES = ("first_via",)
_BAND_ALPHA = 0.18
_NOTE_COLOR = "#555555"


def style():
    """A context manager that applies :data:`STYLE` (``matplotlib.rc_context``)."""
    return matplotlib.rc_context(STYLE)


def use_style() -> None:
    """Apply :data:`STYLE` globally (``matplotlib.rcParams``), for code that draws with
    pyplot itself, e.g. a notebook's own figures, so they look like immodel's."""
    matplotlib.rcParams.update(STYLE)


def _styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style():
            return fn(*args, **kwargs)

    return wrapper


def _new_figure(ax: Axes | None, figsize: tuple[float, float] | None = None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize or STYLE["figure.figsize"])
    return fig, fig.add_subplot()


def _legend(ax: Axes, own: bool, handles=None, labels=None, title: str | None = None) -> None:
    """The series legend: right of the axes on a figure of ours, so it never hides data;
    inside (best place) when drawing into the caller's axes."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    title = _wrap(title, 16) if title else None
    if own:
        ax.figure.legend(handles, labels, title=title, loc="outside right center")
    else:
        ax.legend(handles, labels, title=title)


def _title(ax: Axes, own: bool, text: str) -> None:
    """Centred over the whole figure (axes and outside legend) on a figure of ours."""
    if own:
        ax.figure.suptitle(text)
    else:
        ax.set_title(text)


def _series_style(value: Any, index: int) -> dict[str, str]:
    known = SERIES_STYLE.get(value) if isinstance(value, str) else None
    if known:
        return dict(known)
    return {"color": _PALETTE[index % len(_PALETTE)], "marker": _MARKERS[index % len(_MARKERS)]}


def _series_styles(values: Sequence[Any]) -> dict[Any, dict[str, str]]:
    """Colours/markers for a list of series values: known ones fixed, the rest distinct."""
    taken = {SERIES_STYLE[v]["color"] for v in values if isinstance(v, str) and v in SERIES_STYLE}
    free = [(c, m) for c, m in zip(_PALETTE, _MARKERS, strict=True) if c not in taken]
    free = free or list(zip(_PALETTE, _MARKERS, strict=True))
    out, i = {}, 0
    for v in values:
        if isinstance(v, str) and v in SERIES_STYLE:
            out[v] = dict(SERIES_STYLE[v])
        else:
            color, marker = free[i % len(free)]
            out[v] = {"color": color, "marker": marker}
            i += 1
    return out


def _footnote(fig: Figure, text: str) -> None:
    """A small grey note under the axes (sample sizes, what the bands mean)."""
    if not text:
        return
    # supxlabel, unlike fig.text, gets its own room from the constrained layout.
    fig.supxlabel(text, x=0.01, ha="left", fontsize=8, color=_NOTE_COLOR)


#: File formats ``immodel plot --format`` accepts (the first one is the default pair).
FIGURE_FORMATS = ("png", "svg", "pdf")
_FORMATS: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "figure_formats", default=("png", "svg")
)
# Metadata that would put a timestamp or version into a file, per format.
_NO_STAMP = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
_NO_STAMP["pdf"] = {"CreationDate": None, "Creator": None, "Producer": None}


@contextlib.contextmanager
def figure_formats(formats: Sequence[str]) -> Iterator[None]:
    """Within the block, :func:`save_figure` writes ``formats`` (from
    :data:`FIGURE_FORMATS`) instead of PNG + SVG (``immodel plot --format``)."""
    token = _FORMATS.set(tuple(formats))
    try:
        yield
    finally:
        _FORMATS.reset(token)


def save_figure(fig: Figure, directory: str | Path, name: str) -> list[Path]:
    """Write ``fig`` as ``directory/name.png`` (150 dpi) and ``directory/name.svg``
    (or the formats of an enclosing :func:`figure_formats`).

    Creates ``directory``. Returns the paths. The files carry no timestamp, so
    re-drawing the same data gives the same SVG.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.{fmt}" for fmt in _FORMATS.get()]
    engine = fig.get_layout_engine()
    with style():
        for i, path in enumerate(paths):
            fmt = path.suffix[1:]
            dpi = STYLE["savefig.dpi"] if fmt == "png" else "figure"
            fig.savefig(path, dpi=dpi, metadata=_NO_STAMP.get(fmt))
            # The layout is done: reuse it for the next format instead of solving it
            # again (the constrained layout is most of the time a figure takes to write).
            if i == 0:
                fig.set_layout_engine("none")
        fig.set_layout_engine(engine)
    return paths


# --------------------------------------------------------------------------------------
# Labels with units
# --------------------------------------------------------------------------------------

# Known scenario keys: (label, unit, factor applied to the values before drawing).
_KEY_LABELS: dict[str, tuple[str, str, float]] = {
    "network.downlink_loss": ("downlink packet loss", "%", 100.0),
    "network.uplink_loss": ("uplink packet loss", "%", 100.0),
    "workload.users": ("users", "", 1.0),
    "workload.group_size": ("group size", "members", 1.0),
    "workload.group_share": ("group traffic", "% of messages", 100.0),
    "workload.send_rate_per_user": ("send rate per user", "messages/s", 1.0),
    "transport.poll_interval_s": ("short-poll interval", "s", 1.0),
    "transport.long_poll_hold_s": ("long-poll hold", "s", 1.0),
    "transport.heartbeat_s": ("heartbeat period", "s", 1.0),
    "transport.web_share": ("web clients on long polling", "%", 100.0),
    "transport.kind": ("transport", "", 1.0),
    "reliability.ack_timeout_s": ("ACK timeout", "s", 1.0),
    "reliability.sync": ("timestamp/seq sync", "", 1.0),
    "server.diffusion": ("group storage", "", 1.0),
    "server.nodes": ("server nodes", "", 1.0),
}

_METRIC_LABELS: dict[str, tuple[str, str, float]] = {
    "requests_per_s": ("requests/s at the access layer", "req/s", 1.0),
    "requests_total": ("requests at the access layer", "count", 1.0),
    "empty_poll_fraction": ("empty polls", "% of polls", 100.0),
    "server_utilization": ("server utilization", "%", 100.0),
    "server_utilization_max_stage": ("busiest stage utilization", "%", 100.0),
    "lost": ("lost deliveries", "count", 1.0),
    "duplicates": ("duplicate deliveries", "count", 1.0),
    "order_violations": ("order violations", "count", 1.0),
    "send_failures": ("send failures", "count", 1.0),
    "retransmits_uplink": ("uplink retransmits", "count", 1.0),
    "retransmits_downlink": ("downlink retransmits", "count", 1.0),
    "sync_pulls": ("sync pulls", "count", 1.0),
    "delivery_ratio": ("delivered", "% of expected", 100.0),
}

_VALUE_LABELS: dict[Any, str] = {
    "short_poll": "short polling",
    "long_poll": "long polling",
    "push": "push",
    "hybrid": "hybrid",
    "write": "write diffusion",
    "read": "read diffusion",
}

_FRACTION_SUFFIXES = ("_loss", "_fraction", "_share", "_prob")


def _unit_of(name: str) -> tuple[str, str, float]:
    short = name.rsplit(".", 1)[-1]
    if short.endswith("_ms"):
        return short[:-3].replace("_", " "), "ms", 1.0
    if short.endswith("_s") and not short.endswith("_per_s"):
        return short[:-2].replace("_", " "), "s", 1.0
    if short.endswith("_per_s"):
        return short[:-6].replace("_", " ") + " per second", "1/s", 1.0
    if short.endswith(_FRACTION_SUFFIXES):
        return short.replace("_", " "), "%", 100.0
    return short.replace("_", " "), "", 1.0


def _label(text: str, unit: str) -> str:
    return f"{text} ({unit})" if unit else text


def key_label(key: str) -> str:
    """Axis label of a scenario key, with its unit: ``"downlink packet loss (%)"``."""
    text, unit, _ = _KEY_LABELS.get(key) or _unit_of(key)
    return _label(text, unit)


def _key_factor(key: str) -> float:
    return (_KEY_LABELS.get(key) or _unit_of(key))[2]


def metric_label(metric: str) -> str:
    """Axis label of a summary metric, with its unit: ``"p99 latency (ms)"``."""
    m = re.fullmatch(r"(catchup_)?latency_(mean|p\d+|max)_ms", metric)
    if m:
        what = "catch-up latency" if m[1] else "latency"
        return f"{m[2]} {what} (ms)"
    text, unit, _ = _METRIC_LABELS.get(metric) or _stage_metric(metric) or _unit_of(metric)
    return _label(text, unit)


# Per-stage queueing metrics of the summary: name pattern → (label, unit, factor).
_STAGE_METRICS = (
    (r"utilization_(\w+)", "{} stage utilization", "%", 100.0),
    (r"wait_mean_ms_(\w+)", "mean wait in the {} queue", "ms", 1.0),
    (r"queue_mean_(\w+)", "mean {} queue length", "jobs", 1.0),
    (r"arrival_rate_(\w+)", "{} stage arrivals", "jobs/s", 1.0),
)


def _stage_metric(metric: str) -> tuple[str, str, float] | None:
    for pattern, text, unit, factor in _STAGE_METRICS:
        m = re.fullmatch(pattern, metric)
        if m:
            return text.format(m[1].replace("_", " ")), unit, factor
    return None


def _metric_factor(metric: str) -> float:
    if metric.startswith(("latency_", "catchup_latency_")):
        return 1.0
    return (_METRIC_LABELS.get(metric) or _stage_metric(metric) or _unit_of(metric))[2]


def value_label(key: str | None, value: Any) -> str:
    """How a grid value reads in a legend: ``"short polling"``, ``"sync on"``, ``"10 %"``."""
    if isinstance(value, bool | np.bool_):
        name = (_KEY_LABELS.get(key) or _unit_of(key))[0] if key else "on"
        return f"{name} {'on' if value else 'off'}" if key else ("on" if value else "off")
    if isinstance(value, str):
        return _VALUE_LABELS.get(value, value)
    if isinstance(value, int | float | np.number) and key:
        factor = _key_factor(key)
        unit = (_KEY_LABELS.get(key) or _unit_of(key))[1]
        shown = f"{float(value) * factor:,g}"
        return f"{shown} {unit}".strip() if unit in ("%", "s", "ms") else shown
    return str(value)


def _ms_formatter() -> FuncFormatter:
    """Tick labels for a latency axis in ms: 80 ms, 500 ms, 2 s, 30 s."""

    def fmt(v: float, _pos: int) -> str:
        if v <= 0 or not math.isfinite(v):
            return ""
        if v >= 1000:
            return f"{v / 1000:g} s"
        return f"{v:g} ms"

    return FuncFormatter(fmt)


def _plain_formatter() -> FuncFormatter:
    """Tick labels for a log axis of counts or rates: 30, 100, 3,000 (not 10³)."""

    def fmt(v: float, _pos: int) -> str:
        if v <= 0 or not math.isfinite(v):
            return ""
        return f"{v:,.0f}" if v >= 1 else f"{v:g}"

    return FuncFormatter(fmt)


def _log_axis(ax: Axes, axis: str = "y", latency: bool = False) -> None:
    """Log scale with readable ticks (ms/s for latency, plain numbers otherwise).

    Call after drawing: the tick spacing follows the range.
    """
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    # 1-2-5 ticks collide ("100 ms200 ms") beyond a couple of decades; 1-3 do not.
    subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0, 3.0) if decades <= 4.5 else (1.0,)
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(_ms_formatter() if latency else _plain_formatter())
    target.set_minor_formatter(NullFormatter())


def _log_latency_axis(ax: Axes, axis: str = "y") -> None:
    _log_axis(ax, axis, latency=True)


# --------------------------------------------------------------------------------------
# Sweep figures
# --------------------------------------------------------------------------------------


def _is_aggregated(frame: pd.DataFrame) -> bool:
    return {"metric", "mean", "low", "high", "n"} <= set(frame.columns)


def _agg(
    results: pd.DataFrame, metrics: Sequence[str], keys: Sequence[str], confidence: float
) -> pd.DataFrame:
    if _is_aggregated(results):
        return results[results["metric"].isin(metrics)]
    return aggregate(results, metrics=list(metrics), by=list(keys), confidence=confidence)


def _ordered_unique(values: Iterable[Any]) -> list[Any]:
    seen, out = set(), []
    for v in values:
        token = ("nan",) if isinstance(v, float) and math.isnan(v) else v
        if token not in seen:
            seen.add(token)
            out.append(v)
    return out


def _band_note(agg: pd.DataFrame, confidence: float) -> str:
    ns = sorted({int(n) for n in agg["n"] if n > 0})
    if not ns:
        return ""
    runs = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    if ns[-1] < 2:
        return f"one run per point ({runs} replication): no confidence band"
    return f"mean of {runs} replications per point; bands/bars: {confidence:.0%} CI (Student t)"


def _population_note(metric: str) -> str:
    """ " · latency over online recipients" for a latency metric, else nothing."""
    if metric.startswith("catchup_latency_"):
        return " · catch-up latency: recipients offline when the message was stored"
    if metric.startswith("latency_"):
        return " · latency over online recipients"
    return ""


def _grid_ticks(ax: Axes, values: np.ndarray, key: str) -> None:
    """Ticks at the grid's own x values when there are few of them (they are the data)."""
    values = np.unique(values[np.isfinite(values)]) * _key_factor(key)
    if 2 <= values.size <= 9:
        ax.set_xticks(values, [f"{v:,g}" for v in values])
        ax.xaxis.set_minor_formatter(NullFormatter())


def _use_log_x(x: np.ndarray) -> bool:
    x = x[np.isfinite(x)]
    return x.size >= 3 and (x > 0).all() and x.max() / x.min() >= 30


def _draw_lines(
    ax: Axes,
    agg: pd.DataFrame,
    metric: str,
    x: str,
    series: str | None,
    styles: dict[Any, dict[str, str]],
    *,
    linestyle: str = "-",
    hollow: bool = False,
    label_series: bool = True,
) -> None:
    data = agg[agg["metric"] == metric]
    groups = [(None, data)] if series is None else list(data.groupby(series, sort=False))
    xf, yf = _key_factor(x), _metric_factor(metric)
    for value, frame in groups:
        frame = frame.sort_values(x)
        xs = frame[x].to_numpy(float) * xf
        ys = frame["mean"].to_numpy(float) * yf
        if np.isnan(ys).all():
            continue
        st = styles.get(value, {"color": _PALETTE[0], "marker": _MARKERS[0]})
        label = value_label(series, value) if (label_series and series) else None
        ax.plot(
            xs,
            ys,
            linestyle=linestyle,
            color=st["color"],
            marker=st["marker"],
            markerfacecolor="white" if hollow else st["color"],
            label=label,
        )
        lo = frame["low"].to_numpy(float) * yf
        hi = frame["high"].to_numpy(float) * yf
        if np.isfinite(lo).any():
            ax.fill_between(xs, lo, hi, color=st["color"], alpha=_BAND_ALPHA, linewidth=0)


@_styled
def plot_metric(
    results: pd.DataFrame,
    metric: str,
    x: str,
    series: str | None = None,
    *,
    ax: Axes | None = None,
    log_y: bool = False,
    log_x: bool | None = None,
    title: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """One metric (mean over replications, CI band) vs a numeric grid key, per series.

    ``results``: a sweep's results frame (or the output of
    :func:`~immodel.analysis.stats.aggregate`). ``x``: the numeric column for the x axis
    (e.g. ``"network.downlink_loss"``, drawn in %); ``series``: the column whose values
    get one line each (e.g. ``"transport.kind"``). Latency metrics use a log axis with
    ms/s ticks. ``log_x`` defaults to a log axis when x spans ≥ 30×.
    """
    keys = [x] + ([series] if series else [])
    agg = _agg(results, [metric], keys, confidence)
    own = ax is None
    fig, ax = _new_figure(ax)
    values = _ordered_unique(agg[series]) if series else [None]
    styles = _series_styles(values)
    _draw_lines(ax, agg, metric, x, series, styles)
    xs = agg[x].to_numpy(float)
    if log_x if log_x is not None else _use_log_x(xs):
        _log_axis(ax, "x")
    _grid_ticks(ax, xs, x)
    if metric.startswith(("latency_", "catchup_latency_")):
        _log_latency_axis(ax)
        ax.set_ylabel(metric_label(metric).replace(" (ms)", ""))
    else:
        if log_y:
            _log_axis(ax, "y")
        else:
            ax.set_ylim(bottom=0)
        ax.set_ylabel(metric_label(metric))
    ax.set_xlabel(key_label(x))
    _title(ax, own, title or f"{metric_label(metric).split(' (')[0].capitalize()} vs {_short(x)}")
    if series:
        _legend(ax, own, title=key_label(series))
    _footnote(fig, _band_note(agg, confidence) + _population_note(metric))
    return fig


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _short(key: str) -> str:
    return key_label(key).split(" (")[0]


@_styled
def plot_latency(
    results: pd.DataFrame,
    x: str = "network.downlink_loss",
    series: str | None = "transport.kind",
    *,
    percentiles: Sequence[str] = ("p50", "p99"),
    slo_ms: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Latency percentiles (send → recipient's app, ms) vs ``x``, one colour per series.

    Over recipients online when the message was stored (the summary's ``latency_*_ms``).
    ``slo_ms`` draws a horizontal SLO line.

    The last of ``percentiles`` is drawn solid, the others dashed/dotted with hollow
    markers; the y axis is logarithmic with ms/s ticks because polling and retransmits
    put p99 orders of magnitude above p50. Bands are the CI of the mean over
    replications of each run's percentile.
    """
    metrics = [f"latency_{p}_ms" for p in percentiles]
    keys = [x] + ([series] if series else [])
    agg = _agg(results, metrics, keys, confidence)
    own = ax is None
    fig, ax = _new_figure(ax)
    values = _ordered_unique(agg[series]) if series else [None]
    styles = _series_styles(values)
    dashes = ["--", ":", "-."]
    line_styles = {m: dashes[i % len(dashes)] for i, m in enumerate(metrics[:-1])}
    line_styles[metrics[-1]] = "-"
    for m in metrics:
        solid = line_styles[m] == "-"
        _draw_lines(
            ax,
            agg,
            m,
            x,
            series,
            styles,
            linestyle=line_styles[m],
            hollow=not solid,
            label_series=solid,
        )
    if _use_log_x(agg[x].to_numpy(float)):
        _log_axis(ax, "x")
    _grid_ticks(ax, agg[x].to_numpy(float), x)
    _log_latency_axis(ax)
    ax.set_xlabel(key_label(x))
    _slo_line(ax, slo_ms, "y")
    ax.set_ylabel("latency, send → app (log scale)")
    _title(ax, own, title or f"Delivery latency vs {_short(x)}")
    handles, labels = ax.get_legend_handles_labels()
    for m in reversed(metrics):
        handles.append(Line2D([], [], color="#444444", linestyle=line_styles[m]))
        labels.append(m.split("_")[1])
    slo = [i for i, lab in enumerate(labels) if lab.startswith("SLO ")]
    for i in slo:  # the SLO last, after the percentile keys
        handles.append(handles.pop(i))
        labels.append(labels.pop(i))
    _legend(ax, own, handles, labels, title=key_label(series) if series else None)
    _footnote(fig, _band_note(agg, confidence) + _population_note(metrics[-1]))
    return fig


@_styled
def plot_requests(
    results: pd.DataFrame,
    x: str = "workload.users",
    series: str | None = "transport.kind",
    *,
    ax: Axes | None = None,
    title: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Requests per second reaching the access layer vs ``x`` (users by default).

    Polls, sends, ACKs, syncs, logins and heartbeats all count: this is the load the
    gateways must carry. Log–log when users span ≥ 30×.
    """
    xs = results[x].to_numpy(float) if x in results.columns else np.array([])
    return plot_metric(
        results,
        "requests_per_s",
        x,
        series,
        ax=ax,
        log_y=_use_log_x(xs),
        title=title or f"Access-layer load vs {_short(x)}",
        confidence=confidence,
    )


@_styled
def plot_empty_polls(
    results: pd.DataFrame,
    x: str = "network.downlink_loss",
    series: str | None = "transport.kind",
    *,
    ax: Axes | None = None,
    title: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Share of polls (short or long) that returned no message, in %, vs ``x``.

    Strategies without polls (push) have no value and no line.
    """
    fig = plot_metric(
        results,
        "empty_poll_fraction",
        x,
        series,
        ax=ax,
        title=title or f"Empty polls vs {_short(x)}",
        confidence=confidence,
    )
    fig.axes[0].set_ylim(0, 100)
    return fig


def _category_labels(frame: pd.DataFrame, category: Sequence[str]) -> pd.Series:
    if len(category) == 1:
        key = category[0]
        return frame[key].map(lambda v: value_label(key, v))
    return frame[list(category)].apply(
        lambda row: ", ".join(value_label(k, row[k]) for k in category), axis=1
    )


@_styled
def plot_outcomes(
    frame: pd.DataFrame,
    category: str | Sequence[str] = "mechanisms",
    outcomes: Sequence[str] = OUTCOMES,
    hue: str | None = None,
    *,
    title: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Delivery outcomes (counts) per category: one panel per outcome, horizontal bars.

    ``frame`` has a row per run (replications are averaged, with CI error bars) or per
    configuration; ``category`` names the column(s) whose values are the bars' labels
    (e.g. ``"mechanisms"``, or ``["transport.kind", "reliability.sync"]``); ``hue`` an
    optional column that splits each bar (e.g. ``"fault"`` or the loss rate). Every bar
    is labelled with its value, so a zero is visible as "0".
    """
    cats = [category] if isinstance(category, str) else list(category)
    outcomes = [o for o in outcomes if o in frame.columns]
    if not outcomes:
        raise ValueError(f"none of the outcome columns are in the frame (columns: {list(frame)})")
    keys = cats + ([hue] if hue else [])
    agg = aggregate(frame, metrics=outcomes, by=keys, confidence=confidence)
    agg["_cat"] = _category_labels(agg, cats)
    cat_order = _ordered_unique(agg["_cat"])
    hues = _ordered_unique(agg[hue]) if hue else [None]
    if hue and pd.api.types.is_numeric_dtype(agg[hue]):
        hues = sorted(hues)
    styles = _series_styles(hues)
    n_cat, n_hue = len(cat_order), len(hues)
    height = min(9.0, max(3.2, 1.3 + 0.28 * n_cat * max(1, n_hue) ** 0.8))
    label_width = max(len(c) for c in cat_order)
    fig = Figure(figsize=(6.4 + max(0, label_width - 18) * 0.06, height))
    axes = fig.subplots(1, len(outcomes), sharey=True, squeeze=False)[0]
    bar_h = 0.8 / n_hue
    positions = np.arange(n_cat)
    tops: list[float] = []
    for ax, outcome in zip(axes, outcomes, strict=True):
        data = agg[agg["metric"] == outcome]
        top = 0.0
        for j, h in enumerate(hues):
            sub = data if hue is None else data[data[hue] == h]
            means = sub.groupby("_cat", sort=False)["mean"].first().reindex(cat_order)
            halves = sub.groupby("_cat", sort=False)["half_width"].first().reindex(cat_order)
            ys = positions - 0.4 + bar_h * (j + 0.5)
            color = styles[h]["color"] if hue else _PALETTE[0]
            xerr = halves.to_numpy(float)
            ax.barh(
                ys,
                means.fillna(0).to_numpy(float),
                height=bar_h * 0.9,
                color=color,
                xerr=np.where(np.isfinite(xerr), xerr, 0) if np.isfinite(xerr).any() else None,
                error_kw={"ecolor": "#333333", "elinewidth": 1},
                label=value_label(hue, h) if hue else None,
            )
            for y, v, e in zip(ys, means.to_numpy(float), xerr, strict=True):
                if math.isfinite(v):
                    end = v + (e if math.isfinite(e) else 0.0)
                    top = max(top, end)
                    ax.annotate(
                        f"{v:.3g}" if v != int(v) else f"{int(v)}",
                        (end, y),
                        xytext=(3, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize=8,
                    )
        ax.set_xlim(0, max(1.0, top) * 1.3)
        tops.append(top)
        ax.set_title(_OUTCOME_TITLES.get(outcome, outcome.replace("_", " ")), fontsize=10.5)
        ax.set_xlabel("count per run")
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(positions, cat_order)
    extra_rows = 0.0
    if hue:
        handles = [Patch(color=styles[h]["color"], label=value_label(hue, h)) for h in hues]
        legend_title = _wrap(key_label(hue), 14)
        # The legend goes in a blank band above the first category, in the emptiest panel:
        # it hides no bar or value (an outside legend would fight the title or the
        # footnote for the figure's edge). Rows of the band = legend height / row height.
        legend_in = (len(hues) + legend_title.count("\n") + 1.6) * 0.15 + 0.1
        axes_in = height - 1.0
        extra_rows = legend_in * n_cat / max(axes_in - legend_in, 0.5)
        emptiest = int(np.argmin(tops))
        axes[emptiest].legend(
            handles=handles,
            title=legend_title,
            loc="upper right",
            fontsize=8.5,
            title_fontsize=8.5,
        )
    axes[0].set_ylim(n_cat - 0.5, -0.5 - extra_rows)  # first category on top
    fig.suptitle(title or _OUTCOMES_TITLE)
    _footnote(fig, _band_note(agg, confidence))
    return fig


def pareto_optimal(cost: Sequence[float], latency: Sequence[float]) -> np.ndarray:
    """Boolean mask of the Pareto-optimal points when lower is better on both axes.

    A point is optimal when no other point is at least as good on both and strictly
    better on one; of exact duplicates, the first is kept.
    """
    points = np.column_stack([np.asarray(cost, float), np.asarray(latency, float)])
    mask = np.zeros(len(points), dtype=bool)
    if len(points):
        mask[_pareto(points)] = True
    return mask


def _pareto(points: np.ndarray) -> np.ndarray:
    """Indices of the Pareto-optimal points (lower is better on both columns)."""
    order = np.lexsort((points[:, 1], points[:, 0]))  # by cost, then latency
    keep, best = [], math.inf
    for i in order:
        if points[i, 1] < best:
            keep.append(i)
            best = points[i, 1]
    return np.array(keep, dtype=int)


@_styled
def plot_cost_frontier(
    results: pd.DataFrame,
    series: str | None = None,
    *,
    within: str | Sequence[str] | None = None,
    path: str | None = None,
    cost: str = "requests_per_s",
    latency: str = "latency_p99_ms",
    lost_column: bool = True,
    slo_ms: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Latency vs cost, one point per configuration, with the Pareto-optimal ones marked.

    x: ``cost`` (requests/s at the access layer by default), y: ``latency`` (p99 by
    default, log scale); error bars are the CIs of both means. Lower-left is better: a
    configuration is Pareto-optimal when no other one is at least as good on both axes
    and better on one.

    ``series`` colours the points (default: the first categorical grid key). ``within``
    names the columns that describe the *environment* rather than a choice (loss rate,
    users): optimality is then judged among configurations with the same environment,
    optimal points are filled and the others hollow. Without ``within`` all points compete
    and the frontier is drawn as a dashed staircase. ``path`` (default: the only numeric
    grid key, if exactly one) joins each series' points in the order of that key and
    labels the ends, so a strategy reads as a trajectory.

    Latency is measured over delivered messages, so a configuration that loses messages
    would look faster than one that delivers them late. When the frame has a ``lost``
    column (and ``lost_column`` is true), only configurations with ``lost == 0`` in every
    replication compete for the frontier; the others are drawn apart (grey ✕ over their
    series marker), labelled with their mean loss per run, and never marked optimal.
    ``slo_ms`` draws a horizontal SLO line (when ``latency`` is a latency). Point labels
    are moved apart so that they do not overlap.
    """
    aggregated = _is_aggregated(results)
    if aggregated:
        skip = {"metric", "n", "mean", "std", "half_width", "low", "high"}
        keys = [c for c in results.columns if c not in skip]
    else:
        keys = grid_columns(results)
    if series is None:
        cats = [k for k in keys if not _is_numeric_key(results[k])]
        series = cats[0] if cats else None
    groups = [] if within is None else ([within] if isinstance(within, str) else list(within))
    if path is None:
        numeric = [k for k in keys if _is_numeric_key(results[k]) and k != series]
        path = numeric[0] if len(numeric) == 1 else None
    by = keys or ["point"]
    has_lost = (
        set(results["metric"]) >= {"lost"} if aggregated else "lost" in results.columns
    ) and lost_column
    agg = _agg(results, [cost, latency] + (["lost"] if has_lost else []), by, confidence)
    wide = agg.pivot_table(
        index=by, columns="metric", values=["mean", "half_width"], dropna=False, sort=False
    )
    table = pd.DataFrame(
        {
            "x": wide[("mean", cost)] * _metric_factor(cost),
            "y": wide[("mean", latency)],
            "xerr": wide[("half_width", cost)] * _metric_factor(cost),
            "yerr": wide[("half_width", latency)],
            "lost": wide[("mean", "lost")] if has_lost else 0.0,
        }
    ).reset_index()
    table = table[np.isfinite(table["x"]) & np.isfinite(table["y"])].reset_index(drop=True)
    # Latency is over delivered messages, so a configuration that loses messages looks
    # faster than it is: only configurations with no loss in any replication compete.
    table["lossy"] = table["lost"].fillna(0.0).to_numpy(float) > 0
    table["optimal"] = False
    eligible = table[~table["lossy"]]
    for _, sub in eligible.groupby(groups, sort=False) if groups else [(None, eligible)]:
        if len(sub):
            idx = sub.index.to_numpy()[_pareto(sub[["x", "y"]].to_numpy(float))]
            table.loc[idx, "optimal"] = True

    own = ax is None
    fig, ax = _new_figure(ax)
    values = _ordered_unique(table[series]) if series else [None]
    styles = _series_styles(values)
    labelled = [k for k in keys if k not in (series, *groups)] if path is None else []
    labels: list[Any] = []
    for value in values:
        sub = table if series is None else table[table[series] == value]
        st = styles[value]
        if path is not None and len(sub) > 1:
            sub = sub.sort_values(path)
            ax.plot(sub["x"], sub["y"], color=st["color"], linewidth=0.9, alpha=0.6, zorder=1)
        ax.errorbar(
            sub["x"],
            sub["y"],
            xerr=sub["xerr"].where(np.isfinite(sub["xerr"])),
            yerr=sub["yerr"].where(np.isfinite(sub["yerr"])),
            fmt="none",
            ecolor=st["color"],
            elinewidth=0.8,
            zorder=2,
        )
        filled = sub["optimal"] if groups else ~sub["lossy"]
        for mask, face in ((filled, st["color"]), (~filled & ~sub["lossy"], "white")):
            if mask.any():
                ax.plot(
                    sub.loc[mask, "x"],
                    sub.loc[mask, "y"],
                    linestyle="none",
                    marker=st["marker"],
                    markersize=7,
                    color=st["color"],
                    markerfacecolor=face,
                    zorder=3,
                )
        ax.plot(
            [],
            [],
            linestyle="none",
            marker=st["marker"],
            markersize=7,
            color=st["color"],
            label=value_label(series, value) if series else "configurations",
        )
        lossy = sub[sub["lossy"]]
        if len(lossy):
            # Apart: a hollow series marker crossed by a grey ✕, never filled or optimal.
            ax.plot(
                lossy["x"],
                lossy["y"],
                linestyle="none",
                marker=st["marker"],
                markersize=7,
                color=st["color"],
                markerfacecolor="white",
                alpha=0.6,
                zorder=3,
            )
            ax.plot(
                lossy["x"],
                lossy["y"],
                linestyle="none",
                marker="x",
                markersize=9,
                color=_LOSSY_COLOR,
                markeredgewidth=1.6,
                zorder=4,
            )
        ends = [sub.iloc[0], sub.iloc[-1]] if path is not None and len(sub) > 1 else []
        rows = ends or ([row for _, row in sub.iterrows()] if labelled else [])
        shown = {r.name for r in rows}
        rows += [row for i, row in lossy.iterrows() if i not in shown]
        for row in rows:
            text = (
                value_label(path, row[path])
                if path
                else ", ".join(value_label(k, row[k]) for k in labelled)
            )
            if row["lossy"]:
                text = (text + ": " if text else "") + f"loses {row['lost']:,.3g}/run"
            labels.append(
                ax.annotate(
                    text,
                    (row["x"], row["y"]),
                    xytext=(5, 3),
                    textcoords="offset points",
                    fontsize=8,
                    color=_LOSSY_COLOR if row["lossy"] else st["color"],
                )
            )
    if not groups and (~table["lossy"]).sum() >= 2:
        front = table.loc[table["optimal"]].sort_values("x")
        ax.step(
            front["x"],
            front["y"],
            where="post",
            color="#777777",
            linestyle="--",
            linewidth=1.0,
            label="Pareto frontier",
            zorder=0,
        )
    if table["lossy"].any():
        ax.plot(
            [],
            [],
            linestyle="none",
            marker="x",
            markersize=9,
            markeredgewidth=1.6,
            color=_LOSSY_COLOR,
            label=_wrap("loses messages: not on the frontier", 20),
        )
    if groups:
        ax.plot(
            [],
            [],
            linestyle="none",
            marker="o",
            color="#555555",
            markerfacecolor="#555555",
            label=_wrap(f"optimal for its {', '.join(_short(g) for g in groups)}", 20),
        )
        ax.plot(
            [],
            [],
            linestyle="none",
            marker="o",
            color="#555555",
            markerfacecolor="white",
            label="dominated",
        )
    if latency.startswith(("latency_", "catchup_latency_")):
        _log_latency_axis(ax)
        ax.set_ylabel(metric_label(latency).replace(" (ms)", "") + " (log scale)")
    else:
        ax.set_ylabel(metric_label(latency))
    if _use_log_x(table["x"].to_numpy(float)):
        _log_axis(ax, "x")
    if latency.startswith(("latency_", "catchup_latency_")):
        _slo_line(ax, slo_ms, "y")
    ax.set_xlabel(metric_label(cost))
    _title(ax, own, title or "Cost frontier: latency vs access-layer load")
    _legend(ax, own, title=key_label(series) if series else None)
    note = _band_note(agg, confidence) + _population_note(latency) + " · lower left is better"
    if has_lost:
        note += "\nonly configurations that lost no message compete for the frontier"
    _footnote(fig, note)
    declutter_labels(fig, labels)
    return fig


def declutter_labels(fig: Figure, labels: Sequence[Any], max_rounds: int = 40) -> int:
    """Move point labels (annotations in offset points) apart until none overlap.

    Greedy: in the order given, a label that overlaps an already placed one is shifted
    up (then down) by steps of its own height, up to ``max_rounds`` steps. Returns how
    many labels still overlap another (0 when all could be placed). Uses the figure's
    current layout, so call it after everything else is drawn.
    """
    if len(labels) < 2:
        return 0
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()  # resolve the layout: positions are final
    placed: list[Any] = []
    clashes = 0
    dpi_scale = fig.dpi / 72.0
    for label in labels:
        dx, dy = label.xyann
        box = label.get_window_extent(renderer)
        step = box.height / dpi_scale + 1.0
        for k in range(max_rounds + 1):
            offset = dy + (step * ((k + 1) // 2) * (1 if k % 2 else -1) if k else 0.0)
            label.xyann = (dx, offset)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
        else:
            label.xyann = (dx, dy)
            box = label.get_window_extent(renderer)
            clashes += 1
        placed.append(box)
    return clashes


# --------------------------------------------------------------------------------------
# Run figures
# --------------------------------------------------------------------------------------


@_styled
def plot_latency_ecdf(
    messages: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    by: str | None = None,
    online_only: bool = True,
    slo_ms: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Empirical CDF of delivery latency (ms, log axis) of one or several runs.

    ``messages``: a run's ``messages`` frame, or a mapping label → frame to overlay runs
    (e.g. one per transport). ``by`` splits one frame by a column (``"first_via"``).
    Latency is send → first arrival at the recipient's app. The population is named in
    the legend (:data:`~immodel.analysis.stats.LATENCY_POPULATIONS`): with
    ``online_only`` (default) recipients online when the message was stored, the
    population of the summary's ``latency_*_ms``; otherwise every first delivery,
    including catch-up after being offline (the population of ``immodel check``). Each
    curve's legend gives its sample size against the expected pairs of that population
    ("n = 9,812 of 10,000 expected"): the curve is over delivered pairs, so a lossy run's
    missing pairs are visible there. Grey lines mark 50 % and 99 %; ``slo_ms`` draws a
    vertical SLO line.
    """
    population = LATENCY_POPULATIONS[bool(online_only)]
    if isinstance(messages, Mapping):
        frames = {str(k): v for k, v in messages.items()}
    elif by is not None:
        frames = {str(k): v for k, v in messages.groupby(by, sort=True, observed=True)}
    else:
        frames = {population: messages}
    curves = {k: latency_sample(v, online_only) for k, v in frames.items()}
    expected = {k: expected_pairs(v, online_only) for k, v in frames.items()}
    legend_title = _wrap(population, 26)
    if by in _DELIVERY_PROPERTIES and not isinstance(messages, Mapping):
        # Split by a property of the delivery (its first path): a lost pair has none, so
        # the expected pairs belong to the whole run, not to one curve. A property of the
        # recipient (recipient_kind) keeps each curve's own expected pairs.
        total = latency_sample(messages, online_only)
        total = total[np.isfinite(total) & (total > 0)].size
        legend_title += "\n" + _n_of_expected(total, expected_pairs(messages, online_only))
        expected = dict.fromkeys(expected, 0)
    ax_given = ax
    fig, ax = _new_figure(ax)
    styles = _series_styles(list(curves))
    drawn = 0
    for label, x in curves.items():
        x = np.sort(x[np.isfinite(x) & (x > 0)])
        if x.size == 0:
            continue
        y = np.arange(1, x.size + 1) / x.size * 100.0
        st = styles[label]
        ax.plot(
            np.concatenate([[x[0]], x]),
            np.concatenate([[0.0], y]),
            drawstyle="steps-post",
            color=st["color"],
            label=f"{value_label(None, label)}\n({_n_of_expected(x.size, expected[label])})",
        )
        drawn += 1
    for q in (50, 99):
        ax.axhline(q, color="#888888", linewidth=0.8, linestyle=":")
        ax.annotate(
            f"p{q}",
            (1.0, q),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=8,
            color="#555555",
        )
    if drawn:
        _slo_line(ax, slo_ms, "x")
        _log_latency_axis(ax, "x")
        # ECDFs rise early: the lower right stays empty. The title names the population
        # when the curves are labelled by run or path.
        named = list(curves) == [population]
        ax.legend(loc="lower right", title=None if named else legend_title)
    else:
        ax.text(0.5, 0.5, "no deliveries", transform=ax.transAxes, ha="center")
    ax.set_ylim(0, 101)
    ax.set_xlabel("latency, send → recipient's app (log scale)")
    ax.set_ylabel("deliveries at or below (%)")
    _title(ax, ax_given is None, title or "Latency distribution")
    return fig


@_styled
def plot_latency_tail(
    messages: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    online_only: bool = True,
    slo_ms: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The latency tail: complementary CDF on log–log axes, down to p99.9.

    y is the share of deliveries slower than x (``1 − F(x)``, from 100 % down to 0.1 %),
    so p99 and p99.9 are where a curve crosses 1 % and 0.1 % (grey lines). Same
    population and legend as :func:`plot_latency_ecdf`; a curve with fewer than 1 000
    deliveries cannot reach 0.1 % and stops at ``1/n``. ``slo_ms`` draws the SLO line:
    the height where a curve crosses it is the share of deliveries that miss the SLO.
    """
    population = LATENCY_POPULATIONS[bool(online_only)]
    frames = (
        {str(k): v for k, v in messages.items()}
        if isinstance(messages, Mapping)
        else {population: messages}
    )
    ax_given = ax
    fig, ax = _new_figure(ax)
    styles = _series_styles(list(frames))
    drawn = 0
    for label, frame in frames.items():
        x = latency_sample(frame, online_only)
        x = np.sort(x[np.isfinite(x) & (x > 0)])
        if x.size == 0:
            continue
        # Share strictly slower than each sorted value; the last point (0) cannot be
        # drawn on a log axis, so the curve ends at 1/n.
        tail = 1.0 - np.arange(1, x.size + 1) / x.size
        keep = tail > 0
        if not keep.any():
            continue  # one delivery (or all equal): no point above 0 % to draw on a log axis
        ax.plot(
            x[keep],
            tail[keep] * 100.0,
            drawstyle="steps-post",
            color=styles[label]["color"],
            label=f"{value_label(None, label)}\n"
            f"({_n_of_expected(x.size, expected_pairs(frame, online_only))})",
        )
        drawn += 1
    for q, share in (("p99", 1.0), ("p99.9", 0.1)):
        ax.axhline(share, color="#888888", linewidth=0.8, linestyle=":")
        ax.annotate(
            q,
            (1.0, share),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=8,
            color="#555555",
        )
    ax.set_yscale("log")
    ax.set_ylim(0.05, 110)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g} %"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if drawn:
        _slo_line(ax, slo_ms, "x")
        _log_latency_axis(ax, "x")
        named = list(frames) == [population]
        ax.legend(loc="lower left", title=None if named else _wrap(population, 26))
    else:
        ax.text(0.5, 0.5, "no deliveries", transform=ax.transAxes, ha="center")
    ax.set_xlabel("latency, send → recipient's app (log scale)")
    ax.set_ylabel("deliveries slower than x (log scale)")
    _title(ax, ax_given is None, title or "Latency tail")
    return fig


def fault_window(
    faults: Sequence[Mapping[str, Any]], horizon_s: float | None = None, margin: float = 1.0
) -> tuple[float, float] | None:
    """The time window around a run's faults, for zoomed load timelines (s).

    From ``margin`` × the longest fault duration (at least 10 s) before the first fault
    to that much after the last one ends (a fault without ``down_s`` counts 10 s),
    clipped to ``[0, horizon_s]``. None without faults.
    """
    spans = [
        (float(f.get("at_s", 0.0)), float(f.get("down_s") or 10.0))
        for f in faults
        if isinstance(f, Mapping)
    ]
    if not spans:
        return None
    pad = max(10.0, margin * max(d for _, d in spans))
    start = max(0.0, min(a for a, _ in spans) - pad)
    end = max(a + d for a, d in spans) + pad
    if horizon_s is not None:
        end = min(end, float(horizon_s))
    return (start, end)


@_styled
def plot_recovery(
    messages: pd.DataFrame,
    faults: Sequence[Mapping[str, Any]] | None = None,
    *,
    recovery_time_s: float | None = None,
    window_s: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Recovery from a fault: messages stored but not yet shown, over time.

    The backlog at time t is the number of expected (message, recipient) pairs stored at
    or before t and not yet shown at t, whoever the recipient: a client cut off by the
    fault counts as offline for what is stored while it reconnects, and those pairs are
    what recovery must deliver. In steady state it is the deliveries in flight (plus the
    messages waiting for recipients who are offline by choice); a crash makes it climb
    and recovery drains it. Faults are shaded; ``recovery_time_s`` (the summary's: from
    the crash until the last affected pair arrived) is marked by a vertical line.
    ``window_s`` zooms on ``(t0, t1)`` (e.g. :func:`fault_window`).
    """
    data = messages
    if "stored" in data.columns:
        data = data[data["stored"].fillna(False).astype(bool)]
    stored = np.sort(pd.to_numeric(data["t_stored"], errors="coerce").dropna().to_numpy(float))
    shown = np.sort(pd.to_numeric(data["t_first_show"], errors="coerce").dropna().to_numpy(float))
    times = np.unique(np.concatenate([stored, shown, [0.0]]))
    backlog = np.searchsorted(stored, times, side="right") - np.searchsorted(
        shown, times, side="right"
    )
    fig = Figure(figsize=STYLE["figure.figsize"])
    ax = fig.add_subplot()
    spans = _fault_spans(faults or [])
    for start, end, label in spans:
        if end is None:
            ax.axvline(start, color=_FAULT_COLOR, linewidth=1.2, linestyle="--", label=label)
        else:
            ax.axvspan(start, end, color=_FAULT_COLOR, alpha=0.13, linewidth=0, label=label)
    ax.plot(times, backlog, drawstyle="steps-post", color=_PALETTE[0], label="stored, not shown")
    t_rec = None
    if recovery_time_s is not None and spans:
        t_rec = spans[0][0] + float(recovery_time_s)
        if window_s is not None and t_rec > window_s[1]:  # keep the mark in view
            window_s = (window_s[0], t_rec + 0.1 * (t_rec - window_s[0]))
        ax.axvline(t_rec, color="#333333", linestyle="--", linewidth=1.0)
        ax.annotate(
            f"recovered after {recovery_time_s:,.1f} s",
            (t_rec, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-4, -4),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=8.5,
            color="#333333",
        )
    if window_s is not None:
        ax.set_xlim(*window_s)
        inside = (times >= window_s[0]) & (times <= window_s[1])
        top = float(backlog[inside].max()) if inside.any() else 1.0
    else:
        top = float(backlog.max()) if backlog.size else 1.0
    ax.set_ylim(0, max(1.0, top) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("deliveries pending\n(stored, not yet shown)")
    ax.legend(loc="upper left", fontsize=8.5)
    fig.suptitle(title or "Recovery: backlog of undelivered messages")
    _footnote(fig, "every expected (message, recipient) pair, online or not")
    return fig


@_styled
def plot_by_recipient_kind(
    messages: pd.DataFrame, *, slo_ms: float | None = None, title: str | None = None
) -> Figure:
    """Latency ECDF of a hybrid run split by the recipient's client kind.

    One curve per value of ``recipient_kind`` (push, long polling, short polling), each
    with its sample size against that kind's expected pairs, so a kind that loses
    messages or lags shows apart. Raises ``ValueError`` without the column.
    """
    if "recipient_kind" not in messages.columns:
        raise ValueError("the messages frame has no recipient_kind column")
    return plot_latency_ecdf(
        messages,
        by="recipient_kind",
        slo_ms=slo_ms,
        title=title or "Latency by recipient client kind",
    )


def _n_of_expected(n: int, expected: int) -> str:
    """ "n = 9,812 of 10,000 expected" (just "n = 9,812" when nothing is expected)."""
    return f"n = {n:,} of {expected:,} expected" if expected else f"n = {n:,}"


def _slo_line(ax: Axes, slo_ms: float | None, axis: str = "y") -> None:
    """A dashed red line at the latency SLO, labelled "SLO 500 ms" in the legend."""
    if slo_ms is None:
        return
    if not (isinstance(slo_ms, int | float) and math.isfinite(slo_ms) and slo_ms > 0):
        raise ValueError(f"slo_ms must be a positive number of milliseconds, got {slo_ms!r}")
    line = ax.axvline if axis == "x" else ax.axhline
    text = f"{slo_ms / 1000:g} s" if slo_ms >= 1000 else f"{slo_ms:g} ms"
    line(slo_ms, color=_FAULT_COLOR, linestyle="--", linewidth=1.2, label=f"SLO {text}")


def _fault_spans(faults: Sequence[Mapping[str, Any]]) -> list[tuple[float, float | None, str]]:
    spans = []
    for f in faults:
        kind = str(f.get("kind", "fault"))
        at = float(f.get("at_s", 0.0))
        down = f.get("down_s")
        where = f" node {f['node']}" if "node" in f else ""
        if down is not None:
            spans.append((at, at + float(down), f"{kind}{where}, {float(down):g} s"))
        else:
            spans.append((at, None, f"{kind}{where}"))
    return spans


def _down_spans(load: pd.DataFrame) -> list[tuple[float, float | None, str]]:
    """Windows where some node was down, from the load samples' ``up`` column."""
    if "up" not in load.columns or load["up"].all():
        return []
    spans = []
    for node, frame in load.groupby("node") if "node" in load.columns else [(0, load)]:
        frame = frame.sort_values("t")
        down = ~frame["up"].astype(bool).to_numpy()
        t = frame["t"].to_numpy(float)
        start = None
        for ti, d in zip(t, down, strict=True):
            if d and start is None:
                start = ti
            elif not d and start is not None:
                spans.append((start, ti, f"node {node} down"))
                start = None
        if start is not None:
            spans.append((start, float(t[-1]), f"node {node} down"))
    return spans


@_styled
def plot_load_timeline(
    load: pd.DataFrame,
    faults: Sequence[Mapping[str, Any]] | None = None,
    *,
    window_s: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Access-layer and server load over simulated time, summed over nodes.

    Three panels sharing the time axis (s): open connections (and held long polls);
    messages waiting in pending-ACK queues; jobs in service and waiting at the server
    stages. ``faults`` (the scenario's ``faults`` list) are shaded from
    ``at_s`` for ``down_s`` (a line when they have no duration); without it, the windows
    where a node's ``up`` sample is false are shaded. ``window_s`` zooms to ``(t0, t1)``.
    """
    data = load.copy()
    if window_s is not None:
        data = data[(data["t"] >= window_s[0]) & (data["t"] <= window_s[1])]
    # every tier's rows count (``tier`` names them; absent columns are NaN and add 0)
    numeric = [c for c in data.select_dtypes("number").columns if c not in ("t", "node", "up")]
    total = data.groupby("t", sort=True)[numeric].sum()
    t = total.index.to_numpy(float)
    fig = Figure(figsize=(6.4, 5.2))
    axes = fig.subplots(3, 1, sharex=True)
    styles = _PALETTE

    def column(name: str) -> pd.Series:
        return total[name] if name in total else pd.Series(0.0, index=total.index)

    spans = _fault_spans(faults) if faults else _down_spans(load)
    for start, end, _label in spans:
        for a in axes:
            if end is None:
                a.axvline(start, color=_FAULT_COLOR, linewidth=1.2, linestyle="--")
            else:
                a.axvspan(start, end, color=_FAULT_COLOR, alpha=0.13, linewidth=0)
    fault_handles = [
        (
            Patch(color=_FAULT_COLOR, alpha=0.25, label=lab)
            if end is not None
            else Line2D([], [], color=_FAULT_COLOR, linestyle="--", label=lab)
        )
        for _, end, lab in spans
    ]

    ax = axes[0]
    ax.plot(t, column("connections"), color=styles[0], label="connections")
    if column("held_polls").any():
        ax.plot(t, column("held_polls"), color=styles[4], label="held long polls")
        ax.set_ylabel("open")
    else:
        ax.set_ylabel("open\nconnections")
    handles = ax.get_legend_handles_labels()[0] + fault_handles
    top = max(1.0, float(column("connections").max()), float(column("held_polls").max()))
    if len(handles) > 1:
        # Headroom above the curves for the legend: the drop and the recovery are the story.
        ax.legend(handles=handles, loc="upper center", ncols=min(len(handles), 3), fontsize=8.5)
        ax.set_ylim(0, top * 1.45)
    else:
        ax.set_ylim(0, top * 1.08)

    ax = axes[1]
    ax.plot(t, column("pending_acks"), color=styles[1])
    ax.set_ylabel("pending ACKs\n(messages)")
    ax.set_ylim(bottom=0)

    # Work at the server stages: jobs in service and jobs waiting, as sampled. Service
    # times are milliseconds, so at light load the samples rarely catch any: say so.
    ax = axes[2]
    queued = total[[c for c in total.columns if c.startswith("queue_")]].sum(axis=1)
    in_service = total[[c for c in total.columns if c.startswith("busy_")]].sum(axis=1)
    ax.plot(t, in_service, color=styles[2], label="in service")
    ax.plot(t, queued, color=styles[3], label="waiting")
    if in_service.any() or queued.any():
        ax.legend(loc="upper right", ncols=2, fontsize=8.5)
    else:
        ax.text(
            0.5,
            0.55,
            "no server job in service or waiting at any sample (light load)",
            transform=ax.transAxes,
            ha="center",
            fontsize=8.5,
            color=_NOTE_COLOR,
        )
    ax.set_ylabel("server jobs")
    for a in axes:  # every panel counts things
        a.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.set_ylim(0, max(1.0, float(max(in_service.max(), queued.max(), 0.0))) * 1.15)
    ax.set_xlabel("simulated time (s)")

    fig.suptitle(title or "Load over time")
    return fig


# --------------------------------------------------------------------------------------
# Folders: what `immodel plot` draws
# --------------------------------------------------------------------------------------


def _is_numeric_key(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _file_part(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", key.rsplit(".", 1)[-1]).strip("_")


def _has_values(frame: pd.DataFrame, metric: str) -> bool:
    return metric in frame.columns and pd.to_numeric(frame[metric], errors="coerce").notna().any()


def sweep_figures(
    results: pd.DataFrame,
    directory: str | Path,
    *,
    confidence: float = 0.95,
    slo_ms: float | None = None,
) -> list[Path]:
    """Draw every standard figure a sweep's grid allows into ``directory``; return the files.

    x axis = the first numeric grid key with several values, series = the first
    categorical one (strings, booleans); further varying keys give one set of files
    per combination of their values (suffix ``__key-value``). Always: the outcomes bars
    (one bar per series value and x value, or per combination of the categorical keys
    when there is no numeric one) and the cost frontier (all configurations). With a
    numeric key: latency p50/p99, requests/s and (when there are polls) the empty-poll
    share vs that key. ``slo_ms`` draws an SLO line on the latency figures.
    """
    directory = Path(directory)
    grid = [k for k in grid_columns(results) if results[k].nunique(dropna=False) > 1]
    numeric = [k for k in grid if _is_numeric_key(results[k])]
    categorical = [k for k in grid if k not in numeric]
    x = numeric[0] if numeric else None
    series = categorical[0] if categorical else None
    # Without a numeric key there are no lines to split: one outcomes figure lists every
    # combination of the categorical keys instead.
    rest = [k for k in grid if k not in (x, series)] if x is not None else []
    files: list[Path] = []

    combos = (
        list(results[rest].drop_duplicates().itertuples(index=False, name=None)) if rest else [()]
    )
    for combo in combos:
        subset = results
        suffix = ""
        for key, value in zip(rest, combo, strict=True):
            subset = subset[subset[key] == value]
            suffix += f"__{_file_part(key)}-{_file_part(str(value))}"
        note = ", ".join(value_label(k, v) for k, v in zip(rest, combo, strict=True))
        where = f" ({note})" if note else ""
        if x is not None:
            xs = _short(x)
            if _has_values(subset, "latency_p99_ms"):
                fig = plot_latency(
                    subset,
                    x,
                    series,
                    title=f"Delivery latency vs {xs}{where}",
                    confidence=confidence,
                    slo_ms=slo_ms,
                )
                files += save_figure(fig, directory, f"latency_vs_{_file_part(x)}{suffix}")
            if _has_values(subset, "requests_per_s"):
                fig = plot_requests(subset, x, series, title=f"Access-layer load vs {xs}{where}")
                files += save_figure(fig, directory, f"requests_vs_{_file_part(x)}{suffix}")
            if _has_values(subset, "empty_poll_fraction"):
                fig = plot_empty_polls(subset, x, series, title=f"Empty polls vs {xs}{where}")
                files += save_figure(fig, directory, f"empty_polls_vs_{_file_part(x)}{suffix}")
        outcomes = [o for o in OUTCOMES if o in subset.columns]
        if outcomes:
            category = ([series] if series else []) if x is not None else categorical
            if not category:
                subset = subset.assign(configuration="all runs")
                category = ["configuration"]
            fig = plot_outcomes(
                subset,
                category,
                outcomes,
                hue=x,
                title=f"{_OUTCOMES_TITLE}{where}",
                confidence=confidence,
            )
            files += save_figure(fig, directory, f"outcomes{suffix}")
    if _has_values(results, "requests_per_s") and _has_values(results, "latency_p99_ms"):
        fig = plot_cost_frontier(
            results,
            series,
            within=[x, *rest] if x else rest or None,
            confidence=confidence,
            slo_ms=slo_ms,
        )
        files += save_figure(fig, directory, "cost_frontier")
    return files


def plot_sweep_folder(
    directory: str | Path, out: str | Path | None = None, *, slo_ms: float | None = None
) -> list[Path]:
    """The sweep figures of a result folder (``results.parquet``) into ``out``
    (default ``DIR/figures``)."""
    directory = Path(directory)
    results = pd.read_parquet(directory / "results.parquet")
    if results.empty:
        from immodel.errors import UserError

        raise UserError(f"'{directory / 'results.parquet'}' has no finished runs to plot")
    target = Path(out) if out is not None else directory / "figures"
    return sweep_figures(results, target, slo_ms=slo_ms)


def _read_scenario(directory: Path) -> dict[str, Any]:
    path = directory / "scenario.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
        return {}


def _read_faults(directory: Path) -> list[dict[str, Any]]:
    faults = _read_scenario(directory).get("faults", [])
    return [dict(f) for f in faults] if isinstance(faults, list) else []


def run_figures(directory: str | Path, *, slo_ms: float | None = None) -> list[tuple[str, Figure]]:
    """The run figures of a run folder, as ``(file stem, figure)`` pairs.

    From ``messages.parquet``: the latency ECDF and the latency tail (log CCDF down to
    p99.9). From ``load.parquet``: the load timeline with the faults of
    ``scenario.toml`` shaded. A run with faults also gets the load timeline zoomed on
    the fault window (:func:`fault_window`, extended to the summary's recovery and
    reconnect times) and the recovery figure (backlog of
    undelivered messages, the summary's ``recovery_time_s`` marked). ``slo_ms`` draws
    an SLO line on the latency figures.
    """
    import json

    from immodel.errors import UserError

    directory = Path(directory)
    scenario = _read_scenario(directory)
    name = scenario.get("name")
    name = f" — {name}" if isinstance(name, str) and name not in ("", "custom") else ""
    messages_path = directory / "messages.parquet"
    load_path = directory / "load.parquet"
    if not messages_path.is_file() and not load_path.is_file():
        raise UserError(
            f"'{directory}' has a summary.json but no messages.parquet or load.parquet to "
            "plot (write a run with `immodel run SCENARIO --out DIR`)"
        )
    try:
        summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    faults = _read_faults(directory)
    horizon = summary.get("horizon_s")
    zoom = fault_window(faults, horizon) if faults else None
    if zoom is not None:
        # Show the recovery too: until the last affected delivery / reconnect, plus 10 %.
        took = [summary.get(k) for k in ("recovery_time_s", "reconnect_time_s")]
        took = [float(t) for t in took if isinstance(t, int | float) and math.isfinite(t)]
        if took:
            t0 = min(float(f.get("at_s", 0.0)) for f in faults)
            end = t0 + 1.1 * max(took)
            zoom = (zoom[0], min(max(zoom[1], end), float(horizon or end)))
    figures: list[tuple[str, Figure]] = []
    if messages_path.is_file():
        messages = pd.read_parquet(messages_path)
        figures.append(
            (
                "latency_ecdf",
                plot_latency_ecdf(messages, slo_ms=slo_ms, title=f"Latency distribution{name}"),
            )
        )
        tail = plot_latency_tail(messages, slo_ms=slo_ms, title=f"Latency tail{name}")
        figures.append(("latency_tail", tail))
        if "recipient_kind" in messages.columns and messages["recipient_kind"].nunique() > 1:
            fig = plot_by_recipient_kind(
                messages, slo_ms=slo_ms, title=f"Latency by recipient client kind{name}"
            )
            figures.append(("latency_by_recipient_kind", fig))
        if faults and {"t_stored", "t_first_show"} <= set(messages.columns):
            figures.append(
                (
                    "recovery",
                    plot_recovery(
                        messages,
                        faults,
                        recovery_time_s=summary.get("recovery_time_s"),
                        window_s=zoom,
                        title=f"Recovery{name}",
                    ),
                )
            )
    if load_path.is_file():
        load = pd.read_parquet(load_path)
        figures.append(
            ("load_timeline", plot_load_timeline(load, faults, title=f"Load over time{name}"))
        )
        if zoom is not None:
            figures.append(
                (
                    "load_timeline_fault",
                    plot_load_timeline(
                        load,
                        faults,
                        window_s=zoom,
                        title=f"Load around the fault{name} ({zoom[0]:g}–{zoom[1]:g} s)",
                    ),
                )
            )
    return figures


def plot_run_folder(
    directory: str | Path, out: str | Path | None = None, *, slo_ms: float | None = None
) -> list[Path]:
    """The run figures of a run folder (``summary.json`` + records) into ``out``
    (default ``DIR/figures``).

    The figures of :func:`run_figures`, in the formats of :func:`figure_formats`
    (PNG and SVG by default); returns the files.
    """
    out = Path(out) if out is not None else Path(directory) / "figures"
    files: list[Path] = []
    for stem, fig in run_figures(directory, slo_ms=slo_ms):
        files += save_figure(fig, out, stem)
    return files


def _parse_formats(text: str | None) -> tuple[str, ...]:
    """``--format png,svg,pdf`` → a tuple of formats (default PNG + SVG)."""
    from immodel.errors import UserError

    if not text:
        return _FORMATS.get()
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise UserError(
            f"--format must be a comma-separated list of {', '.join(FIGURE_FORMATS)}, got {text!r}"
        )
    return formats


def cmd_plot(args) -> int:
    """``immodel plot DIR``: the standard figures of a run or sweep folder (PNG + SVG).

    A run folder (``summary.json``) gets the latency ECDF and the load timeline; a sweep
    folder (``results.parquet``) the figures its grid allows (:func:`sweep_figures`).
    Files go to ``DIR/figures/`` (or ``--out``) as PNG + SVG (or ``--format``) and are
    printed one per line. Anything else is a :class:`~immodel.errors.UserError` (exit 2).
    """
    from immodel.errors import UserError

    matplotlib.use("Agg")  # never open a window from the command line
    directory = Path(args.directory)
    if not directory.exists():
        raise UserError(f"'{directory}' does not exist (give a run or sweep result folder)")
    if not directory.is_dir():
        raise UserError(f"'{directory}' is not a folder (give a run or sweep result folder)")
    is_run = (directory / "summary.json").is_file()
    is_sweep = (directory / "results.parquet").is_file()
    if not (is_run or is_sweep):
        if (directory / "sweep.toml").is_file():
            raise UserError(
                f"'{directory}' holds a sweep without results.parquet yet; run "
                f"`immodel sweep {directory / 'sweep.toml'} --out {directory}` to finish it"
            )
        raise UserError(
            f"'{directory}' is neither a run folder (summary.json, from `immodel run --out`) "
            "nor a sweep folder (results.parquet, from `immodel sweep`)"
        )
    out = getattr(args, "out", None)
    formats = _parse_formats(getattr(args, "formats", None))
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--out '{out}' is a file, not a folder for the figures")
    slo_ms = getattr(args, "slo_ms", None)
    if slo_ms is not None and not (math.isfinite(slo_ms) and slo_ms > 0):
        raise UserError(f"--slo-ms must be a positive number of milliseconds, got {slo_ms:g}")
    files: list[Path] = []
    with figure_formats(formats):
        if is_run:
            files += plot_run_folder(directory, out, slo_ms=slo_ms)
        if is_sweep:
            files += plot_sweep_folder(directory, out, slo_ms=slo_ms)
    for path in files:
        print(path)
    return 0

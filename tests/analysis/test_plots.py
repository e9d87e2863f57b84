"""Tests of ``immodel.analysis.plots`` and ``immodel plot DIR``.

The figures are drawn from synthetic frames with the documented columns (a sweep's
results, an ablation frame, a run's messages and load), then checked for what a reviewer
relies on: axis labels with units, one series per strategy, bands only where there are
replications, PNG at 150 dpi plus SVG, and the command line's files and errors.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from immodel.analysis import plots
from immodel.analysis.plots import (
    cmd_plot,
    key_label,
    metric_label,
    pareto_optimal,
    plot_cost_frontier,
    plot_empty_polls,
    plot_latency,
    plot_latency_ecdf,
    plot_load_timeline,
    plot_metric,
    plot_outcomes,
    plot_requests,
    save_figure,
    sweep_figures,
    value_label,
)
from immodel.cli import main
from immodel.errors import UserError

matplotlib.use("Agg")

KINDS = ("short_poll", "long_poll", "push", "hybrid")


def results_frame(replications: int = 3, users: bool = False) -> pd.DataFrame:
    """A sweep results frame: loss (or users) × transport × replications, plausible numbers."""
    rng = np.random.default_rng(5)
    xs = (100, 1000, 10000) if users else (0.0, 0.05, 0.1, 0.2)
    key = "workload.users" if users else "network.downlink_loss"
    rows, point = [], 0
    for x in xs:
        for i, kind in enumerate(KINDS):
            for rep in range(replications):
                scale = x / 100 if users else 1.0
                rows.append(
                    {
                        "point": point,
                        key: x,
                        "transport.kind": kind,
                        "replication": rep,
                        "seed": 11 + rep,
                        "lost": int(rng.integers(0, 3)) * (kind == "long_poll"),
                        "duplicates": 0,
                        "order_violations": int(rep == 0 and kind == "push"),
                        "latency_p50_ms": 80.0 + 1000.0 * (kind == "short_poll") + rng.normal(),
                        "latency_p99_ms": 90.0 * (1 + 50 * (x if not users else 0)) * (i + 1)
                        + rng.normal(0, 5),
                        "requests_per_s": (170.0 if kind == "short_poll" else 40.0) * scale
                        + rng.normal(),
                        "empty_poll_fraction": None if kind == "push" else 0.9 - i * 0.2,
                    }
                )
            point += 1
    frame = pd.DataFrame(rows)
    frame["empty_poll_fraction"] = pd.to_numeric(frame["empty_poll_fraction"])
    return frame


def labels(fig: Figure) -> list[tuple[str, str]]:
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]


def legend_texts(ax) -> list[str]:
    """Entries of the axes' legend, or of the figure's (drawn right of the axes)."""
    legends = [ax.get_legend(), *ax.figure.legends]
    return [t.get_text() for leg in legends if leg is not None for t in leg.get_texts()]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def png_dpi(path: Path) -> float:
    data = path.read_bytes()
    i = data.index(b"pHYs")
    per_metre = struct.unpack(">I", data[i + 4 : i + 8])[0]
    return per_metre * 0.0254


# --- labels ----------------------------------------------------------------------------------


def test_axis_labels_carry_units():
    assert key_label("network.downlink_loss") == "downlink packet loss (%)"
    assert key_label("transport.poll_interval_s") == "short-poll interval (s)"
    assert key_label("workload.group_size") == "group size (members)"
    assert key_label("server.callback_ms") == "callback (ms)"
    assert metric_label("latency_p99_ms") == "p99 latency (ms)"
    assert metric_label("requests_per_s") == "requests/s at the access layer (req/s)"
    assert metric_label("empty_poll_fraction") == "empty polls (% of polls)"
    assert metric_label("wait_mean_ms_store") == "mean wait in the store queue (ms)"
    assert metric_label("utilization_recent_contacts") == "recent contacts stage utilization (%)"
    assert metric_label("recovery_time_s") == "recovery time (s)"


def test_value_labels_read_like_prose():
    assert value_label("transport.kind", "short_poll") == "short polling"
    assert value_label("reliability.sync", True) == "timestamp/seq sync on"
    assert value_label("reliability.sync", False) == "timestamp/seq sync off"
    assert value_label("network.downlink_loss", 0.05) == "5 %"
    assert value_label("workload.users", 10000) == "10,000"


# --- sweep figures -------------------------------------------------------------------------


def test_latency_figure_has_one_line_per_strategy_and_percentile_with_ci_bands():
    fig = plot_latency(results_frame())
    ax = fig.axes[0]
    assert tuple(fig.get_size_inches()) == pytest.approx((6.4, 4.0))
    assert ax.get_xlabel() == "downlink packet loss (%)"
    assert "latency" in ax.get_ylabel() and ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 2 * len(KINDS)
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2 * len(KINDS)
    texts = legend_texts(ax)
    assert texts[:4] == ["short polling", "long polling", "push", "hybrid"]
    assert texts[4:] == ["p99", "p50"]
    # loss is drawn in %, ticks at the grid's own values
    assert list(ax.get_lines()[0].get_xdata()) == pytest.approx([0, 5, 10, 20])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "5", "10", "20"]


def test_single_replication_draws_lines_without_bands_and_says_so():
    fig = plot_latency(results_frame(replications=1))
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2 * len(KINDS)
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)
    assert "no confidence band" in fig._supxlabel.get_text()


def test_requests_vs_users_uses_log_axes_across_decades():
    fig = plot_requests(results_frame(users=True), x="workload.users")
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert labels(fig)[0] == ("users", "requests/s at the access layer (req/s)")


def test_empty_poll_share_skips_strategies_without_polls():
    ax = plot_empty_polls(results_frame()).axes[0]
    assert legend_texts(ax) == ["short polling", "long polling", "hybrid"]
    assert ax.get_ylim() == (0, 100)
    assert ax.get_ylabel() == "empty polls (% of polls)"


def test_plot_metric_draws_into_a_given_axes_with_the_legend_inside():
    fig = Figure()
    ax = fig.add_subplot()
    out = plot_metric(results_frame(), "lost", "network.downlink_loss", "transport.kind", ax=ax)
    assert out is fig and not fig.legends and ax.get_legend() is not None
    assert ax.get_title() == "Lost deliveries vs downlink packet loss"


def test_own_figures_put_the_legend_right_of_the_axes_and_title_over_the_figure():
    fig = plot_metric(results_frame(), "lost", "network.downlink_loss", "transport.kind")
    assert len(fig.legends) == 1
    assert fig.axes[0].get_legend() is None
    assert fig.get_suptitle() == "Lost deliveries vs downlink packet loss"


def test_outcomes_bars_take_any_frame_and_column_names():
    ablation = pd.DataFrame(
        {
            "mechanisms": ["none", "ack", "ack+sync", "none", "ack", "ack+sync"] * 2,
            "fault": ["loss 5 %"] * 6 + ["server crash"] * 6,
            "lost": [40, 3, 0, 44, 2, 0, 120, 30, 0, 100, 28, 0],
            "duplicates": [0, 5, 0, 0, 6, 0, 0, 1, 0, 0, 2, 0],
            "order_violations": [1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        }
    )
    fig = plot_outcomes(ablation, "mechanisms", hue="fault")
    panels = fig.axes
    titles = [ax.get_title() for ax in panels]
    assert titles == ["lost", "duplicates", "out of order\n(arrival at the app)"]
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["none", "ack", "ack+sync"]
    bars = panels[0].patches
    assert len(bars) == 3 * 2
    assert sorted(b.get_width() for b in bars) == pytest.approx([0, 0, 2.5, 29, 42, 110])
    shown = {t.get_text() for ax in panels for t in ax.texts}
    assert "0" in shown  # a zero is written, not just an invisible bar


def test_outcomes_without_hue_and_with_a_missing_outcome_column():
    frame = pd.DataFrame({"mechanisms": ["a", "b"], "lost": [0, 4]})
    fig = plot_outcomes(frame, "mechanisms")
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="outcome"):
        plot_outcomes(frame, "mechanisms", outcomes=("nope",))


def test_pareto_optimal_points():
    cost = [1, 2, 3, 2, 1]
    lat = [5, 2, 1, 3, 5]
    assert pareto_optimal(cost, lat).tolist() == [True, True, True, False, False]


def test_cost_frontier_marks_optimal_points_within_each_environment():
    fig = plot_cost_frontier(results_frame(), within="network.downlink_loss")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "requests/s at the access layer (req/s)"
    assert "p99 latency" in ax.get_ylabel() and ax.get_yscale() == "log"
    texts = legend_texts(ax)
    assert texts[:4] == ["short polling", "long polling", "push", "hybrid"]
    assert "dominated" in texts
    annotations = {t.get_text() for t in ax.texts}
    assert {"0 %", "20 %"} <= annotations  # each strategy's path is labelled at its ends


def frontier_frame() -> pd.DataFrame:
    """Three configurations, two replications: 'lossy' is fastest and cheapest but loses."""
    rows = []
    for point, (name, rps, p99, lost) in enumerate(
        [
            ("lossy", 10.0, 50.0, (0, 3)),
            ("cheap", 20.0, 400.0, (0, 0)),
            ("fast", 80.0, 90.0, (0, 0)),
        ]
    ):
        for rep in range(2):
            rows.append(
                {
                    "point": point,
                    "config": name,
                    "replication": rep,
                    "seed": rep,
                    "requests_per_s": rps,
                    "latency_p99_ms": p99,
                    "lost": lost[rep],
                }
            )
    return pd.DataFrame(rows)


def frontier_points(ax) -> dict[tuple[float, float], list[str]]:
    """(x, y) → the markers drawn there, filled ('f'), hollow ('h') or crosses ('x')."""
    out: dict[tuple[float, float], list[str]] = {}
    for line in ax.get_lines():
        if line.get_linestyle() != "None" or line.get_marker() in ("|", "_"):
            continue  # lines and error-bar caps
        if line.get_marker() == "x":
            kind = "x"
        else:
            kind = "h" if line.get_markerfacecolor() == "white" else "f"
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            out.setdefault((float(x), float(y)), []).append(kind)
    return out


def test_cost_frontier_excludes_configurations_that_lose_messages():
    ax = plot_cost_frontier(frontier_frame()).axes[0]
    # The staircase joins only the loss-free configurations: (20, 400) and (80, 90).
    (stairs,) = [ln for ln in ax.get_lines() if ln.get_label() == "Pareto frontier"]
    assert sorted(zip(stairs.get_xdata(), stairs.get_ydata(), strict=True)) == [
        (20.0, 400.0),
        (80.0, 90.0),
    ]
    points = frontier_points(ax)
    assert "x" in points[(10.0, 50.0)] and "f" not in points[(10.0, 50.0)]
    assert points[(20.0, 400.0)] == ["f"] and points[(80.0, 90.0)] == ["f"]
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["loses 1.5/run"]  # the series (legend) names it; mean loss per run
    assert any("loses messages" in t for t in legend_texts(ax))


def test_cost_frontier_within_an_environment_never_marks_a_lossy_point_optimal():
    frame = frontier_frame().assign(env="a")
    frame.insert(1, "env_key", 1)
    ax = plot_cost_frontier(frame, within="env_key").axes[0]
    points = frontier_points(ax)
    assert "f" not in points[(10.0, 50.0)]
    assert points[(20.0, 400.0)] == ["f"] and points[(80.0, 90.0)] == ["f"]


def test_cost_frontier_without_a_lost_column_lets_every_configuration_compete():
    ax = plot_cost_frontier(frontier_frame().drop(columns="lost")).axes[0]
    (stairs,) = [ln for ln in ax.get_lines() if ln.get_label() == "Pareto frontier"]
    assert (10.0, 50.0) in set(zip(stairs.get_xdata(), stairs.get_ydata(), strict=True))


def test_frontier_labels_do_not_overlap():
    # Eleven configurations on top of each other (and one far away, which sets the axes'
    # range): their labels must be moved apart.
    near = np.where(np.arange(12) < 11, np.arange(12) * 0.01, 900.0)
    frame = pd.DataFrame(
        {
            "point": range(12),
            "transport.poll_interval_s": np.arange(12) % 4 + 1.0,
            "transport.long_poll_hold_s": np.arange(12) // 4 * 10.0,
            "replication": 0,
            "seed": 0,
            "requests_per_s": 100.0 + near,
            "latency_p99_ms": 200.0 + near,
            "lost": 0,
        }
    )
    fig = plot_cost_frontier(frame)
    texts = [t for t in fig.axes[0].texts if t.get_text()]
    assert len(texts) == 12
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    boxes = [t.get_window_extent(renderer) for t in texts]
    overlaps = sum(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert overlaps == 0


def test_cost_frontier_without_environment_draws_the_staircase():
    frame = results_frame().query("`network.downlink_loss` == 0.05")
    ax = plot_cost_frontier(frame).axes[0]
    assert "Pareto frontier" in legend_texts(ax)


# --- run figures ---------------------------------------------------------------------------


def messages_frame(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "latency_ms": rng.lognormal(np.log(80), 0.8, n),
            "online_at_store": rng.random(n) < 0.9,
            "first_via": rng.choice(["push", "sync"], n),
        }
    )


def test_latency_ecdf_of_one_run_and_of_several_overlaid():
    fig = plot_latency_ecdf(messages_frame())
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 101)
    assert ax.get_ylabel() == "deliveries at or below (%)"
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("online recipients")]
    assert line.get_ydata()[-1] == pytest.approx(100.0)
    fig = plot_latency_ecdf({"push": messages_frame(), "short_poll": messages_frame(50)})
    assert [t.split("\n")[0] for t in legend_texts(fig.axes[0])] == ["push", "short polling"]
    fig = plot_latency_ecdf(messages_frame(), by="first_via")
    assert len(legend_texts(fig.axes[0])) == 2


def test_latency_ecdf_names_its_population_and_counts_against_the_expected_pairs():
    frame = messages_frame(1000).assign(stored=True)
    frame.loc[frame.index[:100], "latency_ms"] = np.nan  # 100 pairs never delivered
    online = frame["online_at_store"]
    delivered_online = int((online & frame["latency_ms"].notna()).sum())
    (label,) = legend_texts(plot_latency_ecdf(frame).axes[0])
    assert label.startswith("online recipients (latency_* metrics)")
    assert f"n = {delivered_online:,} of {int(online.sum()):,} expected" in label
    (label,) = legend_texts(plot_latency_ecdf(frame, online_only=False).axes[0])
    assert label.startswith("every first delivery incl. catch-up")
    assert "n = 900 of 1,000 expected" in label
    # Split by first path: the curves' n, the run's n of expected in the legend title.
    ax = plot_latency_ecdf(frame, by="first_via").axes[0]
    title = ax.get_legend().get_title().get_text()
    assert "online recipients" in title and f"of {int(online.sum()):,} expected" in title


def test_latency_ecdf_counts_only_stored_pairs_as_expected():
    frame = messages_frame(10).assign(stored=[True] * 8 + [False] * 2, online_at_store=True)
    frame.loc[frame.index[8:], "latency_ms"] = np.nan  # never stored: never delivered
    (label,) = legend_texts(plot_latency_ecdf(frame).axes[0])
    assert "n = 8 of 8 expected" in label


def test_latency_ecdf_draws_the_slo_line():
    ax = plot_latency_ecdf(messages_frame(), slo_ms=500).axes[0]
    (slo,) = [ln for ln in ax.get_lines() if ln.get_label() == "SLO 500 ms"]
    assert list(slo.get_xdata()) == [500, 500]
    with pytest.raises(ValueError, match="slo_ms"):
        plot_latency_ecdf(messages_frame(), slo_ms=-1)


def test_latency_ecdf_of_a_run_without_deliveries_says_so():
    fig = plot_latency_ecdf(messages_frame().iloc[0:0])
    assert "no deliveries" in {t.get_text() for t in fig.axes[0].texts}


def load_frame(nodes: int = 2) -> pd.DataFrame:
    rows = []
    for node in range(nodes):
        for t in range(60):
            down = node == 0 and 20 <= t < 30
            rows.append(
                {
                    "t": float(t),
                    "node": node,
                    "up": not down,
                    "queue_store": 0 if down else t % 3,
                    "busy_store": 0 if down else 1,
                    "held_polls": 0,
                    "connections": 0 if down else 100,
                    "pending_acks": 5 if 30 <= t < 40 else 0,
                }
            )
    return pd.DataFrame(rows)


def test_load_timeline_sums_nodes_and_shades_the_fault_window():
    faults = [{"kind": "server_crash", "at_s": 20.0, "down_s": 10.0, "node": 0}]
    fig = plot_load_timeline(load_frame(), faults)
    top, middle, bottom = fig.axes
    assert bottom.get_xlabel() == "simulated time (s)"
    assert top.get_lines()[0].get_ydata().tolist()[:21] == [200] * 20 + [100]
    spans = [p for p in top.patches if p.get_x() == 20.0]
    assert spans and spans[0].get_width() == pytest.approx(10.0)
    assert "server_crash node 0, 10 s" in legend_texts(top)
    assert middle.get_ylabel().startswith("pending ACKs")


def test_load_timeline_zooms_on_the_fault_window():
    faults = [{"kind": "server_crash", "at_s": 20.0, "down_s": 10.0}]
    assert plots.fault_window(faults) == (10.0, 40.0)  # 10 s (≥ the fault's length) around
    assert plots.fault_window(faults, horizon_s=35.0) == (10.0, 35.0)
    assert plots.fault_window(faults, margin=2.0) == (0.0, 50.0)
    assert plots.fault_window([]) is None
    fig = plot_load_timeline(load_frame(), faults, window_s=plots.fault_window(faults))
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "connections"]
    assert line.get_xdata().min() == 10.0 and line.get_xdata().max() == 40.0


def test_latency_tail_is_the_complementary_cdf_down_to_one_in_n():
    frame = pd.DataFrame({"latency_ms": np.arange(1.0, 1001.0), "online_at_store": True})
    ax = plots.plot_latency_tail(frame, slo_ms=500).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    (curve,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("online recipients")]
    x, y = curve.get_xdata(), curve.get_ydata()
    # share slower than the k-th of 1000 sorted values is (1000 - k) / 1000
    assert y[0] == pytest.approx(99.9) and x[0] == 1.0
    assert y[989] == pytest.approx(1.0) and x[989] == 990.0  # the p99 crossing
    assert y[-1] == pytest.approx(0.1) and x[-1] == 999.0  # p99.9 reached, ends at 1/n
    assert "SLO 500 ms" in legend_texts(ax)
    assert ax.get_ylim()[0] < 0.1  # the axis goes below p99.9


def recovery_messages() -> pd.DataFrame:
    """Two messages per second stored from 0 to 30 s; those stored in [10, 15) s wait
    until 20 s (a crash: their recipients were cut off, so offline when stored), the
    others take 0.1 s."""
    t_stored = np.arange(0.0, 30.0, 0.5)
    cut_off = (t_stored >= 10) & (t_stored < 15)
    shown = np.where(cut_off, 20.0, t_stored + 0.1)
    return pd.DataFrame(
        {
            "stored": True,
            "online_at_store": ~cut_off,
            "t_stored": t_stored,
            "t_first_show": shown,
            "latency_ms": (shown - t_stored) * 1000,
        }
    )


def test_recovery_figure_counts_the_backlog_and_marks_the_recovery_time():
    faults = [{"kind": "server_crash", "at_s": 10.0, "down_s": 5.0}]
    fig = plots.plot_recovery(recovery_messages(), faults, recovery_time_s=10.0)
    ax = fig.axes[0]
    (curve,) = [ln for ln in ax.get_lines() if ln.get_label() == "stored, not shown"]
    t, backlog = curve.get_xdata(), curve.get_ydata()
    at = dict(zip(t, backlog, strict=True))
    assert at[14.5] == 10  # ten stored in [10, 15) for cut-off recipients, none shown yet
    # at 19.5 s one more is in flight; at 20 s the ten are shown at once, one in flight
    assert at[19.5] == 11 and at[20.0] == 1
    assert max(backlog[t < 10]) == 1  # one in flight at a time before the crash
    assert any(list(ln.get_xdata()) == [20.0, 20.0] for ln in ax.get_lines())  # 10 + 10 s
    assert "recovered after 10.0 s" in {tx.get_text() for tx in ax.texts}


def test_load_timeline_finds_the_down_window_without_a_fault_list():
    fig = plot_load_timeline(load_frame())
    assert "node 0 down" in legend_texts(fig.axes[0])


def test_load_timeline_marks_an_instant_fault_with_a_line():
    fig = plot_load_timeline(load_frame(1), [{"kind": "gateway_crash", "at_s": 12.0}])
    assert any(list(ln.get_xdata()) == [12.0, 12.0] for ln in fig.axes[0].get_lines())


# --- files --------------------------------------------------------------------------------


def test_save_figure_writes_png_at_150_dpi_and_a_reproducible_svg(tmp_path):
    paths = save_figure(plot_latency(results_frame()), tmp_path / "figs", "latency")
    png, svg = paths
    assert (png.name, svg.name) == ("latency.png", "latency.svg")
    assert png_size(png) == (960, 600)  # 6.4 × 4 in at 150 dpi
    assert png_dpi(png) == pytest.approx(150, abs=0.1)
    ET.parse(svg)  # well-formed
    first = svg.read_bytes()
    save_figure(plot_latency(results_frame()), tmp_path / "figs", "latency")
    assert svg.read_bytes() == first


def test_sweep_figures_for_a_loss_sweep(tmp_path):
    files = sweep_figures(results_frame(), tmp_path)
    names = sorted({p.stem for p in files})
    assert names == [
        "cost_frontier",
        "empty_polls_vs_downlink_loss",
        "latency_vs_downlink_loss",
        "outcomes",
        "requests_vs_downlink_loss",
    ]
    assert {p.suffix for p in files} == {".png", ".svg"} and all(p.is_file() for p in files)


def test_sweep_figures_split_further_keys_into_separate_files(tmp_path):
    a = results_frame().assign(**{"reliability.sync": True})
    b = results_frame().assign(**{"reliability.sync": False})
    frame = pd.concat([a, b.assign(point=b["point"] + 100)], ignore_index=True)
    cols = list(frame.columns)
    cols.insert(cols.index("replication"), cols.pop(cols.index("reliability.sync")))
    files = sweep_figures(frame[cols], tmp_path)
    stems = {p.stem for p in files}
    assert "latency_vs_downlink_loss__sync-True" in stems
    assert "latency_vs_downlink_loss__sync-False" in stems
    assert "cost_frontier" in stems


def test_sweep_figures_with_only_categorical_keys_draw_outcomes_and_frontier(tmp_path):
    frame = pd.DataFrame(
        {
            "point": [0, 0, 1, 1],
            "reliability.sync": [True, True, False, False],
            "replication": [0, 1, 0, 1],
            "seed": [1, 2, 1, 2],
            "lost": [0, 0, 12, 9],
            "latency_p99_ms": [900.0, 950.0, 400.0, 420.0],
            "requests_per_s": [30.0, 31.0, 25.0, 26.0],
        }
    )
    stems = sorted({p.stem for p in sweep_figures(frame, tmp_path)})
    assert stems == ["cost_frontier", "outcomes"]


def write_sweep_folder(directory: Path) -> Path:
    directory.mkdir(parents=True)
    results_frame().to_parquet(directory / "results.parquet", index=False)
    return directory


def test_immodel_plot_on_a_sweep_folder_prints_the_files(tmp_path, capsys):
    folder = write_sweep_folder(tmp_path / "sweep")
    assert main(["plot", str(folder)]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 10
    assert all(Path(p).is_file() and Path(p).parent == folder / "figures" for p in printed)


def test_immodel_plot_on_a_run_folder(tmp_path, capsys):
    from immodel import Scenario, run

    scenario = Scenario.load(
        "crash",
        {
            "workload.users": 40,
            "duration_s": 20.0,
            "drain_s": 10.0,
            "faults": [{"kind": "server_crash", "at_s": 5.0, "down_s": 4.0}],
        },
    )
    folder = run(scenario).write(tmp_path / "run")
    assert cmd_plot(SimpleNamespace(directory=str(folder), slo_ms=500.0)) == 0
    printed = capsys.readouterr().out.split()
    stems = ["latency_ecdf", "latency_tail", "load_timeline", "load_timeline_fault", "recovery"]
    assert sorted(Path(p).name for p in printed) == sorted(
        f"{s}.{ext}" for s in stems for ext in ("png", "svg")
    )
    assert png_size(folder / "figures" / "load_timeline.png")[0] == 960
    assert "SLO 500 ms" in (folder / "figures" / "latency_tail.svg").read_text()
    # the zoomed timeline spans the fault window (10 s either side of the [5, 9] s crash)
    # and the recovery: until 5 s + 1.1 × the longer of recovery and reconnect, ≤ 30 s
    import json

    summary = json.loads((folder / "summary.json").read_text())
    took = [summary[k] for k in ("recovery_time_s", "reconnect_time_s") if summary[k]]
    end = min(max(19.0, 5.0 + 1.1 * max(took, default=0.0)), 30.0)
    (connections,) = [
        ln
        for ln in dict(plots.run_figures(folder))["load_timeline_fault"].axes[0].get_lines()
        if ln.get_label() == "connections"
    ]
    assert connections.get_xdata().min() >= 0.0
    assert end - 1.0 <= connections.get_xdata().max() <= end


def test_immodel_plot_rejects_a_bad_slo_with_one_error_line(tmp_path, capsys):
    folder = write_sweep_folder(tmp_path / "sweep")
    assert main(["plot", str(folder), "--slo-ms", "-5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --slo-ms must be a positive") and err.count("\n") == 1


def test_immodel_plot_draws_the_slo_on_sweep_latency_figures(tmp_path, capsys):
    folder = write_sweep_folder(tmp_path / "sweep")
    assert main(["plot", str(folder), "--slo-ms", "500"]) == 0
    capsys.readouterr()
    for stem in ("latency_vs_downlink_loss", "cost_frontier"):
        assert "SLO 500 ms" in (folder / "figures" / f"{stem}.svg").read_text()


@pytest.mark.parametrize("make", ["empty", "missing", "file", "unfinished"])
def test_immodel_plot_on_anything_else_is_one_error_line_and_status_2(tmp_path, capsys, make):
    target = tmp_path / "x"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("hello")
    elif make == "unfinished":
        target.mkdir()
        (target / "sweep.toml").write_text("")
    assert main(["plot", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    with pytest.raises(UserError):
        cmd_plot(SimpleNamespace(directory=str(target)))


def test_one_style_for_every_figure():
    assert plots.STYLE["figure.figsize"] == (6.4, 4.0)
    assert plots.STYLE["savefig.dpi"] == 150
    assert plots.SERIES_STYLE["push"]["color"] != plots.SERIES_STYLE["short_poll"]["color"]
    # the style is applied per figure and does not leak into the caller's rcParams
    before = dict(matplotlib.rcParams)
    plot_latency(results_frame())
    assert matplotlib.rcParams["figure.figsize"] == before["figure.figsize"]


def test_sweep_figures_list_every_combination_of_categorical_keys_in_one_outcomes_figure(
    tmp_path,
):
    rows = [
        {"point": i, "transport.kind": kind, "reliability.sync": sync, "replication": 0}
        for i, (kind, sync) in enumerate(
            [(k, s) for k in ("push", "long_poll") for s in (True, False)]
        )
    ]
    frame = pd.DataFrame(rows).assign(
        seed=1, lost=[0, 3, 0, 9], latency_p99_ms=100.0, requests_per_s=50.0
    )
    files = sweep_figures(frame, tmp_path)
    assert sorted({p.stem for p in files}) == ["cost_frontier", "outcomes"]
    fig = plot_outcomes(frame, ["transport.kind", "reliability.sync"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "push, timestamp/seq sync on",
        "push, timestamp/seq sync off",
        "long polling, timestamp/seq sync on",
        "long polling, timestamp/seq sync off",
    ]


def test_latency_figures_name_their_population_in_the_footnote():
    for fig in (plot_latency(results_frame()), plot_cost_frontier(results_frame())):
        assert "latency over online recipients" in fig._supxlabel.get_text()
    fig = plot_metric(results_frame(), "requests_per_s", "network.downlink_loss")
    assert "online recipients" not in fig._supxlabel.get_text()

"""Tests of ``immodel demo`` (:mod:`immodel.experiments.demo`) and its report.

They run the demo at ``scale="tiny"`` (20 users, 10 s, two loss rates, two replications:
a few seconds) and check what a user gets: an ordinary sweep folder, the figures, a
report that embeds them and quotes the table, the headline table on stdout, and that a
second run reuses every finished run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from immodel.cli import main
from immodel.errors import UserError
from immodel.experiments import demo
from immodel.experiments.demo import SCALES, TRANSPORTS, demo_sweep, run_demo
from immodel.experiments.report import (
    format_markdown_table,
    format_text_table,
    headline_table,
)
from immodel.experiments.sweep import load_sweep

KEYS = ["network.downlink_loss", "transport.kind"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    return run_demo(out, scale="tiny", workers=1, progress=False)


def test_the_demo_sweep_is_transports_by_loss_rates_and_validates():
    for name, scale in SCALES.items():
        sweep = load_sweep(demo_sweep(name))
        assert sweep.grid_keys == tuple(KEYS)
        assert dict(sweep.grid)["transport.kind"] == TRANSPORTS
        assert dict(sweep.grid)["network.downlink_loss"] == scale.losses
        assert sweep.replications == scale.replications >= 2  # so that CIs exist
    assert SCALES["default"].losses == (0.0, 0.05, 0.1, 0.2)


def test_tiny_demo_writes_a_sweep_folder_with_one_row_per_point_and_replication(tiny):
    scale = SCALES["tiny"]
    assert len(tiny.results) == len(scale.losses) * len(TRANSPORTS) * scale.replications
    assert (tiny.out / "results.parquet").is_file() and (tiny.out / "sweep.toml").is_file()
    frame = pd.read_parquet(tiny.out / "results.parquet")
    assert list(frame.columns[:5]) == ["point", *KEYS, "replication", "seed"]


def test_tiny_demo_draws_the_standard_figures_as_png_and_svg(tiny):
    stems = {p.stem for p in tiny.figures}
    assert stems == {
        "latency_vs_downlink_loss",
        "requests_vs_downlink_loss",
        "empty_polls_vs_downlink_loss",
        "outcomes",
        "cost_frontier",
        "latency_ecdf_by_transport",
    }
    for png in tiny.figures:
        assert png.suffix == ".png" and png.is_file() and png.with_suffix(".svg").is_file()
    for kind in TRANSPORTS:  # the ECDF runs keep their records for `immodel plot`
        assert (tiny.out / "runs" / kind / "messages.parquet").is_file()


def test_tiny_demo_report_embeds_the_figures_and_the_headline_table(tiny):
    text = tiny.report.read_text(encoding="utf-8")
    assert text.startswith("# immodel demo")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == len(tiny.figures)
    assert all((tiny.report.parent / link).is_file() for link in links)
    assert format_markdown_table(tiny.table, KEYS) in text
    assert "## What it shows" in text
    # The findings quote the table, not numbers written in advance.
    p50 = tiny.table.set_index(KEYS).loc[(0.0, "push"), "latency_p50_ms"]
    assert f"{p50:.0f} ms (push)" in text


def test_headline_table_has_latency_requests_and_lost_per_strategy_and_loss(tiny):
    table = tiny.table
    assert len(table) == len(SCALES["tiny"].losses) * len(TRANSPORTS)
    for column in ("latency_p50_ms", "latency_p99_ms", "requests_per_s", "lost"):
        assert column in table and f"{column}_pm" in table
    assert (table["n"] == SCALES["tiny"].replications).all()
    means = tiny.results.groupby(KEYS, sort=False)["requests_per_s"].mean().to_numpy()
    assert table["requests_per_s"].to_numpy() == pytest.approx(means)
    text = format_text_table(table, KEYS)
    assert "short polling" in text and "p99 latency (ms)" in text


def test_a_second_demo_run_reuses_every_finished_run(tiny):
    again = run_demo(tiny.out, scale="tiny", workers=1, progress=False)
    assert again.runs_reused == again.runs_total == len(tiny.results)
    pd.testing.assert_frame_equal(
        again.results.drop(columns="wall_s"), tiny.results.drop(columns="wall_s")
    )


def test_the_demo_refuses_a_folder_that_holds_another_sweep(tiny):
    other = demo.DemoScale(**{**SCALES["tiny"].__dict__, "users": 21})
    with pytest.raises(UserError, match="different sweep"):
        run_demo(tiny.out, scale=other, workers=1, progress=False)
    with pytest.raises(UserError, match="scale"):
        run_demo(tiny.out, scale="huge")


def test_immodel_demo_prints_the_headline_table_and_where_the_report_is(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(SCALES, "default", SCALES["tiny"])  # the CLI wiring, in seconds
    out = tmp_path / "demo-output"
    assert main(["demo", "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "p50 latency (ms)" in printed and "lost (per run)" in printed
    for kind in ("short polling", "long polling", "push", "hybrid"):
        assert kind in printed
    assert f"report:  {out / 'report.md'}" in printed
    assert (out / "report.md").is_file()


def test_immodel_demo_rejects_bad_workers_with_status_2(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "x"), "--workers", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --workers")
    assert not Path(tmp_path / "x").exists()


def test_headline_table_without_replications_has_no_interval():
    frame = pd.DataFrame(
        {
            "point": [0, 1],
            "transport.kind": ["push", "short_poll"],
            "replication": [0, 0],
            "seed": [1, 1],
            "latency_p50_ms": [80.0, 1000.0],
            "lost": [0, 0],
        }
    )
    table = headline_table(frame, ["transport.kind"])
    assert table["latency_p50_ms_pm"].isna().all()
    md = format_markdown_table(table, ["transport.kind"])
    assert "| push | 80 | 0.0 |" in md and "±" not in md


def test_the_latency_distribution_runs_are_the_sweep_s_own_runs_not_simulated_again(
    tiny, monkeypatch
):
    def must_not_run(*args):
        raise AssertionError("an ECDF run was simulated a second time")

    monkeypatch.setattr(demo, "_run_to_folder", must_not_run)
    scale = SCALES["tiny"]
    sweep = load_sweep(demo_sweep(scale))
    frames = demo._ecdf_runs(sweep, scale, tiny.out, workers=1)  # finds every folder done
    assert sorted(frames) == sorted(TRANSPORTS)
    rows = tiny.results[
        (tiny.results["replication"] == 0) & (tiny.results["network.downlink_loss"] == 0.2)
    ]
    for kind, messages in frames.items():
        summary = json.loads((tiny.out / "runs" / kind / "summary.json").read_text())
        row = rows[rows["transport.kind"] == kind].iloc[0]
        # The same run: its records and its row in results.parquet agree exactly.
        assert len(messages) == summary["deliveries_expected"] == row["deliveries_expected"]
        for metric in ("messages_sent", "deliveries", "sim_events", "latency_p99_ms"):
            assert summary[metric] == row[metric], (kind, metric)

"""The data dictionary (:mod:`immodel.columns`): complete for what a run and a sweep
produce, and ``docs/columns.md`` generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from immodel import Scenario, run
from immodel.columns import TABLES, columns_markdown, undocumented
from immodel.experiments.sweep import run_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rich_result():
    """A small run that fills every record: groups, hybrid clients, loss, a crash, churn."""
    return run(
        Scenario.load(
            "hybrid",
            {
                "workload.users": 40,
                "duration_s": 6.0,
                "workload.group_share": 0.3,
                "workload.group_size": 8,
                "network.downlink_loss": 0.05,
                "faults": [{"kind": "server_crash", "at_s": 2, "down_s": 1}],
            },
        )
    )


@pytest.mark.parametrize("table", ["messages", "requests", "load", "trace"])
def test_every_record_column_of_a_run_is_documented(rich_result, table):
    columns = list(getattr(rich_result, table).columns)
    assert columns, table
    assert undocumented(table, columns) == []


def test_every_summary_metric_is_documented_as_a_results_column(rich_result):
    assert undocumented("results", list(rich_result.summary)) == []


def test_every_column_of_a_sweep_results_file_is_documented(tmp_path):
    sweep = {
        "scenario": "baseline",
        "replications": 1,
        "set": {"workload.users": 20, "duration_s": 2.0, "drain_s": 5.0},
        "grid": {"transport.kind": ["push", "short_poll"]},
    }
    frame = run_sweep(sweep, tmp_path / "out", workers=1, progress=False)
    assert undocumented("results", list(frame.columns)) == []


def test_an_undocumented_column_is_caught():
    assert undocumented("messages", ["msg_id", "brand_new_column"]) == ["brand_new_column"]
    assert undocumented("load", ["queue_store", "queue_nowhere"]) == ["queue_nowhere"]


def test_docs_columns_md_is_generated_from_the_dictionary():
    text = (ROOT / "docs" / "columns.md").read_text(encoding="utf-8")
    assert text == columns_markdown(), (
        "docs/columns.md is out of date: regenerate it with `immodel columns > docs/columns.md`"
    )
    for name, table in TABLES.items():
        assert f"## {name} (`{table.file}`)" in text

"""``drain_s = "auto"``: the run uses the drain the scenario needs and says so; a shorter
explicit drain is warned about (Python ``UserWarning``, one ``warning:`` line on the
command line)."""

from __future__ import annotations

import json
import warnings

import pytest

from immodel import Scenario, run
from immodel.cli import main
from immodel.errors import DrainWarning
from immodel.sim.faults import required_drain_s

SMALL = {"workload.users": 30, "duration_s": 5.0}


def test_auto_drain_runs_the_required_drain_and_the_summary_says_so(tmp_path):
    scenario = Scenario.load("lossy-mobile", SMALL)
    required = required_drain_s(scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DrainWarning)  # auto never warns
        result = run(scenario)
    assert result.summary["drain_auto"] is True
    assert result.summary["drain_s_used"] == required == result.summary["drain_s_required"]
    assert result.summary["horizon_s"] == pytest.approx(5.0 + required)
    # The result and the written scenario carry the number, so a re-run uses it again.
    assert result.scenario["drain_s"] == required
    result.write(tmp_path)
    saved = Scenario.load(tmp_path / "scenario.toml")
    assert saved["drain_s"] == required and not saved.drain_is_auto


def test_a_drain_shorter_than_required_warns_with_both_numbers():
    scenario = Scenario.load("lossy-mobile", {**SMALL, "drain_s": 10.0})
    required = required_drain_s(scenario)
    with pytest.warns(DrainWarning) as record:
        result = run(scenario)
    assert len(record) == 1
    text = str(record[0].message)
    assert "drain_s = 10 s" in text and f"{required:g} s" in text
    assert issubclass(DrainWarning, UserWarning)
    assert result.summary["drain_auto"] is False
    assert result.summary["drain_s_used"] == 10.0
    assert result.summary["drain_s_required"] == required


def test_a_drain_at_least_the_required_one_does_not_warn():
    scenario = Scenario.load("baseline", SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DrainWarning)
        result = run(scenario.with_overrides({"drain_s": required_drain_s(scenario)}))
    assert result.summary["drain_auto"] is False


def test_the_cli_prints_one_warning_line_for_a_short_drain_and_none_for_auto(capsys):
    argv = ["run", "baseline", "--set", "workload.users=30", "--set", "duration_s=5"]
    assert main([*argv, "--set", "drain_s=3", "--json"]) == 0
    captured = capsys.readouterr()
    warning_lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("warning: drain_s = 3 s")
    assert json.loads(captured.out)["drain_s_used"] == 3.0
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    assert "(auto)" in captured.out  # the summary table names the drain used


def test_a_sweep_with_the_auto_drain_records_the_number_each_point_used(tmp_path):
    from immodel.experiments.sweep import run_sweep

    sweep = {
        "scenario": "baseline",
        "set": {"workload.users": 20, "duration_s": 2.0},
        "grid": {"transport.kind": ["push", "short_poll"]},
    }
    frame = run_sweep(sweep, tmp_path / "out", workers=1, progress=False)
    assert frame["drain_auto"].tolist() == [True, True]
    assert frame["drain_s_used"].dtype.kind == "f"
    for kind, used in zip(frame["transport.kind"], frame["drain_s_used"], strict=True):
        scenario = Scenario.load("baseline", {**sweep["set"], "transport.kind": kind})
        assert used == required_drain_s(scenario)
    assert frame["drain_s_used"].nunique() == 2  # each point its own drain

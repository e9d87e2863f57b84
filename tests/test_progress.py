"""Progress reports during a run: they arrive, cover the whole horizon, and change
nothing in the records."""

from __future__ import annotations

import pytest

from immodel import Scenario, run
from immodel.sim import progress as progress_module


def test_progress_reports_cover_the_run_and_leave_records_unchanged(monkeypatch):
    monkeypatch.setattr(progress_module, "SLICE_WALL_S", 0.0)  # report at every wake-up
    scenario = Scenario.load(
        "short-poll", {"workload.users": 50, "duration_s": 20.0, "drain_s": 30.0}
    )
    plain = run(scenario)
    reports = []
    watched = run(scenario, progress=lambda *r: reports.append(r))
    assert len(reports) > 10
    times = [now for now, _, _ in reports]
    assert times == sorted(times)
    assert reports[-1][0] == reports[-1][1] == pytest.approx(50.0)
    events = [e for _, _, e in reports]
    assert events == sorted(events) and events[-1] > 0
    assert watched.trace_hash() == plain.trace_hash()
    assert watched.messages.equals(plain.messages)
    assert watched.summary["sim_events"] == plain.summary["sim_events"]


def test_the_command_line_bar_shows_simulated_time_events_per_second_and_eta():
    import io

    from immodel.sim.progress import cli_reporter

    stream = io.StringIO()
    report, close = cli_reporter(stream, delay_s=0.0)
    for now in (0.0, 25.0, 50.0, 100.0):
        report(now, 100.0, int(now * 1000))
    close()
    text = stream.getvalue()
    assert "simulating" in text and "100/100 sim s" in text
    assert "events/s" in text
    assert "<" in text  # elapsed<remaining: the ETA


def test_the_cli_run_with_progress_leaves_stdout_clean(capsys):
    import json

    from immodel.cli import main

    argv = ["run", "baseline", "--set", "workload.users=20", "--set", "duration_s=3"]
    assert main([*argv, "--progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["drain_auto"] is True  # stdout is the summary only

"""``immodel sweep`` options: ``--set``, ``--replications``, several files, ``--dry-run``,
progress lines off a terminal, and one warning for drains shorter than required."""

from __future__ import annotations

import functools
import textwrap

import numpy as np
import pandas as pd
import pytest

import immodel.experiments.cli as sweep_cli
import immodel.experiments.sweep as sweep_module
from immodel.cli import main
from immodel.errors import ConfigError
from immodel.experiments.sweep import load_sweep, run_sweep, with_overrides
from immodel.scenario import Scenario

SWEEP = """
scenario = "baseline"
replications = 3
[set]
duration_s = 5.0
"workload.users" = 30
[grid]
"network.downlink_loss" = [0.0, 0.3]
"transport.kind" = ["push", "long_poll"]
"""


def fake_runner(scenario: Scenario) -> dict:
    rng = np.random.default_rng(scenario["seed"])
    return {
        "messages_sent": int(rng.integers(100, 200)),
        "users": scenario["workload.users"],
        "latency_p99_ms": 100.0 + rng.random(),
    }


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(
        sweep_cli, "run_sweep", functools.partial(run_sweep, runner=fake_runner, progress=False)
    )


def write(tmp_path, name="loss.toml", text=SWEEP):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_set_fixes_a_key_at_every_point_and_takes_it_out_of_the_grid(tmp_path, fake, capsys):
    path = write(tmp_path)
    argv = ["sweep", str(path), "--set", "workload.users=12", "--set", "transport.kind=push"]
    assert main([*argv, "--replications", "2"]) == 0
    err = capsys.readouterr().err
    assert "2 point(s) × 2 replication(s) = 4 runs" in err
    # Another sweep than the file's: its own folder beside the file's default one.
    folders = [p for p in tmp_path.iterdir() if p.name.startswith("loss-results-")]
    assert len(folders) == 1 and not (tmp_path / "loss-results").exists()
    frame = pd.read_parquet(folders[0] / "results.parquet")
    assert len(frame) == 4
    assert set(frame["users"]) == {12}
    assert "transport.kind" not in frame.columns  # no longer a grid key


def test_replications_alone_keeps_the_file_s_folder_and_seeds(tmp_path, fake, capsys):
    path = write(tmp_path)
    assert main(["sweep", str(path), "--replications", "1"]) == 0
    one = pd.read_parquet(tmp_path / "loss-results" / "results.parquet")
    assert main(["sweep", str(path)]) == 0  # the file's 3 replications add 2 per point
    three = pd.read_parquet(tmp_path / "loss-results" / "results.parquet")
    assert (len(one), len(three)) == (4, 12)
    first = three[three["replication"] == 0].reset_index(drop=True)
    assert first["seed"].tolist() == one["seed"].tolist()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--set", "workload.users=1e3"], "--set workload.users must be an integer"),
        (["--set", "seed=4"], "--set cannot set 'seed'"),
        (["--set", "nonsense=1"], "unknown scenario key 'nonsense'"),
        (["--replications", "0"], "--replications must be an integer ≥ 1"),
    ],
)
def test_bad_sweep_options_exit_2_with_one_error_line(tmp_path, fake, capsys, extra, fragment):
    path = write(tmp_path)
    assert main(["sweep", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err


def test_several_sweep_files_run_in_turn_each_into_its_folder(tmp_path, fake, capsys):
    a = write(tmp_path, "a.toml")
    b = write(tmp_path, "b.toml", SWEEP.replace("replications = 3", "replications = 1"))
    assert main(["sweep", str(a), str(b)]) == 0
    assert len(pd.read_parquet(tmp_path / "a-results" / "results.parquet")) == 12
    assert len(pd.read_parquet(tmp_path / "b-results" / "results.parquet")) == 4
    assert main(["sweep", str(a), str(b), "--out", str(tmp_path / "x")]) == 2
    assert "--out takes one sweep file" in capsys.readouterr().err


def test_a_bad_second_file_stops_before_the_first_runs(tmp_path, fake, capsys):
    a = write(tmp_path, "a.toml")
    b = write(tmp_path, "b.toml", 'scenario = "baseline"\nreplicatons = 2\n')
    assert main(["sweep", str(a), str(b)]) == 2
    assert not (tmp_path / "a-results").exists()
    capsys.readouterr()


def test_dry_run_lists_the_runs_and_an_estimate_and_runs_nothing(tmp_path, capsys, monkeypatch):
    calls = []

    def fake_estimate(scenario, budget_s):
        calls.append(scenario["transport.kind"])
        return 30.0 if scenario["transport.kind"] == "push" else 90.0

    monkeypatch.setattr(sweep_cli, "estimate_run_s", fake_estimate)
    path = write(tmp_path)
    assert main(["sweep", str(path), "--dry-run", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 point(s) × 3 replication(s) = 12 runs" in out
    assert out.count("3 run(s) to do") == 4
    assert 'point 1: network.downlink_loss=0.0, transport.kind="long_poll"' in out
    # 6 push runs × 30 s + 6 long-poll runs × 90 s = 720 s of CPU, 360 s on 2 workers.
    assert "estimated: 12 min of CPU, about 6 min on 2 worker(s)" in out
    assert "simulated here for 0.5 s" in out
    assert len(calls) == 4
    assert not (tmp_path / "loss-results").exists()


def test_estimate_run_s_times_a_short_run_and_extrapolates_a_long_one():
    short = Scenario.load("baseline", {"workload.users": 20, "duration_s": 2.0, "drain_s": 1.0})
    assert 0 < sweep_module.estimate_run_s(short, budget_s=5.0) < 5.0
    long = Scenario.load("short-poll", {"workload.users": 2000, "duration_s": 3000.0})
    estimate = sweep_module.estimate_run_s(long, budget_s=0.3)
    # Extrapolated, not run: far beyond the calibration budget.
    assert estimate > 5.0


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep_module, "PROGRESS_EVERY_S", 0.0)
    path = write(tmp_path)
    run_sweep(load_sweep(path), tmp_path / "out", workers=1, runner=fake_runner)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("sweep: ")]
    assert len(lines) == 12
    assert lines[-1].startswith("sweep: 12/12 runs done (100 %)")
    assert "runs/min" in lines[0] and "left" in lines[0]


def test_one_warning_for_points_whose_drain_is_shorter_than_required(tmp_path, fake, capsys):
    text = SWEEP + '\n"drain_s" = [1.0]\n'
    path = write(tmp_path, text=text)
    assert main(["sweep", str(path)]) == 0
    warnings = [x for x in capsys.readouterr().err.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 1
    assert "shorter than required at 4 of 4 point(s)" in warnings[0]


def test_with_overrides_revalidates_every_point():
    sweep = load_sweep(
        {
            "scenario": "baseline",
            "set": {"workload.users": 40, "workload.group_share": 0.5},
            "grid": {"workload.group_size": [10, 20]},
        }
    )
    with pytest.raises(ConfigError, match=r"group_size must be ≤ workload\.users"):
        with_overrides(sweep, {"workload.users": 15})


def test_an_out_that_cannot_be_written_fails_before_any_run(tmp_path, fake, capsys):
    path = write(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["sweep", str(path), "--out", str(blocker / "below")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: the output folder") and "cannot be written" in err[0]
    assert main(["sweep", str(path), "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_run_sweep_warns_once_in_python_for_short_drains(tmp_path):
    from immodel.errors import DrainWarning

    sweep = {
        "scenario": "baseline",
        "set": {"workload.users": 20, "duration_s": 2.0, "drain_s": 1.0},
        "grid": {"transport.kind": ["push", "long_poll"]},
    }
    with pytest.warns(DrainWarning) as record:
        run_sweep(sweep, tmp_path / "out", workers=1, runner=fake_runner, progress=False)
    assert len(record) == 1
    assert "shorter than required at 2 of 2 point(s)" in str(record[0].message)

"""``immodel sweep`` end to end through :func:`immodel.cli.main`.

Bad input exits 2 with one ``error:`` line; a sweep prints one line per grid point and
where its results are; a failing run exits 1 with a replay command. The runner is
swapped for a fake one, except in the last test, which needs the simulator.
"""

from __future__ import annotations

import functools
import shlex
import textwrap

import numpy as np
import pandas as pd
import pytest

import immodel.experiments.cli as sweep_cli
from immodel.cli import build_parser, main
from immodel.experiments import load_sweep
from immodel.experiments.sweep import SUMMARY_KEYS, run_sweep
from immodel.scenario import Scenario

SWEEP = """
scenario = "baseline"
replications = 2
[set]
duration_s = 5.0
[grid]
"network.downlink_loss" = [0.0, 0.3]
"transport.kind" = ["push", "long_poll"]
"""


def fake_runner(scenario: Scenario) -> dict:
    """Deterministic in the scenario's values and seed."""
    rng = np.random.default_rng(scenario["seed"])
    sent = int(rng.integers(100, 200))
    return {
        "messages_sent": sent,
        "lost": round(sent * scenario["network.downlink_loss"]),
        "latency_p99_ms": 100.0 + rng.random(),
        "requests_per_s": sent / 5.0,
    }


def lossy_long_poll_fails(scenario: Scenario) -> dict:
    if scenario["transport.kind"] == "long_poll" and scenario["network.downlink_loss"] > 0:
        raise ArithmeticError("hold timer went negative")
    return fake_runner(scenario)


@pytest.fixture
def with_runner(monkeypatch):
    def use(runner):
        monkeypatch.setattr(sweep_cli, "run_sweep", functools.partial(run_sweep, runner=runner))

    return use


def write_sweep(tmp_path, text=SWEEP):
    path = tmp_path / "loss.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('scenario = "baseline"\nreplicatons = 2\n', "did you mean 'replications'"),
        (
            'scenario = "baseline"\n[grid]\n"network.downlink_loss" = [0.1, -0.5]\n',
            "network.downlink_loss must be a number in [0, 1], got -0.5",
        ),
        ('scenario = "baseline"\n[grid]\n"transport.kind" = []\n', "empty list"),
        ('scenario = "baseline"\nreplications = 0\n', "replications must be an integer ≥ 1"),
        ('scenario = "missing.toml"\n', "scenario file 'missing.toml' does not exist"),
        ('scenario = "baseline"\n[set]\n"transport.kind" = "smoke"\n', "transport.kind must be"),
    ],
)
def test_invalid_sweep_exits_2_with_one_error_line(tmp_path, capsys, text, expected):
    path = write_sweep(tmp_path, text)
    assert main(["sweep", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: loss.toml: ")
    assert expected in captured.err
    assert not (tmp_path / "loss-results").exists()  # nothing written before validation


def test_missing_sweep_file_and_bad_workers_exit_2(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err.startswith("error: sweep file ")
    path = write_sweep(tmp_path)
    assert main(["sweep", str(path), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --workers must be an integer ≥ 1, got 0\n"


def test_sweep_prints_a_line_per_point_and_the_results_path(tmp_path, capsys, with_runner):
    with_runner(fake_runner)
    path = write_sweep(tmp_path)
    assert main(["sweep", str(path), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    out = tmp_path / "loss-results"
    assert f"4 point(s) × 2 replication(s) = 8 runs; 0 already in {out}, 8 to run" in captured.err
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["point", "network.downlink_loss", "transport.kind", "n"]
    assert [line.split()[:4] for line in lines[1:5]] == [
        ["0", "0", "push", "2"],
        ["1", "0", "long_poll", "2"],
        ["2", "0.3", "push", "2"],
        ["3", "0.3", "long_poll", "2"],
    ]
    assert lines[5] == f"results: {out / 'results.parquet'} (8 rows)"
    frame = pd.read_parquet(out / "results.parquet")
    means = frame.groupby("point")["lost"].mean()
    assert lines[3].split()[4] == f"{means[2]:.4g}"  # the table shows replication means

    assert main(["sweep", str(path)]) == 0  # finished: nothing to run again
    assert f"= 8 runs; 8 already in {out}, 0 to run" in capsys.readouterr().err


def test_changed_sweep_into_the_same_out_exits_2(tmp_path, capsys, with_runner):
    with_runner(fake_runner)
    path = write_sweep(tmp_path)
    out = tmp_path / "o"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    path.write_text(SWEEP.replace("[0.0, 0.3]", "[0.0, 0.3, 0.5]"))
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "network.downlink_loss" in err and "another --out" in err


def test_failing_runs_exit_1_with_replay_commands_and_keep_the_rest(tmp_path, capsys, with_runner):
    with_runner(lossy_long_poll_fails)
    path = write_sweep(tmp_path)
    assert main(["sweep", str(path), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    replays = [line.split("replay: ", 1)[1] for line in err.splitlines() if "replay: " in line]
    assert len(replays) == 2
    assert "ArithmeticError: hold timer went negative" in err
    assert "failures.json" in err
    frame = pd.read_parquet(tmp_path / "loss-results" / "results.parquet")
    assert sorted(set(frame["point"])) == [0, 1, 2] and len(frame) == 6

    # Each replay command rebuilds exactly the scenario that failed.
    sweep = load_sweep(path)
    failed = {t.scenario for t in sweep.tasks() if t.point == 3}
    for replay in replays:
        words = shlex.split(replay)
        assert words[:3] == ["immodel", "run", "baseline"]
        args = build_parser().parse_args(words[1:])
        assert Scenario.load(args.scenario, args.overrides, seed=args.seed) in failed

    with_runner(fake_runner)  # the bug is fixed: only the failed runs are computed
    assert main(["sweep", str(path), "--workers", "1"]) == 0
    assert "6 already in" in capsys.readouterr().err


def test_tiny_real_sweep_runs_the_simulator_end_to_end(tmp_path, capsys):
    pytest.importorskip("immodel.sim.model")
    path = write_sweep(
        tmp_path,
        """
        scenario = "baseline"
        replications = 2
        [set]
        "workload.users" = 50
        duration_s = 5.0
        drain_s = 5.0
        [grid]
        "transport.kind" = ["push", "short_poll"]
        """,
    )
    assert main(["sweep", str(path), "--workers", "2"]) == 0
    frame = pd.read_parquet(tmp_path / "loss-results" / "results.parquet")
    assert len(frame) == 4
    assert set(SUMMARY_KEYS) <= set(frame.columns)
    assert frame.groupby("replication")["seed"].nunique().eq(1).all()
    assert (frame["messages_sent"] > 0).all()
    assert (frame["deliveries"] <= frame["deliveries_expected"]).all()
    # Same seed, same scenario: the simulator is deterministic, so a rerun elsewhere matches.
    again = tmp_path / "again"
    assert main(["sweep", str(path), "--workers", "1", "--out", str(again)]) == 0
    pd.testing.assert_frame_equal(
        frame.drop(columns="wall_s"),
        pd.read_parquet(again / "results.parquet").drop(columns="wall_s"),
    )

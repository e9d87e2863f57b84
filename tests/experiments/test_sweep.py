"""Sweep files, common-random-number seeds, the result folder, resume and the mismatch check.

Runs use a fake runner (a deterministic function of the scenario's values and seed) in
this process (workers=1), so these tests do not need the simulator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immodel.cli import build_parser
from immodel.errors import ConfigError, UserError
from immodel.experiments import SweepFailed, collect_results, load_sweep, run_sweep
from immodel.experiments.sweep import SUMMARY_KEYS, replication_seeds, sweep_status
from immodel.scenario import Scenario

HERE = Path(__file__).parent

SWEEP = """
scenario = "baseline"
replications = 3
seed = 7
description = "loss × transport"
[set]
duration_s = 10.0
"workload.users" = 50
[grid]
"network.downlink_loss" = [0.0, 0.1]
"transport.kind" = ["push", "long_poll", "short_poll"]
"""

KIND_MS = {"push": 50.0, "long_poll": 80.0, "short_poll": 1000.0, "hybrid": 60.0}


def fake_runner(scenario: Scenario) -> dict:
    """Deterministic in the scenario's values and seed; only ``wall_s`` is noise."""
    rng = np.random.default_rng(scenario["seed"])
    draw = float(rng.random())  # depends on the seed only: the CRN witness
    sent = int(rng.integers(50, 150))
    lost = round(sent * scenario["network.downlink_loss"])
    summary: dict = dict.fromkeys(SUMMARY_KEYS, 0)
    summary.update(
        messages_sent=sent,
        deliveries_expected=sent,
        deliveries=sent - lost,
        lost=lost,
        latency_p99_ms=KIND_MS[scenario["transport.kind"]] * (1 + draw),
        requests_per_s=np.float64(sent / scenario["duration_s"]),
        wall_s=time.perf_counter(),
        draw=draw,
    )
    return summary


def slow_runner(scenario: Scenario) -> dict:
    """The fake runner, 0.15 s per run, so that a sweep can be killed midway."""
    time.sleep(0.15)
    return fake_runner(scenario)


class Recorder:
    """An in-process runner that remembers which (loss, kind, seed) it computed."""

    def __init__(self, fail_at: tuple[float, str] | None = None):
        self.calls: list[tuple[float, str, int]] = []
        self.fail_at = fail_at

    def __call__(self, scenario: Scenario) -> dict:
        key = (scenario["network.downlink_loss"], scenario["transport.kind"])
        self.calls.append((*key, scenario["seed"]))
        if key == self.fail_at:
            raise ZeroDivisionError("the model divided by zero")
        return fake_runner(scenario)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    return write(tmp_path / "loss.toml", SWEEP)


def run(sweep_file: Path, out: Path, runner=fake_runner, **kw) -> pd.DataFrame:
    return run_sweep(load_sweep(sweep_file), out, workers=1, runner=runner, progress=False, **kw)


def without_wall(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="wall_s")


# --- the sweep file --------------------------------------------------------------------


def test_points_are_the_grid_product_in_file_order_last_key_fastest(sweep_file):
    sweep = load_sweep(sweep_file)
    assert sweep.grid_keys == ("network.downlink_loss", "transport.kind")
    assert sweep.points() == [
        (0, {"network.downlink_loss": 0.0, "transport.kind": "push"}),
        (1, {"network.downlink_loss": 0.0, "transport.kind": "long_poll"}),
        (2, {"network.downlink_loss": 0.0, "transport.kind": "short_poll"}),
        (3, {"network.downlink_loss": 0.1, "transport.kind": "push"}),
        (4, {"network.downlink_loss": 0.1, "transport.kind": "long_poll"}),
        (5, {"network.downlink_loss": 0.1, "transport.kind": "short_poll"}),
    ]


def test_no_grid_means_one_point(tmp_path):
    sweep = load_sweep({"scenario": "baseline", "replications": 2})
    assert sweep.points() == [(0, {})]
    assert len(sweep.tasks()) == 2


def test_tasks_apply_base_set_grid_and_seed(sweep_file):
    sweep = load_sweep(sweep_file)
    tasks = sweep.tasks()
    assert len(tasks) == 6 * 3
    task = tasks[3 * 4 + 2]  # point 4, replication 2
    assert (task.point, task.replication) == (4, 2)
    assert task.values == {"network.downlink_loss": 0.1, "transport.kind": "long_poll"}
    s = task.scenario
    assert s["name"] == "baseline"
    assert s["duration_s"] == 10.0 and s["workload.users"] == 50
    assert s["network.downlink_loss"] == 0.1 and s["transport.kind"] == "long_poll"
    assert s["seed"] == task.seed
    # The shortcut that sets the seed without re-validation gives a valid scenario.
    assert Scenario.load(s.to_dict()) == s


def test_integer_grid_values_are_normalised_like_scenario_values(tmp_path):
    sweep = load_sweep({"scenario": "baseline", "grid": {"network.downlink_loss": [0, 1]}})
    values = [v["network.downlink_loss"] for _, v in sweep.points()]
    assert values == [0.0, 1.0] and all(type(v) is float for v in values)


def test_relative_scenario_path_is_resolved_against_the_sweep_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf" / "mine.toml", 'name = "mine"\n[workload]\nusers = 77\n')
    sweep_file = write(tmp_path / "conf" / "s.toml", 'scenario = "mine.toml"\n')
    monkeypatch.chdir(tmp_path)  # not the sweep file's folder
    sweep = load_sweep(Path("conf") / "s.toml")
    assert sweep.scenario["workload.users"] == 77
    assert sweep.scenario_ref == str((tmp_path / "conf" / "mine.toml").resolve())
    assert load_sweep(sweep_file).scenario == sweep.scenario


BAD_SWEEPS = [
    (
        'scenario = "baseline"\nreplication = 3\n',
        ["unknown key 'replication'", "did you mean 'replications'"],
    ),
    ('scenario = "baseline"\nduration_s = 5.0\n', ["unknown key 'duration_s'", "[set]"]),
    (
        'scenario = "baseline"\n[set]\n"network.downlik_loss" = 0.1\n',
        ["[set]", "'network.downlik_loss'", "did you mean 'network.downlink_loss'"],
    ),
    (
        'scenario = "baseline"\n[grid]\n"transport.knd" = ["push"]\n',
        ["[grid]", "'transport.knd'", "did you mean 'transport.kind'"],
    ),
    (
        'scenario = "baseline"\n[grid]\n"network.downlink_loss" = []\n',
        ["network.downlink_loss", "empty list"],
    ),
    (
        'scenario = "baseline"\n[grid]\n"transport.kind" = "push"\n',
        ["transport.kind", "must be a list", "[set]"],
    ),
    ('scenario = "baseline"\nreplications = 0\n', ["replications must be an integer ≥ 1"]),
    ('scenario = "baseline"\nreplications = 2.5\n', ["replications must be an integer ≥ 1"]),
    ('scenario = "baseline"\nseed = -1\n', ["seed must be an integer ≥ 0"]),
    ("replications = 2\n", ["missing key 'scenario'"]),
    ('scenario = "nowhere.toml"\n', ["scenario file 'nowhere.toml' does not exist"]),
    ('scenario = "baselin"\n', ["baselin", "did you mean 'baseline'"]),
    (
        'scenario = "baseline"\n[grid]\n"network.downlink_loss" = [0.0, 1.5]\n',
        ["[grid]", "network.downlink_loss must be a number in [0, 1], got 1.5"],
    ),
    (
        'scenario = "baseline"\n[grid]\n"transport.kind" = ["push", "carrier_pigeon"]\n',
        ["transport.kind must be one of short_poll, long_poll, push, hybrid"],
    ),
    (
        # Each value is valid alone; one combination is not: caught before any run.
        'scenario = "baseline"\n[set]\n"workload.users" = 10\n"workload.group_share" = 0.5\n'
        '[grid]\n"workload.group_size" = [5, 20]\n',
        ["grid point 1", "workload.group_size=20", "workload.group_size must be ≤ workload.users"],
    ),
    ('scenario = "baseline"\n[set]\nseed = 3\n', ["[set] cannot set 'seed'"]),
    ('scenario = "baseline"\n[grid]\nseed = [1, 2]\n', ["[grid] cannot vary 'seed'"]),
    (
        'scenario = "baseline"\n[set]\nduration_s = 5.0\n[grid]\nduration_s = [5.0, 10.0]\n',
        ["'duration_s' is in both [set] and [grid]"],
    ),
    (
        'scenario = "baseline"\n[grid]\n"network.downlink_loss" = [0.1, 0.10]\n',
        ["network.downlink_loss lists 0.1 twice"],
    ),
    ('scenario = "baseline"\n[grid\n', ["is not valid TOML"]),
]


@pytest.mark.parametrize(("text", "expected"), BAD_SWEEPS)
def test_invalid_sweep_raises_one_line_config_error_naming_the_key(tmp_path, text, expected):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.toml: ") or "is not valid TOML" in message
    for part in expected:
        assert part in message


def test_set_may_be_inconsistent_alone_when_every_grid_point_is_consistent():
    sweep = load_sweep(
        {
            "scenario": "baseline",
            "set": {"workload.users": 10, "workload.group_share": 0.5},  # group_size 20 > 10
            "grid": {"workload.group_size": [4, 10]},
        }
    )
    assert [t.scenario["workload.group_size"] for t in sweep.tasks()] == [4, 10]
    with pytest.raises(ConfigError, match=r"^sweep: \[set\] workload.group_size must be ≤"):
        load_sweep(
            {"scenario": "baseline", "set": {"workload.users": 10, "workload.group_share": 0.5}}
        )


def test_missing_sweep_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"sweep file .*nope\.toml' does not exist"):
        load_sweep(tmp_path / "nope.toml")


# --- seeds -----------------------------------------------------------------------------


def test_replication_r_uses_child_r_of_the_root_seed_at_every_point(sweep_file):
    sweep = load_sweep(sweep_file)
    children = np.random.SeedSequence(7).spawn(3)
    expected = [int(c.generate_state(1, dtype=np.uint64)[0] % 2**63) for c in children]
    assert sweep.replication_seeds() == expected
    for task in sweep.tasks():
        assert task.seed == expected[task.replication] == task.scenario["seed"]
    assert len(set(expected)) == 3


def test_crn_makes_the_same_draws_at_every_grid_point(sweep_file, tmp_path):
    frame = run(sweep_file, tmp_path / "out")
    per_rep = frame.groupby("replication")
    assert (per_rep["draw"].nunique() == 1).all()
    assert (per_rep["seed"].nunique() == 1).all()
    assert frame.groupby("point")["draw"].nunique().eq(3).all()


def test_more_replications_keep_earlier_seeds_and_another_root_changes_them():
    assert replication_seeds(7, 5)[:3] == replication_seeds(7, 3)
    assert not set(replication_seeds(8, 3)) & set(replication_seeds(7, 3))


# --- results ---------------------------------------------------------------------------


def test_results_have_one_row_per_point_and_replication_in_documented_columns(sweep_file, tmp_path):
    out = tmp_path / "out"
    frame = run(sweep_file, out)
    assert list(frame.columns) == [
        "point",
        "network.downlink_loss",
        "transport.kind",
        "replication",
        "seed",
        *SUMMARY_KEYS,
        "draw",
    ]
    assert len(frame) == 18
    assert list(zip(frame["point"], frame["replication"], strict=True)) == [
        (p, r) for p in range(6) for r in range(3)
    ]
    stored = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(stored, frame)
    # The grid columns hold each task's values, and the runner saw them.
    expected_lost = (frame["messages_sent"] * frame["network.downlink_loss"]).round()
    assert (frame["lost"] == expected_lost).all()


def test_missing_metric_values_become_nan(tmp_path):
    def runner(scenario):
        loss = scenario["network.downlink_loss"]
        return {"lost": 1, "latency_p99_ms": None if loss > 0.5 else 12.5}

    sweep = load_sweep({"scenario": "baseline", "grid": {"network.downlink_loss": [0.0, 1.0]}})
    frame = run_sweep(sweep, tmp_path / "out", workers=1, runner=runner, progress=False)
    assert frame["latency_p99_ms"].dtype == np.float64
    assert frame["latency_p99_ms"].iloc[0] == 12.5 and np.isnan(frame["latency_p99_ms"].iloc[1])


def test_table_valued_grid_values_are_stored_as_json_text(tmp_path):
    table = {"dist": "lognormal", "median": 40, "p99": 300}
    sweep = load_sweep({"scenario": "baseline", "grid": {"network.latency_ms": [40, table]}})
    frame = run_sweep(sweep, tmp_path / "out", workers=1, runner=fake_runner, progress=False)
    column = list(frame["network.latency_ms"])
    assert column == ["40.0", '{"dist": "lognormal", "median": 40.0, "p99": 300.0}']


def test_out_holds_a_resolved_sweep_that_reloads_to_the_same_tasks(sweep_file, tmp_path):
    out = tmp_path / "out"
    frame = run(sweep_file, out)
    sweep = load_sweep(sweep_file)
    again = load_sweep(out / "sweep.toml")
    assert again.identity_hash() == sweep.identity_hash()
    assert [t.scenario for t in again.tasks()] == [t.scenario for t in sweep.tasks()]
    assert Scenario.load(out / "scenario.toml") == sweep.scenario
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sweep_hash"] == sweep.identity_hash()
    pd.testing.assert_frame_equal(collect_results(out), frame)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_default_out_is_next_to_the_sweep_file(sweep_file):
    assert load_sweep(sweep_file).default_out() == sweep_file.parent / "loss-results"
    with pytest.raises(UserError, match="explicit output folder"):
        load_sweep({"scenario": "baseline"}).default_out()


# --- resume ----------------------------------------------------------------------------


def test_finished_sweep_recomputes_nothing(sweep_file, tmp_path):
    out = tmp_path / "out"
    first = run(sweep_file, out)
    recorder = Recorder()
    again = run(sweep_file, out, runner=recorder)
    assert recorder.calls == []
    pd.testing.assert_frame_equal(again, first)


def test_only_tasks_without_a_part_are_recomputed(sweep_file, tmp_path):
    out = tmp_path / "out"
    first = run(sweep_file, out)
    removed = ["p000001-r0000.parquet", "p000004-r0002.parquet", "p000005-r0001.parquet"]
    for name in removed:
        (out / "parts" / name).unlink()
    assert len(sweep_status(load_sweep(sweep_file), out).todo) == 3
    assert len(collect_results(out)) == 15
    recorder = Recorder()
    again = run(sweep_file, out, runner=recorder)
    seeds = load_sweep(sweep_file).replication_seeds()
    assert sorted(recorder.calls) == sorted(
        [(0.0, "long_poll", seeds[0]), (0.1, "long_poll", seeds[2]), (0.1, "short_poll", seeds[1])]
    )
    pd.testing.assert_frame_equal(without_wall(again), without_wall(first))


def test_killed_sweep_resumes_without_losing_or_recomputing_finished_runs(sweep_file, tmp_path):
    out = tmp_path / "out"
    script = (
        "import sys; sys.path.insert(0, sys.argv[3]);"
        "from test_sweep import slow_runner;"
        "from immodel.experiments import run_sweep;"
        "run_sweep(sys.argv[1], sys.argv[2], workers=1, runner=slow_runner, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(sweep_file), str(out), str(HERE)])
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "parts").glob("p*.parquet"))) < 4:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    survived = {p.name for p in (out / "parts").glob("p*.parquet")}
    assert 4 <= len(survived) < 18
    recorder = Recorder()
    resumed = run(sweep_file, out, runner=recorder)
    assert len(recorder.calls) == 18 - len(survived)
    assert {p.name for p in (out / "parts").glob("p*.parquet")} >= survived
    fresh = run(sweep_file, tmp_path / "fresh")
    pd.testing.assert_frame_equal(without_wall(resumed), without_wall(fresh))


# --- refusing to mix -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "explained"),
    [
        ("[0.0, 0.1]", "[0.0, 0.2]", "[grid] values of network.downlink_loss"),
        ("seed = 7", "seed = 8", "seed 7 → 8"),
        ("duration_s = 10.0", "duration_s = 20.0", "duration_s 10.0 → 20.0"),
        ('scenario = "baseline"', 'scenario = "long-poll"', 'transport.kind "push" → "long_poll"'),
    ],
)
def test_changed_sweep_is_refused_and_names_what_changed(sweep_file, tmp_path, old, new, explained):
    out = tmp_path / "out"
    run(sweep_file, out)
    sweep_file.write_text(SWEEP.replace(old, new, 1))
    recorder = Recorder()
    with pytest.raises(UserError) as info:
        run(sweep_file, out, runner=recorder)
    message = str(info.value)
    assert "\n" not in message and "another --out" in message and explained in message
    assert recorder.calls == []
    assert len(list((out / "parts").glob("*.parquet"))) == 18


def test_reordered_grid_keys_are_refused(sweep_file, tmp_path):
    out = tmp_path / "out"
    run(sweep_file, out)
    sweep_file.write_text(
        SWEEP.replace(
            '"network.downlink_loss" = [0.0, 0.1]\n"transport.kind" = ["push", "long_poll", '
            '"short_poll"]',
            '"transport.kind" = ["push", "long_poll", "short_poll"]\n"network.downlink_loss" = '
            "[0.0, 0.1]",
        )
    )
    with pytest.raises(UserError, match=r"\[grid\] keys"):
        run(sweep_file, out)


def test_new_description_and_more_replications_extend_the_same_sweep(sweep_file, tmp_path):
    out = tmp_path / "out"
    run(sweep_file, out)
    sweep_file.write_text(
        SWEEP.replace("replications = 3", "replications = 4").replace("loss ×", "loss vs")
    )
    recorder = Recorder()
    frame = run(sweep_file, out, runner=recorder)
    fourth = load_sweep(sweep_file).replication_seeds()[3]
    assert len(recorder.calls) == 6 and {seed for *_, seed in recorder.calls} == {fourth}
    assert len(frame) == 24
    assert load_sweep(out / "sweep.toml").replications == 4


def test_fewer_replications_leave_extra_parts_out_of_the_results(sweep_file, tmp_path):
    out = tmp_path / "out"
    run(sweep_file, out)
    sweep_file.write_text(SWEEP.replace("replications = 3", "replications = 2"))
    recorder = Recorder()
    frame = run(sweep_file, out, runner=recorder)
    assert recorder.calls == [] and set(frame["replication"]) == {0, 1}
    assert len(list((out / "parts").glob("*.parquet"))) == 18


def test_an_out_that_is_a_file_is_a_user_error(sweep_file, tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(UserError, match="is a file"):
        run(sweep_file, tmp_path / "out")


def test_only_stale_temporary_files_are_cleaned_up(sweep_file, tmp_path):
    out = tmp_path / "out"
    run(sweep_file, out)
    stale = out / "parts" / ".p000000-r0000.parquet.999.tmp"
    young = out / "parts" / ".p000001-r0000.parquet.998.tmp"
    stale.write_bytes(b"x")
    young.write_bytes(b"y")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    run(sweep_file, out)
    assert not stale.exists() and young.exists()


def test_parts_without_meta_are_not_adopted(sweep_file, tmp_path):
    out = tmp_path / "out"
    run(sweep_file, out)
    (out / "meta.json").unlink()
    with pytest.raises(UserError, match=r"no meta\.json"):
        run(sweep_file, out)


# --- failures --------------------------------------------------------------------------


def test_failing_task_keeps_the_others_and_reports_a_replay_command(sweep_file, tmp_path):
    out = tmp_path / "out"
    recorder = Recorder(fail_at=(0.1, "long_poll"))
    with pytest.raises(SweepFailed) as info:
        run(sweep_file, out, runner=recorder)
    exc = info.value
    assert len(recorder.calls) == 18  # the failures did not stop the sweep
    assert len(exc.failures) == 3 and exc.not_run == 0
    assert {f.point for f in exc.failures} == {4}
    assert len(exc.results) == 15 and 4 not in set(exc.results["point"])
    assert len(pd.read_parquet(out / "results.parquet")) == 15
    failure = exc.failures[0]
    assert failure.error == "ZeroDivisionError: the model divided by zero"
    assert "Traceback" in failure.details
    assert f"--seed {failure.seed}" in failure.replay
    saved = json.loads((out / "failures.json").read_text())
    assert [f["replay"] for f in saved] == [f.replay for f in exc.failures]

    retry = Recorder()
    frame = run(sweep_file, out, runner=retry)
    assert sorted(seed for *_, seed in retry.calls) == sorted(f.seed for f in exc.failures)
    assert len(frame) == 18 and not (out / "failures.json").exists()


def test_replay_command_rebuilds_the_exact_task_scenario(tmp_path):
    sweep = load_sweep(
        {
            "scenario": "lossy-mobile",
            "replications": 2,
            "set": {"duration_s": 12.5, "faults": [{"kind": "server_crash", "at_s": 3}]},
            "grid": {
                "network.latency_ms": [40, {"dist": "lognormal", "median": 40, "p99": 300}],
                "transport.kind": ["hybrid"],
                "reliability.sync": [True, False],
            },
        }
    )
    import shlex

    for task in sweep.tasks():
        words = shlex.split(sweep.replay_command(task))
        assert words[:3] == ["immodel", "run", "lossy-mobile"]
        args = build_parser().parse_args(words[1:])
        replayed = Scenario.load(args.scenario, args.overrides, seed=args.seed)
        assert replayed == task.scenario


def test_replay_of_an_in_memory_scenario_uses_the_saved_scenario_file(tmp_path):
    def broken(scenario):
        raise RuntimeError("boom")

    base = Scenario.load("baseline", {"workload.users": 64})
    sweep = load_sweep({"scenario": base, "grid": {"transport.kind": ["push"]}})
    out = tmp_path / "out"
    with pytest.raises(SweepFailed) as info:
        run_sweep(sweep, out, workers=1, runner=broken, progress=False)
    replay = info.value.failures[0].replay
    saved = str((out / "scenario.toml").resolve())
    assert os.path.relpath(saved) in replay or saved in replay


def test_load_sweep_with_overrides_set_grid_and_replications_and_names_its_folder(tmp_path):
    from immodel.experiments import load_sweep_with

    path = tmp_path / "s.toml"
    path.write_text(
        'scenario = "baseline"\nreplications = 5\n[set]\nduration_s = 600.0\n'
        '[grid]\n"network.downlink_loss" = [0.0, 0.1]\n'
    )
    sweep, out = load_sweep_with(
        path,
        set_overrides={"duration_s": 5.0},
        grid_overrides={"network.downlink_loss": [0.2]},
        replications=2,
    )
    assert sweep.replications == 2
    assert dict(sweep.grid)["network.downlink_loss"] == (0.2,)
    assert sweep.tasks()[0].scenario["duration_s"] == 5.0
    # The folder is named by the resolved sweep: another variant gets another folder.
    _other, other_out = load_sweep_with(path, replications=2)
    assert out.parent == other_out.parent and out != other_out
    assert out.name.startswith("s-")

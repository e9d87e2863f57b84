"""A faulty run is a pure function of its scenario, and a failure says how to replay it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
from faultkit import run_checked, scenario

from immodel import Scenario, run
from immodel.experiments.ablation import replay_command

# Every kind that draws from the faults stream or touches sets of users, at once.
FAULTS = [
    {"kind": "server_crash", "at_s": 8.0, "down_s": 5.0, "node": 2},
    {"kind": "gateway_crash", "at_s": 12.0, "share": 0.5},
    {"kind": "client_crash", "at_s": 14.0, "share": 0.5, "keep_local_state": False},
    {"kind": "partition", "at_s": 6.0, "down_s": 6.0, "share": 0.4, "direction": "both"},
    {"kind": "store_failure", "at_s": 4.0, "down_s": 8.0, "prob": 0.5, "node": 1},
    {"kind": "loss_burst", "at_s": 16.0, "down_s": 4.0, "uplink_loss": 0.3, "downlink_loss": 0.3},
]
LOSSY = {"network.downlink_loss": 0.05, "network.uplink_loss": 0.05}


def test_same_seed_with_faults_gives_the_same_trace_hash():
    sc = scenario(FAULTS, seed=7, **LOSSY)
    assert run(sc).trace_hash() == run(sc).trace_hash()
    assert run(sc.with_overrides({"seed": 8})).trace_hash() != run(sc).trace_hash()


def test_trace_hash_with_faults_does_not_depend_on_python_hash_seed(tmp_path):
    path = tmp_path / "faults.toml"
    path.write_text(scenario(FAULTS, seed=7, **LOSSY).to_toml())
    code = f"from immodel import run; print(run({str(path)!r}).trace_hash())"
    hashes = set()
    for hash_seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1


def test_a_failed_check_names_the_seed_and_a_command_that_replays_the_run(tmp_path):
    # Without sync, a crash during 20 % downlink loss loses messages: a real failure.
    sc = scenario(
        [{"kind": "server_crash", "at_s": 10.0, "down_s": 10.0, "node": 0}],
        seed=3,
        **{"network.downlink_loss": 0.2, "reliability.sync": False},
    )
    with pytest.raises(AssertionError) as failure:
        run_checked(sc, replay_dir=tmp_path)
    message = str(failure.value)
    assert "seed 3" in message and "immodel run " in message and "--seed 3" in message
    command = message.split("replay with: ", 1)[1].strip()
    words = shlex.split(command)
    assert words[:2] == ["immodel", "run"]
    # The command's file reloads to the same scenario, and the run it names is the same.
    assert Scenario.load(words[2], seed=int(words[-1])) == sc
    out = subprocess.run(
        [sys.executable, "-m", "immodel", *words[1:], "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    replayed = json.loads(out.stdout)
    original = run(sc).summary
    assert replayed["lost"] == original["lost"] > 0
    assert replayed["messages_sent"] == original["messages_sent"]


def test_replay_command_writes_the_resolved_scenario_where_asked(tmp_path):
    sc = scenario(FAULTS, seed=11)
    command = replay_command(sc, tmp_path)
    path = tmp_path / "faults-test-seed11.toml"
    assert command == f"immodel run {path} --seed 11"
    assert Scenario.load(path) == sc

"""A summary metric that is a mapping (``logins_rejected_by_reason``) becomes one numeric
column per entry in a sweep's results (``logins_rejected_<reason>``)."""

from pathlib import Path

from immodel.experiments import load_sweep
from immodel.experiments.sweep import execute_task, run_sweep
from immodel.scenario import Scenario

SWEEP = """
description = "mapping metrics"
scenario = "baseline"
replications = 2
seed = 1
[set]
"workload.users" = 20
duration_s = 5.0
[grid]
"security.usersig_ttl_s" = [3600, 86400]
"""


def _runner(scenario: Scenario) -> dict:
    ttl = scenario["security.usersig_ttl_s"]
    return {
        "lost": 0,
        "logins_rejected": 3,
        "logins_rejected_by_reason": {"auth_expired": 3 if ttl == 3600 else 0, "auth_malformed": 0},
    }


def test_execute_task_flattens_a_by_reason_mapping():
    ok, summary = execute_task(_runner, Scenario.load("baseline"))
    assert ok
    assert "logins_rejected_by_reason" not in summary
    assert summary["logins_rejected_auth_expired"] == 0
    assert summary["logins_rejected_auth_malformed"] == 0
    assert summary["logins_rejected"] == 3


def test_results_parquet_holds_one_integer_column_per_reason(tmp_path: Path):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    frame = run_sweep(load_sweep(path), tmp_path / "out", workers=1, runner=_runner, progress=False)
    assert frame["logins_rejected_auth_expired"].dtype.kind == "i"
    by_ttl = frame.groupby("security.usersig_ttl_s")["logins_rejected_auth_expired"].sum()
    assert by_ttl.to_dict() == {3600: 6, 86400: 0}


def test_execute_task_flattens_the_live_by_priority_mappings():
    def runner(_scenario: Scenario) -> dict:
        return {
            "live_offered_by_priority": {"high": 5, "normal": 7, "low": 9},
            "live_dropped_by_priority": {"high": 0, "normal": 1, "low": 8},
        }

    ok, summary = execute_task(runner, Scenario.load("baseline"))
    assert ok
    assert "live_dropped_by_priority" not in summary
    assert summary["live_offered_high"] == 5 and summary["live_offered_low"] == 9
    assert summary["live_dropped_normal"] == 1 and summary["live_dropped_low"] == 8

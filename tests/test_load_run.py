"""``immodel.load_run(DIR)`` gives back the :class:`Result` that ``run()`` returned."""

from __future__ import annotations

import pytest

from immodel import Scenario, load_run, run
from immodel.errors import UserError


def test_a_saved_run_loads_back_equal_to_the_result_of_run(tmp_path):
    scenario = Scenario.load(
        "hybrid",
        {
            "workload.users": 40,
            "duration_s": 8.0,
            "workload.group_share": 0.3,
            "workload.group_size": 10,
            "network.downlink_loss": 0.05,
            "faults": [{"kind": "server_crash", "at_s": 3, "down_s": 1}],
        },
    )
    result = run(scenario)
    result.write(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert loaded.equals(result)
    assert loaded.scenario == result.scenario
    assert loaded.summary == result.summary
    assert loaded.counters == result.counters
    for name in ("messages", "requests", "load", "trace"):
        ours, theirs = getattr(loaded, name), getattr(result, name)
        assert ours.equals(theirs), name
        assert list(ours.dtypes) == list(theirs.dtypes), name
    assert loaded.trace_hash() == result.trace_hash()


def test_equals_notices_a_changed_record(tmp_path):
    result = run(
        Scenario.load(
            "baseline",
            {"workload.users": 20, "duration_s": 3.0, "workload.send_rate_per_user": 0.5},
        )
    )
    result.write(tmp_path)
    loaded = load_run(tmp_path)
    assert loaded.equals(result) and len(loaded.messages) > 0
    loaded.messages.loc[0, "latency_ms"] += 1.0
    assert not loaded.equals(result)


def test_a_folder_that_is_not_a_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_run(tmp_path / "nothing")
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(UserError, match="is not a run folder"):
        load_run(tmp_path)

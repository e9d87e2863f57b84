"""``immodel real`` on push: a clean run loses nothing, duplicates nothing, and leaves the
simulator's records (same columns and dtypes), a summary with every key of a simulated
run, a trace ``immodel check`` passes, and no process behind."""

from __future__ import annotations

import pytest

from immodel import Scenario, run
from immodel.analysis.checker import check_trace
from immodel.real.loadgen import make_plan
from tests.real.real_helpers import SMALL, processes_mentioning, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    # the drain is short on purpose: on loopback without loss nothing waits for a timeout
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]


@pytest.fixture(scope="module")
def scenario():
    return Scenario.load(
        "baseline",
        {**SMALL, "workload.group_share": 0.3, "workload.groups": 3, "workload.group_size": 5},
    )


@pytest.fixture(scope="module")
def real_run(scenario, tmp_path_factory):
    return shared_real_run(tmp_path_factory, "push", scenario)


def test_a_clean_push_run_loses_and_duplicates_nothing(real_run):
    summary = real_run[0].summary
    assert summary["messages_sent"] > 10  # 20 users × 0.5 msg/s × 3 s: 30 expected
    assert summary["deliveries_expected"] >= summary["messages_sent"]
    assert summary["lost"] == 0
    assert summary["duplicates"] == 0
    assert summary["order_violations"] == 0
    assert summary["send_failures"] == 0


def test_the_checker_passes_the_real_trace(real_run):
    report = check_trace(real_run[0].trace)
    assert report.lost == 0 and report.duplicates == 0 and report.order_violations == 0
    assert report.deliveries == real_run[0].summary["deliveries"]


@pytest.fixture(scope="module")
def sim_run(scenario):
    return run(scenario)


def test_records_have_the_columns_and_dtypes_of_a_simulated_run(real_run, sim_run):
    sim = sim_run
    for name in ("messages", "requests", "trace"):
        real_frame, sim_frame = getattr(real_run[0], name), getattr(sim, name)
        assert list(real_frame.columns) == list(sim_frame.columns), name
        assert real_frame.dtypes.astype(str).tolist() == sim_frame.dtypes.astype(str).tolist()


def test_the_summary_has_every_key_of_a_simulated_run_and_cpu_per_process(real_run, sim_run):
    summary = real_run[0].summary
    assert set(sim_run.summary) <= set(summary)
    cpu = summary["cpu_s_by_process"]
    assert set(cpu) == {"logic0", "access0", "proxy0", "loadgen"}
    assert all(v > 0 for v in cpu.values())  # each process did measurable work
    assert summary["network_model"] == "real"


def test_latency_is_at_least_the_scenarios_two_network_legs(real_run, scenario):
    # one uplink and one downlink leg of network.latency_ms (40 ms each) are added by the
    # fault proxy on top of the loopback stack's own time
    summary = real_run[0].summary
    assert summary["latency_p50_ms"] >= 2 * scenario["network.latency_ms"]


def test_the_plan_is_reproducible_and_is_what_was_sent(real_run, scenario):
    plan = make_plan(scenario)
    assert plan.sends == make_plan(scenario).sends
    messages = real_run[0].messages.drop_duplicates("msg_id")
    assert messages["conversation"].tolist() == [s[2] for s in plan.sends]
    assert messages["sender"].tolist() == [s[1] for s in plan.sends]


def test_no_server_process_outlives_the_run(real_run):
    folder = real_run[1]
    assert (folder / "store.sqlite").exists()  # the run did use this folder
    assert processes_mentioning(str(folder)) == []


def test_every_key_of_a_real_summary_is_documented(real_run, sim_run):
    from pathlib import Path

    from immodel.columns import undocumented

    summary = real_run[0].summary
    assert undocumented("results", list(summary)) == []
    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    own = set(summary) - set(sim_run.summary)
    assert own  # the CPU keys at least
    assert [k for k in sorted(own) if f"`{k}`" not in text] == []


def test_the_logic_server_counts_the_frames_of_the_sending_period(real_run):
    # what the calibration divides the logic CPU by (immodel.real.calibrate): every send
    # up is answered down and stored once, every copy is pushed once and acknowledged by
    # a frame of its own, every receipt sync is answered by a page; the start
    # population's logins happened before the sending period and are not counted
    result = real_run[0]
    c, s = result.counters, result.summary
    assert c["run_in_send"] == c["run_out_reply"] == c["run_stored"] == s["messages_sent"]
    copies = int(result.messages["copies"].sum())
    assert c["run_out_push"] == copies == s["deliveries"]
    assert c["run_in_ack"] == c["run_out_push"]
    assert c["run_in_sync"] == c["run_out_sync_resp"] == s["requests_sync"]
    assert c.get("run_in_login", 0) == s["requests_login"] == 0
    assert c.get("run_in_attach", 0) == 0 and c.get("run_in_hello", 0) == 0


def test_utilization_is_the_windows_cpu_and_the_logic_io_cost_is_positive(real_run):
    from immodel.real.calibrate import (
        logic_in_process_ms,
        measure_logic_costs,
        measure_logic_io_cost,
    )

    result = real_run[0]
    s = result.summary
    window = s["window_s"]
    # the window's CPU is at most the run's (the drain comes after it)
    assert 0 < s["utilization_logic"] * window <= s["cpu_s_logic"] + 1e-9
    assert 0 < s["utilization_access"] * window <= s["cpu_s_access"] + 1e-9
    costs = measure_logic_costs(result.scenario, n=50)
    # the in-process operations are a part of the logic process's CPU, not all of it
    assert logic_in_process_ms(result.counters, costs) < 1000.0 * s["cpu_s_logic"]
    assert measure_logic_io_cost(result, costs) > 0

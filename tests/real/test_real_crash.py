"""``server_crash`` in ``immodel real``: a logic process is SIGKILLed and started again;
what it had stored survives in SQLite and reaches every recipient, and the clients,
whose connections live on the access tier, never reconnect."""

from __future__ import annotations

import sqlite3

import pytest

from immodel import Scenario
from tests.real.real_helpers import SMALL, processes_mentioning, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory):
    scenario = Scenario.load(
        "baseline",
        {
            **SMALL,
            "workload.users": 30,
            "workload.send_rate_per_user": 1.0,
            "duration_s": 4.0,
            "server.nodes": 2,
            "faults": [{"kind": "server_crash", "at_s": 1.5, "down_s": 1.0, "node": 0}],
        },
    )
    return shared_real_run(tmp_path_factory, "crash", scenario)


def test_a_logic_crash_loses_nothing_that_was_stored(crash_run):
    result, folder = crash_run
    summary = result.summary
    messages = result.messages
    stored = messages[messages["stored"]]
    # the store holds exactly the stored messages of the records, each once
    db = sqlite3.connect(folder / "store.sqlite")
    rows = db.execute("SELECT msg_id, COUNT(*) FROM stored GROUP BY msg_id").fetchall()
    db.close()
    assert {m for m, _ in rows} == set(stored["msg_id"])
    assert summary["lost"] == 0  # every stored message reached every recipient
    assert summary["duplicates"] == 0
    assert summary["send_failures"] == 0


def test_the_crash_happened_and_the_process_came_back(crash_run):
    result, folder = crash_run
    log = (folder / "logic0.log").read_text()
    assert "Traceback" not in log
    # two stats files for logic0: the killed instance and its restart
    assert len(list(folder.glob("stats-logic0-*.json"))) == 2
    assert len(list(folder.glob("stats-logic1-*.json"))) == 1
    up = result.load[(result.load["tier"] == "logic") & (result.load["node"] == 0)]["up"]
    assert not up.all() and up.iloc[-1]  # seen down, then up again


def test_clients_stay_connected_through_a_logic_crash(crash_run):
    result, _ = crash_run
    # the start population logs in before the run's clock starts (as the simulator's
    # start state): no login during the run means nobody reconnected
    logins = result.requests[result.requests["kind"] == "login"]
    assert len(logins) == 0
    assert result.counters["reconnects"] == 0
    assert result.summary["reconnect_time_s"] == pytest.approx(1.0, abs=0.2)


def test_no_process_is_left_after_a_crash_run(crash_run):
    assert processes_mentioning(str(crash_run[1])) == []

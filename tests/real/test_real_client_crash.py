"""``client_crash`` in ``immodel real``: a share of the apps die and start again at once;
the fault proxy resets their connections (the access node sees them go), they log in
again without backoff, sync, and nothing is lost or shown twice — except, for an app
reinstalled without its local state, the history it had shown, which its first sync
brings again."""

from __future__ import annotations

import pytest

from immodel import Scenario
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]


@pytest.fixture(scope="module")
def client_crash_run(tmp_path_factory):
    scenario = Scenario.load(
        "baseline",
        {
            **SMALL,
            "duration_s": 2.0,
            "drain_s": 1.0,
            "faults": [{"kind": "client_crash", "at_s": 0.7, "share": 0.5}],
        },
    )
    return shared_real_run(tmp_path_factory, "client-crash", scenario)[0]


def test_crashed_apps_lose_and_duplicate_nothing(client_crash_run):
    summary = client_crash_run.summary
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["send_failures"] == 0


def test_every_crashed_app_reconnects_once_without_backoff(client_crash_run):
    logins = client_crash_run.requests
    logins = logins[logins["kind"] == "login"]
    # ~10 of the 20 users crash (P(none of 20 at share 0.5) = 1e-6)
    assert len(logins) > 0
    assert client_crash_run.counters["reconnects"] == len(logins)  # one login per crash
    assert client_crash_run.counters["proxy_resets"] >= len(logins)  # the proxy cut each
    # at once: with the reconnect wait (uniform in [0, reconnect_base_s = 1 s]) the last
    # of the ~10 would log in ≥ 0.5 s after the crash with probability 1 − 2^-10
    assert logins["t"].min() >= 0.7
    assert client_crash_run.summary["reconnect_time_s"] < 0.5


@pytest.fixture(scope="module")
def reinstall_run(tmp_path_factory):
    scenario = Scenario.load(
        "baseline",
        {
            **SMALL,
            "duration_s": 2.0,
            "drain_s": 1.5,
            "faults": [
                {"kind": "client_crash", "at_s": 0.7, "share": 0.5, "keep_local_state": False}
            ],
        },
    )
    return shared_real_run(tmp_path_factory, "client-reinstall", scenario)[0]


def test_a_reinstalled_app_shows_its_history_again_and_nothing_else(reinstall_run):
    # theory: an app without its local state syncs from cursor 0, so each copy it showed
    # before the crash is shown once more — and only those are duplicates
    logins = reinstall_run.requests
    crashed = set(logins.loc[logins["kind"] == "login", "user"].astype(str))
    assert crashed  # ~10 of the 20 users
    t_crash = float(logins.loc[logins["kind"] == "login", "t"].min())  # each logs in at once
    shows = reinstall_run.trace[reinstall_run.trace["event"] == "deliver"]
    shows = shows.assign(user=shows["user"].astype(str))
    counts = shows.groupby(["msg_id", "user"]).size()
    twice = set(counts[counts > 1].index)
    before = shows[(shows["t"] < t_crash) & shows["user"].isin(crashed)]
    assert twice == set(zip(before["msg_id"], before["user"], strict=True))
    assert twice  # seed 1's plan shows a few copies to crashed users before 0.7 s
    s = reinstall_run.summary
    assert s["duplicates"] == len(twice) and s["lost"] == 0

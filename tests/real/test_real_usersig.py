"""UserSig renewal in ``immodel real``: tokens live on the simulator's clock (issued at the
start of sending, seconds since then); the access node ends a push session when its
UserSig expires, and the SDK fetches a fresh token and logs in again at once; a login
with an expired token is refused (``expired``), and the SDK does the same."""

from __future__ import annotations

import pytest

from immodel import Scenario
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

# tokens issued at t = 0 with a 3 s lifetime are accepted through second 3 (verify: now
# <= time + expire, in whole seconds), so every session ends at t = 4; the fresh tokens
# (issued at second 4) would end at 8, after the run (5 s + 2 s)
EXPIRING = {**SMALL, "duration_s": 5.0, "drain_s": 2.0, "security.usersig_ttl_s": 3}
CHURNING = {
    **EXPIRING,
    "workload.users": 30,
    "workload.online_fraction": 0.7,
    "workload.mean_online_s": 3.0,
    "workload.mean_offline_s": 2.0,
}


@pytest.fixture(scope="module")
def expiring(tmp_path_factory):
    return shared_real_run(tmp_path_factory, "usersig", Scenario.load("baseline", EXPIRING))[0]


@pytest.fixture(scope="module")
def churning(tmp_path_factory):
    scenario = Scenario.load("baseline", CHURNING)
    return shared_real_run(tmp_path_factory, "usersig-churn", scenario)[0]


def test_every_session_ends_when_its_usersig_does_and_logs_in_again(expiring):
    s = expiring.summary
    users = EXPIRING["workload.users"]
    assert expiring.counters["access_sessions_expired"] == users
    assert s["relogins"] == users  # one token fetch each
    logins = expiring.requests[expiring.requests["kind"] == "login"]
    assert sorted(logins["user"].astype(int)) == list(range(users))
    # not before second 4; then the fetch (median 80 ms) and two round trips (160 ms)
    assert logins["t"].min() >= 4.0 and logins["t"].max() < 5.0
    assert s["logins_rejected"] == 0  # a session ends before its token is refused
    assert s["lost"] == 0 and s["duplicates"] == 0


def test_an_app_back_with_an_expired_usersig_is_refused_then_logs_in(churning):
    s = churning.summary
    # users offline at second 4 come back with the token of t = 0
    assert s["logins_rejected"] > 0
    assert s["relogins"] >= s["logins_rejected"]  # each refusal fetched a fresh token
    assert s["duplicates"] == 0 and s["order_violations"] == 0
    # nothing reachable is lost — except a copy still on its way to a device whose
    # (re)login completed in the run's last moments (its queue push needs a round trip)
    m = churning.messages
    lost = m[m["t_first_show"].isna() & m["reachable_after_store"].astype(bool)]
    logins = churning.requests[churning.requests["kind"] == "login"]
    horizon_s = CHURNING["duration_s"] + CHURNING["drain_s"]
    late = set(logins.loc[logins["t"] > horizon_s - 0.5, "user"].astype(int))
    assert set(lost["recipient"].astype(int)) <= late

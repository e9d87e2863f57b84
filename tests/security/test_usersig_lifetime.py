"""UserSig lifetimes in a run: expiry at login and mid-session, fresh tokens, relogins."""

import math

import immodel
from immodel.scenario import Scenario

STEADY = {
    "workload.users": 300,
    "workload.send_rate_per_user": 0.02,
    "duration_s": 60.0,
    "security.usersig_issued": "steady_state",
}


def _run(**keys):
    return immodel.run(Scenario.load("baseline", {**STEADY, **keys}))


def test_relogins_per_user_follow_the_lifetime():
    """Tokens issued uniformly over the last lifetime (whole seconds) expire at
    floor(issue) + ttl + 1; a user online all along relogs when it falls in [0, H):
    q = (ceil(H − ttl − 1) + ttl) / ttl, a binomial over users."""
    ttl = 200
    s = _run(**{"security.usersig_ttl_s": ttl}).summary
    h = s["horizon_s"]
    assert h < ttl  # at most one expiry per user
    q = (math.ceil(h - ttl - 1) + ttl) / ttl
    n = s["users"]
    mean, sd = n * q, math.sqrt(n * q * (1 - q))
    assert abs(s["relogins"] - mean) < 4 * sd
    assert s["lost"] == 0
    assert s["duplicates"] == 0


def test_a_token_expiring_mid_session_is_renewed_once_per_user():
    """Every user gets its first token at t = 0; with a 30 s lifetime each online user's
    session ends at 31 s and is renewed; the next expiry (≥ 61 s later) is past a 40 s run."""
    s = immodel.run(
        Scenario.load(
            "baseline",
            {
                "workload.users": 50,
                "workload.send_rate_per_user": 0.1,
                "duration_s": 20.0,
                "drain_s": 20.0,
                "security.usersig_ttl_s": 30,
            },
        )
    ).summary
    assert s["relogins"] == 50
    assert s["logins"] == 50  # each relogin is one login (the t = 0 sessions need none)
    assert s["lost"] == 0


def test_an_expired_token_at_login_is_refused_with_its_reason_and_refreshed():
    s = immodel.run(
        Scenario.load(
            "baseline",
            {
                "workload.users": 200,
                "workload.send_rate_per_user": 0.02,
                "workload.mean_online_s": 20.0,
                "workload.mean_offline_s": 20.0,
                "duration_s": 60.0,
                "security.usersig_ttl_s": 40,
                "security.usersig_issued": "steady_state",
            },
        )
    ).summary
    by = s["logins_rejected_by_reason"]
    assert by["auth_expired"] > 0
    assert sum(by.values()) == s["logins_rejected"] == by["auth_expired"]
    # each refused login was followed by a fetch; mid-session expiries add more
    assert s["relogins"] >= by["auth_expired"]


def test_the_vendor_default_lifetime_never_expires_in_a_run():
    s = _run(**{"security.usersig_issued": "run_start"}).summary
    assert s["relogins"] == 0
    assert s["logins_rejected"] == 0
    assert s["logins_rejected_by_reason"] == {
        "auth_malformed": 0,
        "auth_bad_signature": 0,
        "auth_wrong_app": 0,
        "auth_wrong_identifier": 0,
        "auth_expired": 0,
    }

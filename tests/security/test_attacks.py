"""Attacks from outside: frames without a session, hostile logins, replayed tokens."""

import math

import immodel
from immodel.scenario import Scenario

QUIET = {
    "workload.users": 50,
    "workload.send_rate_per_user": 0.1,
    "duration_s": 60.0,
}


def _run(**keys):
    return immodel.run(Scenario.load("baseline", {**QUIET, **keys}))


def test_every_frame_injected_without_a_session_is_refused():
    """Injections are a Poisson process at 5/s over the 60 s sending period: all of them
    (send, poll and sync alike) are refused, and the users' own traffic is untouched."""
    s = _run(**{"security.forged_per_s": 5.0}).summary
    mean = 5.0 * 60.0
    assert abs(s["forged_rejected"] - mean) < 4 * math.sqrt(mean)
    assert s["lost"] == 0
    assert s["deliveries"] == _run().summary["deliveries"]


def test_hostile_logins_are_refused_with_verify_usersigs_reasons_but_replays_pass():
    """Hostile logins at 4/s, a kind each drawn uniformly: a replay one hour after capture
    of a token that lives a day is accepted (a bearer token); nothing else is."""
    s = _run(**{"security.attack_logins_per_s": 4.0, "security.usersig_ttl_s": 86400}).summary
    by = s["logins_rejected_by_reason"]
    total = s["logins_rejected"] + s["hostile_logins_accepted"]
    assert abs(total - 240) < 4 * math.sqrt(240)
    assert s["hostile_logins_accepted"] == s["replays_accepted"]
    quarter, sd = total / 4, math.sqrt(total * 0.25 * 0.75)
    assert abs(s["replays_accepted"] - quarter) < 4 * sd
    assert abs(by["auth_wrong_identifier"] - quarter) < 4 * sd  # another user's token
    # forged (wrong key) and tampered tokens: a bad signature or an undecodable token
    assert by["auth_bad_signature"] + by["auth_malformed"] > quarter
    assert by["auth_expired"] == 0
    assert s["logins_rejected"] == sum(by.values())


def test_a_short_lifetime_makes_a_replay_worthless():
    """The same replay one hour after capture, against a 30-minute token: refused as
    expired, every one of them."""
    s = _run(**{"security.attack_logins_per_s": 4.0, "security.usersig_ttl_s": 1800}).summary
    assert s["replays_accepted"] == 0
    assert s["hostile_logins_accepted"] == 0
    assert s["logins_rejected_by_reason"]["auth_expired"] > 30

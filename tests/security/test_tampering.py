"""An on-path attacker altering messages: detected and repaired on the encrypted channel,
shown (and visible to the checker) on plaintext."""

import math

import immodel
from immodel.analysis.checker import check_trace
from immodel.scenario import Scenario

BUSY = {
    "workload.users": 100,
    "workload.send_rate_per_user": 0.5,
    "duration_s": 30.0,
}


def _run(**keys):
    return immodel.run(Scenario.load("baseline", {**BUSY, **keys}))


def test_plaintext_shows_altered_messages_at_the_tamper_rate_and_the_checker_flags_them():
    p = 0.05
    r = _run(**{"security.channel": "plaintext", "security.tamper_prob": p})
    s = r.summary
    n = s["deliveries"]
    assert n > 1000
    # each delivered copy is altered independently with probability p (no duplicates here)
    assert s["duplicates"] == 0
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    assert abs(s["tampered_deliveries"] - mean) < 4 * sd
    assert s["tamper_detected"] == 0
    assert int(r.messages["altered"].sum()) == s["tampered_deliveries"]
    report = check_trace(r.trace)
    assert report.altered_deliveries == s["tampered_deliveries"]
    assert not report.ok


def test_encrypted_channel_detects_every_alteration_and_repairs_the_message():
    r = _run(**{"security.tamper_prob": 0.05})
    s = r.summary
    assert s["tamper_detected"] > 50
    assert s["tampered_deliveries"] == 0
    assert s["lost"] == 0
    assert s["duplicates"] == 0
    assert not r.messages["altered"].any()
    report = check_trace(r.trace)
    assert report.altered_deliveries == 0
    assert report.ok
    # the reset connections came back: one extra login per detection, at most
    assert s["logins"] - _run().summary["logins"] <= s["tamper_detected"]


def test_a_trace_without_the_digest_column_is_still_valid():
    r = _run(**{"security.channel": "plaintext", "security.tamper_prob": 0.05})
    report = check_trace(r.trace.drop(columns=["digest"]))
    assert report.altered_deliveries == 0
    assert report.lost == 0


def test_the_default_run_carries_one_digest_per_message_on_every_row():
    trace = _run().trace
    per_msg = trace.groupby("msg_id")["digest"].nunique()
    assert (per_msg == 1).all()

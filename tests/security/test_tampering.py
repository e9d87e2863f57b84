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
    assert s["duplicates"] == 0
    # Theory: a shown copy crossed two frames an attacker can alter — the message's way up
    # (once per message: altered there, every recipient sees it) and its own way down —
    # so it is altered with probability 1 − (1 − p)²; copies of one message share the
    # first draw, so the variance adds each message's covariance between its recipients.
    q = 1 - p
    hit = 1 - q * q
    both = p + q * p * p  # two recipients of one message both see it altered
    shown = r.messages[r.messages["t_first_show"].notna()]
    var = 0.0
    for k in shown.groupby("msg_id").size():
        var += k * hit * (1 - hit) + k * (k - 1) * (both - hit * hit)
    assert abs(s["tampered_deliveries"] - n * hit) < 4 * math.sqrt(var)
    assert s["tamper_detected"] == 0
    assert int(r.messages["altered"].sum()) == s["tampered_deliveries"]
    report = check_trace(r.trace)
    assert report.altered_deliveries == s["tampered_deliveries"]
    assert not report.ok


def test_a_message_altered_on_its_way_up_reaches_every_recipient_altered():
    # Theory: a group message is altered on its way up with probability p, and then every
    # recipient is shown the altered text; otherwise all k copies are altered only if each
    # is altered on its own way down, p^k. So P(all copies altered) = p + (1 − p)·p^k —
    # close to p for groups, where without the uplink alteration it would be ~p^k.
    p = 0.05
    r = _run(
        **{
            "security.channel": "plaintext",
            "security.tamper_prob": p,
            "workload.group_share": 1.0,
        }
    )
    m = r.messages[r.messages["t_first_show"].notna()]
    per_msg = m.groupby("msg_id")["altered"].agg(["sum", "size"])
    groups = per_msg[per_msg["size"] >= 3]
    assert len(groups) > 500
    chance = p + (1 - p) * p ** groups["size"]
    all_altered = (groups["sum"] == groups["size"]).sum()
    sd = math.sqrt((chance * (1 - chance)).sum())
    assert abs(all_altered - chance.sum()) < 4 * sd


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


def test_a_sync_page_is_a_frame_the_attacker_alters_too():
    # Theory: a 1:1 copy first shown from a sync page crossed two frames an attacker can
    # alter — the message's way up and the page — so it is altered with probability
    # 1 − (1 − p)². (A push that arrives while a sync is out is held and shown with the
    # page, not carried by it: it too crossed two frames.) Were pages left alone, the
    # copies they carry would be altered with p only: 0.2 against 0.36, about seven
    # standard deviations off with ~600 such copies. Datagram loss makes syncs carry what
    # pushes lost.
    p = 0.2
    r = _run(
        **{
            "security.channel": "plaintext",
            "security.tamper_prob": p,
            "workload.group_share": 0.0,
            "workload.send_rate_per_user": 1.0,
            "network.model": "datagram",
            "network.downlink_loss": 0.4,
        }
    )
    m = r.messages
    by_sync = m[m["first_via"] == "sync"]
    n = len(by_sync)
    assert n > 400
    hit = 1 - (1 - p) ** 2
    sd = math.sqrt(n * hit * (1 - hit))
    assert abs(int(by_sync["altered"].sum()) - n * hit) < 4 * sd

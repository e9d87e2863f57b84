"""Content screening: the business's policy decides what a hit becomes."""

import math

import pytest

import immodel
from immodel.analysis.checker import check_trace
from immodel.scenario import Scenario

P_HIT = 0.2
KEYS = {
    "workload.users": 60,
    "workload.send_rate_per_user": 0.5,
    "duration_s": 30.0,
    "server.screening_enabled": True,
    "server.screening_block_prob": P_HIT,
}


def _run(policy):
    return immodel.run(Scenario.load("baseline", {**KEYS, "server.screening_policy": policy}))


@pytest.mark.parametrize(
    "policy,action",
    [
        ("block", "blocked"),
        ("flag", "flagged"),
        ("replace", "replaced"),
        ("sender_only", "sender_only"),
    ],
)
def test_each_hit_is_counted_under_its_policy_and_marked_in_the_records(policy, action):
    r = _run(policy)
    s = r.summary
    n = s["messages_sent"]
    hits = s[f"screening_{action}"]
    assert abs(hits - n * P_HIT) < 4 * math.sqrt(n * P_HIT * (1 - P_HIT))
    per_msg = r.messages.drop_duplicates("msg_id")
    assert int((per_msg["screening"] == action).sum()) == hits
    others = {"blocked", "flagged", "replaced", "sender_only"} - {action}
    assert all(s[f"screening_{a}"] == 0 for a in others)
    assert s["lost"] == 0
    assert check_trace(r.trace).ok  # a replaced text is the server's content, not tampering


def test_blocked_and_sender_only_hits_reach_no_recipient_flagged_and_replaced_do():
    for policy, delivered in (
        ("block", False),
        ("sender_only", False),
        ("flag", True),
        ("replace", True),
    ):
        m = _run(policy).messages
        hit = m[m["screening"] != ""]
        assert len(hit) > 0
        assert (hit["stored"] == delivered).all()
        assert (hit["t_first_show"].notna() == delivered).all()
        if not delivered:
            assert hit["send_failed"].all()


def test_a_replaced_message_is_shown_with_the_replacement_digest():
    r = _run("replace")
    replaced = set(r.messages.loc[r.messages["screening"] == "replaced", "msg_id"])
    t = r.trace[r.trace["msg_id"].isin(replaced)]
    send = t[t["event"] == "send"].set_index("msg_id")["digest"]
    shown = t[t["event"] == "deliver"].drop_duplicates("msg_id").set_index("msg_id")["digest"]
    assert (shown != send.loc[shown.index]).all()

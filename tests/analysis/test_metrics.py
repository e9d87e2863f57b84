"""Summary metrics computed from records: each counts exactly what its definition says.

The frames come from one small run (so every column the summary reads is there); the
columns a metric reads are then set by hand, so the expected value is known exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from immodel import run
from immodel.analysis.metrics import LATENCY_KEYS, summarize


@lru_cache(maxsize=1)
def _records():
    result = run(
        "baseline",
        **{
            "workload.users": 20,
            "workload.send_rate_per_user": 0.2,
            "duration_s": 10.0,
            "drain_s": 5.0,
        },
    )
    assert result.summary["messages_sent"] > 10
    return result


def _summary(messages=None, requests=None, *, horizon_s=15.0, window_s=10.0):
    r = _records()
    return summarize(
        r.messages if messages is None else messages,
        r.requests if requests is None else requests,
        r.trace,
        horizon_s=horizon_s,
        window_s=window_s,
    )


def test_retransmits_uplink_counts_only_attempts_after_the_first():
    m = _records().messages.copy()
    per_msg = m.drop_duplicates("msg_id")
    assert _summary(m.assign(attempts=1))["retransmits_uplink"] == 0
    # Message k is sent k % 4 + 1 times (each row of a message carries its attempts).
    extra = {mid: i % 4 for i, mid in enumerate(per_msg["msg_id"])}
    m["attempts"] = m["msg_id"].map(extra) + 1
    assert _summary(m)["retransmits_uplink"] == sum(extra.values())


def test_a_lossless_run_retransmits_nothing():
    s = _records().summary
    assert s["messages_sent"] > 0
    assert s["retransmits_uplink"] == 0


def _polls(times, sizes):
    return pd.DataFrame(
        {
            "t": times,
            "kind": pd.Categorical(["poll"] * len(times)),
            "user": 0,
            "messages": sizes,
        }
    ).reindex(columns=_records().requests.columns)


def test_empty_poll_fraction_counts_only_polls_of_the_sending_window():
    # Window [0, 10): 4 polls, one empty. The drain's 4 polls are all empty: over the
    # whole run the fraction would be 5/8 instead of 1/4.
    requests = _polls([1.0, 3.0, 5.0, 9.9, 10.0, 11.0, 12.0, 14.0], [2, 0, 1, 1, 0, 0, 0, 0])
    assert _summary(requests=requests)["empty_poll_fraction"] == pytest.approx(0.25)
    assert _summary(requests=requests, window_s=15.0)["empty_poll_fraction"] == pytest.approx(5 / 8)


def test_requests_per_second_counts_the_window_only():
    requests = _polls([1.0, 3.0, 5.0, 9.9, 10.0, 11.0, 12.0, 14.0], [2, 0, 1, 1, 0, 0, 0, 0])
    s = _summary(requests=requests)
    assert s["requests_per_s"] == pytest.approx(4 / 10.0)
    assert s["requests_total"] == 8 and s["requests_poll"] == 8
    assert s["window_s"] == 10.0


def test_a_run_without_polls_has_no_empty_poll_fraction():
    assert _summary(requests=_polls([], []))["empty_poll_fraction"] is None


@lru_cache(maxsize=1)
def _lossy():
    # Loss, groups, sync and an offline share: every summary count is non-trivial.
    return run(
        "lossy-mobile",
        **{
            "workload.users": 60,
            "workload.send_rate_per_user": 0.3,
            "workload.group_share": 0.3,
            "workload.groups": 4,
            "workload.group_size": 6,
            "workload.online_fraction": 0.8,
            "workload.mean_online_s": 10.0,
            "workload.mean_offline_s": 5.0,
            "network.uplink_loss": 0.2,
            "network.downlink_loss": 0.2,
            "reliability.uplink_max_attempts": 2,
            "duration_s": 20.0,
            "drain_s": 20.0,
        },
    )


def test_summary_counts_equal_the_records_counted_by_hand():
    r = _lossy()
    s, m, req = r.summary, r.messages, r.requests
    per_msg = m.drop_duplicates("msg_id")
    stored = m[m["stored"]]
    shown = stored["t_first_show"].notna()
    assert s["messages_sent"] == len(per_msg)
    assert s["deliveries_expected"] == len(stored)
    assert s["deliveries"] == int(shown.sum())
    assert s["lost"] == len(stored) - int(shown.sum()) > 0
    assert s["delivery_ratio"] == pytest.approx(shown.mean())
    assert s["send_failures"] == int(per_msg["send_failed"].sum()) > 0
    assert s["messages_stored_twice"] == int((per_msg["stored_copies"] > 1).sum())
    assert s["retransmits_uplink"] == int((per_msg["attempts"] - 1).sum()) > 0
    kinds = req["kind"].astype(str)
    for kind in ("send", "ack", "poll", "sync", "login"):
        assert s[f"requests_{kind}"] == int((kinds == kind).sum()), kind
    assert s["sync_pulls"] == s["requests_sync"]
    assert s["requests_total"] == len(req) + s["requests_heartbeat"]
    assert s["order_violations_group"] + s["order_violations_1to1"] == s["order_violations"]


def test_latency_keys_split_online_recipients_from_catch_up():
    r = _lossy()
    s, m = r.summary, r.messages
    stored = m[m["stored"]]
    for prefix, rows in (
        ("latency", stored[stored["online_at_store"]]),
        ("catchup_latency", stored[~stored["online_at_store"]]),
    ):
        x = rows["latency_ms"].dropna().to_numpy()
        assert x.size > 10, prefix
        assert s[f"{prefix}_mean_ms"] == pytest.approx(x.mean())
        assert s[f"{prefix}_p50_ms"] == pytest.approx(np.quantile(x, 0.5))
        assert s[f"{prefix}_p95_ms"] == pytest.approx(np.quantile(x, 0.95))
        assert s[f"{prefix}_p99_ms"] == pytest.approx(np.quantile(x, 0.99))
        assert s[f"{prefix}_max_ms"] == pytest.approx(x.max())


# --------------------------------------------------------------------------------------
# Every summary key on a hand-written run: three users, a 1:1 conversation "c" (user 1
# writes to 2), a 1:1 conversation "c2" (3 writes to 1) and a group "g" (1 writes to 2
# and 3). The expected values below are worked out from docs/metrics.md, row by row.
#
# m1  c   1->2  stored 0.1 key 100, shown 2.0 (its first push was lost): arrives after m2
#             (key 200), a 1:1 order violation. 2 uplink attempts.
# m2  c   1->2  stored 1.1 key 200, shown 1.3 and again 1.4 (one duplicate); stored twice.
# m4  g   1->2  stored 3.1 key 1, shown 3.8: after m5 (key 2), a group order violation.
# m4  g   1->3  same message; user 3 offline at the store, offline push at 3.3, shown 3.6.
# m5  g   1->2  stored 3.3 key 2, shown 3.5.
# m5  g   1->3  offline push at 3.9, never shown; user 3 never logged in again:
#             lost, awaiting login.
# m6  c2  3->1  stored 4.1, user 1 online and reachable, never shown: lost while reachable.
# m7  c   2->1  never stored: 3 attempts, then the app was told it failed.
_MSG_COLUMNS = [
    *("msg_id", "conversation", "is_group", "sender", "recipient", "stored", "stored_copies"),
    *("t_send", "t_stored", "t_first_show", "attempts", "online_at_store", "t_offline_push"),
    "send_failed",
]
_NAN = float("nan")
REACHABLE = "reachable_after_store"
_MSG_ROWS = [
    ("m1", "c", False, 1, 2, True, 1, 0.0, 0.1, 2.0, 2, True, _NAN, False),
    ("m2", "c", False, 1, 2, True, 2, 1.0, 1.1, 1.3, 1, True, _NAN, False),
    ("m4", "g", True, 1, 2, True, 1, 3.0, 3.1, 3.8, 1, True, _NAN, False),
    ("m4", "g", True, 1, 3, True, 1, 3.0, 3.1, 3.6, 1, False, 3.3, False),
    ("m5", "g", True, 1, 2, True, 1, 3.2, 3.3, 3.5, 1, True, _NAN, False),
    ("m5", "g", True, 1, 3, True, 1, 3.2, 3.3, _NAN, 1, False, 3.9, False),
    ("m6", "c2", False, 3, 1, True, 1, 4.0, 4.1, _NAN, 1, True, _NAN, False),
    ("m7", "c", False, 2, 1, False, 0, 4.5, _NAN, _NAN, 3, False, _NAN, True),
]
_TRACE_ROWS = [  # t, event, msg_id, conversation, user, order_key, reachable_after_store
    (0.0, "send", "m1", "c", "1", _NAN, None),
    (0.1, "stored", "m1", "c", "2", 100, True),
    (1.0, "send", "m2", "c", "1", _NAN, None),
    (1.1, "stored", "m2", "c", "2", 200, True),
    (1.2, "stored", "m2", "c", "2", 200, True),  # the second copy the server stored
    (1.3, "deliver", "m2", "c", "2", 200, None),
    (1.4, "deliver", "m2", "c", "2", 200, None),
    (2.0, "deliver", "m1", "c", "2", 100, None),
    (3.0, "send", "m4", "g", "1", _NAN, None),
    (3.1, "stored", "m4", "g", "2", 1, True),
    (3.1, "stored", "m4", "g", "3", 1, True),
    (3.2, "send", "m5", "g", "1", _NAN, None),
    (3.3, "stored", "m5", "g", "2", 2, True),
    (3.3, "stored", "m5", "g", "3", 2, False),
    (3.5, "deliver", "m5", "g", "2", 2, None),
    (3.6, "deliver", "m4", "g", "3", 1, None),
    (3.8, "deliver", "m4", "g", "2", 1, None),
    (4.0, "send", "m6", "c2", "3", _NAN, None),
    (4.1, "stored", "m6", "c2", "1", 300, True),
    (4.5, "send", "m7", "c", "2", _NAN, None),
]
# Window [0, 5) of a 10 s run: seven requests in it (t = 5.0 is not), three after it.
_REQ_ROWS = [  # t, kind, user, messages
    (0.0, "login", 1, 0),
    (0.0, "send", 1, 0),
    (0.5, "ack", 2, 1),
    (1.0, "send", 1, 0),
    (2.5, "poll", 3, 2),
    (3.5, "poll", 3, 0),
    (4.0, "poll", 3, 0),
    (5.0, "poll", 3, 0),
    (6.0, "sync", 3, 2),
    (7.0, "rest", -1, 0),  # a backend's REST call: a request of no listed kind
]


def _hand_frames():
    messages = pd.DataFrame(_MSG_ROWS, columns=_MSG_COLUMNS)
    messages["latency_ms"] = (messages["t_first_show"] - messages["t_send"]) * 1000.0
    trace = pd.DataFrame(
        _TRACE_ROWS,
        columns=[*("t", "event", "msg_id", "conversation", "user", "order_key"), REACHABLE],
    )
    requests = pd.DataFrame(_REQ_ROWS, columns=["t", "kind", "user", "messages"])
    requests["kind"] = requests["kind"].astype("category")
    return messages, requests, trace


def _hand_summary(*, window_s=5.0, extra=None):
    messages, requests, trace = _hand_frames()
    return summarize(messages, requests, trace, horizon_s=10.0, window_s=window_s, extra=extra)


def test_delivery_counts_of_a_hand_written_run():
    s = _hand_summary()
    assert s["messages_sent"] == 6  # m1 m2 m4 m5 m6 m7
    assert s["deliveries_expected"] == 7  # every (message, recipient) row but m7's
    assert s["deliveries"] == 5
    assert s["lost"] == 2  # m5 -> 3, m6 -> 1
    assert s["lost_awaiting_login"] == 1  # m5 -> 3: not reachable after the store
    assert s["lost_while_reachable"] == 1  # m6 -> 1
    assert s["delivery_ratio"] == pytest.approx(5 / 7)
    assert s["send_failures"] == 1
    assert s["duplicates"] == 1  # m2's second copy
    assert s["messages_stored_twice"] == 1
    assert s["retransmits_uplink"] == 1 + 2  # m1's second attempt, m7's second and third


def test_order_violations_split_into_one_to_one_and_group():
    s = _hand_summary()
    assert s["order_violations"] == 2
    assert s["order_violations_1to1"] == 1  # m1 after m2 at user 2
    assert s["order_violations_group"] == 1  # m4 after m5 at user 2
    # Keys follow the store order in each conversation, nobody replied: display order holds.
    assert s["stored_order_inversions"] == 0
    assert s["causal_order_violations"] == 0


def test_order_violations_of_a_run_without_groups_are_all_one_to_one():
    messages, requests, trace = _hand_frames()
    one_to_one = messages["conversation"] != "g"
    messages, trace = messages[one_to_one], trace[trace["conversation"] != "g"]
    s = summarize(messages, requests, trace, horizon_s=10.0, window_s=5.0)
    assert (s["order_violations"], s["order_violations_1to1"]) == (1, 1)
    assert s["order_violations_group"] == 0


def test_latency_statistics_of_a_hand_written_run():
    s = _hand_summary()
    # Online recipients, delivered: m1 2000, m2 300, m4->2 800, m5->2 300 ms (m6 never shown).
    assert s["latency_mean_ms"] == pytest.approx(850.0)
    # Sorted 300 300 800 2000; linear interpolation at rank q * 3.
    assert s["latency_p50_ms"] == pytest.approx(550.0)
    assert s["latency_p95_ms"] == pytest.approx(800.0 + 0.85 * 1200.0)
    assert s["latency_p99_ms"] == pytest.approx(800.0 + 0.97 * 1200.0)
    assert s["latency_max_ms"] == pytest.approx(2000.0)
    # Offline at the store: m4 -> 3 shown after 600 ms; m5 -> 3 never shown.
    for k in LATENCY_KEYS:
        assert s[f"catchup_latency_{k}_ms"] == pytest.approx(600.0), k
    # Offline push (notification, not message): m4 -> 3 after 200 ms, m5 -> 3 after 600 ms.
    assert s["offline_push_latency_mean_ms"] == pytest.approx(400.0)
    # Read latency: the same offline population, send -> first shown.
    assert s["read_latency_p50_ms"] == pytest.approx(600.0)
    assert s["read_latency_p99_ms"] == pytest.approx(600.0)
    assert s["delivery_by_device"] == {}  # no device column


def test_a_run_without_offline_pushes_has_no_offline_push_latency():
    messages, requests, trace = _hand_frames()
    messages["t_offline_push"] = _NAN
    s = summarize(messages, requests, trace, horizon_s=10.0, window_s=5.0)
    assert s["offline_push_latency_mean_ms"] is None


def test_request_counts_add_heartbeats_and_idle_polls():
    extra = {"heartbeats": 10, "heartbeats_window": 4, "idle_polls": 3, "idle_polls_window": 2}
    s = _hand_summary(extra=extra)
    # 10 listed requests (the REST call included), 10 heartbeats, 3 idle polls.
    assert s["requests_total"] == 10 + 10 + 3
    assert (s["requests_send"], s["requests_ack"], s["requests_sync"]) == (2, 1, 1)
    assert s["requests_login"] == 1
    assert s["requests_poll"] == 4 + 3
    assert s["requests_heartbeat"] == 10
    assert s["sync_pulls"] == 1
    assert s["window_s"] == 5.0
    # In [0, 5): 7 listed requests, 4 heartbeats, 2 idle polls, over 5 s.
    assert s["requests_per_s"] == pytest.approx((7 + 4 + 2) / 5.0)
    # Polls in the window: 2.5 s (two messages), 3.5 and 4.0 s (empty), 2 idle (empty) polls.
    assert s["empty_poll_fraction"] == pytest.approx(4 / 5)


def test_request_counts_without_extra_counters():
    s = _hand_summary()
    assert s["requests_total"] == 10
    assert s["requests_poll"] == 4
    assert s["requests_heartbeat"] == 0
    assert s["requests_per_s"] == pytest.approx(7 / 5.0)
    assert s["empty_poll_fraction"] == pytest.approx(2 / 3)


def test_heartbeats_of_the_window_default_to_all_heartbeats():
    s = _hand_summary(extra={"heartbeats": 10})
    assert s["requests_total"] == 10 + 10
    assert s["requests_per_s"] == pytest.approx((7 + 10) / 5.0)


def test_the_window_defaults_to_the_whole_run():
    s = _hand_summary(window_s=None)
    assert s["window_s"] == 10.0
    assert s["requests_per_s"] == pytest.approx(10 / 10.0)  # every request is before 10 s
    # Polls at 2.5 (two messages), 3.5, 4.0 and 5.0 (empty).
    assert s["empty_poll_fraction"] == pytest.approx(3 / 4)


def test_a_window_of_zero_length_has_no_request_rate():
    assert _hand_summary(window_s=0.0)["requests_per_s"] is None
    # Half a second: the login and the send at t = 0.
    assert _hand_summary(window_s=0.5)["requests_per_s"] == pytest.approx(2 / 0.5)


def test_a_message_never_attempted_retransmits_nothing():
    messages, requests, trace = _hand_frames()
    messages.loc[messages["msg_id"] == "m7", "attempts"] = 0
    s = summarize(messages, requests, trace, horizon_s=10.0, window_s=5.0)
    assert s["retransmits_uplink"] == 1  # m1's second attempt only


def test_a_run_that_stored_nothing_has_no_delivery_ratio_and_no_latency():
    messages, requests, trace = _hand_frames()
    messages, trace = messages[messages["msg_id"] == "m7"], trace[trace["msg_id"] == "m7"]
    s = summarize(messages, requests, trace, horizon_s=10.0, window_s=5.0)
    assert (s["messages_sent"], s["deliveries_expected"], s["deliveries"]) == (1, 0, 0)
    assert s["delivery_ratio"] is None
    assert s["latency_p50_ms"] is None and s["catchup_latency_mean_ms"] is None
    assert s["offline_push_latency_mean_ms"] is None
    assert s["order_violations"] == 0


def test_delivery_by_device_counts_each_device_kind_and_its_requests():
    messages, requests, trace = _hand_frames()
    messages["device"] = "phone"
    requests["device"] = "phone"
    s = summarize(messages, requests, trace, horizon_s=10.0, window_s=5.0)
    assert s["delivery_by_device"] == {
        "phone": {
            "deliveries_expected": 7,
            "deliveries": 5,
            "lost": 2,
            "latency_p50_ms": pytest.approx(550.0),  # as latency_p50_ms above
            "latency_p99_ms": pytest.approx(800.0 + 0.97 * 1200.0),
            "requests": 10,
            "sync_items": 2,  # the one sync page carried two messages
        }
    }


def test_extra_keys_pass_through_without_overriding_measured_ones():
    s = _hand_summary(extra={"users": 3, "lost": 99, "server_utilization": np.float64(0.25)})
    assert s["users"] == 3
    assert s["lost"] == 2  # measured from the records, not the counter
    assert s["server_utilization"] == 0.25
    assert type(s["server_utilization"]) is float  # plain Python, for JSON


def test_summary_values_are_plain_python_and_non_finite_becomes_none():
    s = _hand_summary(extra={"wait_mean_ms_store": float("inf"), "sim_events": np.int64(7)})
    assert s["wait_mean_ms_store"] is None
    assert s["sim_events"] == 7 and type(s["sim_events"]) is int
    for key in ("messages_sent", "deliveries", "lost", "duplicates", "order_violations"):
        assert type(s[key]) is int, key
    for key in ("latency_mean_ms", "delivery_ratio", "requests_per_s"):
        assert type(s[key]) is float, key

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
from immodel.analysis.metrics import summarize


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

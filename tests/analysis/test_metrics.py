"""Summary metrics computed from records: each counts exactly what its definition says.

The frames come from one small run (so every column the summary reads is there); the
columns a metric reads are then set by hand, so the expected value is known exactly.
"""

from __future__ import annotations

from functools import lru_cache

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

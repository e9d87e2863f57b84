"""Per-device summary metrics on hand-made records: read latency is per user (its first
device), delivery_by_device per device kind."""

from __future__ import annotations

import math

import pandas as pd

from immodel.analysis.metrics import by_device, read_latency


def _rows(rows):
    cols = ["msg_id", "sender", "recipient", "device", "stored", "online_at_store"]
    cols += ["t_send", "t_first_show"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["latency_ms"] = (frame["t_first_show"] - frame["t_send"]) * 1000.0
    return frame


NAN = math.nan
MESSAGES = _rows(
    [
        # m1: user 1 offline on both devices, reads it first on the web client at t = 5
        ("m1", 0, 1, "phone", True, False, 1.0, 10.0),
        ("m1", 0, 1, "web", True, False, 1.0, 5.0),
        ("m1", 0, 0, "web", True, True, 1.0, 1.1),  # the sender's own other device
        # m2: user 2 had its phone connected: not an offline reader
        ("m2", 0, 2, "phone", True, True, 2.0, 2.1),
        ("m2", 0, 2, "web", True, False, 2.0, 30.0),
        # m3: user 3 offline and never shown: left out; its web copy is lost
        ("m3", 0, 3, "phone", True, False, 3.0, NAN),
        ("m3", 0, 3, "web", True, False, 3.0, NAN),
        # m4: user 4 offline, shown after 7 s
        ("m4", 0, 4, "phone", True, False, 4.0, 11.0),
    ]
)


def test_read_latency_is_the_first_show_on_any_device_of_an_offline_user():
    got = read_latency(MESSAGES)
    # the offline readers: m1 → user 1 (4 s, its web client), m4 → user 4 (7 s)
    assert got["read_latency_p50_ms"] == 5500.0
    assert math.isclose(got["read_latency_p99_ms"], 4000.0 + 0.99 * 3000.0)


def test_read_latency_with_one_device_per_user_is_the_catch_up_population():
    one = MESSAGES[MESSAGES["device"] == "phone"]
    got = read_latency(one)
    # m1 → user 1 by phone (9 s), m4 → user 4 (7 s)
    assert got["read_latency_p50_ms"] == 8000.0
    assert read_latency(one.drop(columns="device")) == got


def test_read_latency_without_offline_readers_is_none():
    online = MESSAGES[MESSAGES["online_at_store"]]
    assert read_latency(online) == {"read_latency_p50_ms": None, "read_latency_p99_ms": None}


def test_delivery_by_device_counts_each_kind_own_pairs():
    requests = pd.DataFrame(
        {
            "kind": ["sync", "poll", "ack"],
            "messages": [3, 0, 1],
            "device": ["web", "web", "phone"],
        }
    )
    got = by_device(MESSAGES, requests)
    assert got["phone"]["deliveries_expected"] == 4
    assert got["phone"]["lost"] == 1
    assert got["web"]["deliveries_expected"] == 4
    assert got["web"]["deliveries"] == 3 and got["web"]["lost"] == 1
    # latency only over pairs whose device was connected at store
    assert math.isclose(got["phone"]["latency_p50_ms"], 100.0)
    assert math.isclose(got["web"]["latency_p99_ms"], 100.0)
    assert got["web"]["requests"] == 2 and got["web"]["sync_items"] == 3
    assert got["phone"]["requests"] == 1 and got["phone"]["sync_items"] == 0


def test_read_latency_leaves_out_the_senders_own_devices():
    # The sender's own web client, offline when m4 was stored and shown it at 4.5 s, is
    # not a reader: the result is the one without it.
    own = _rows([("m4", 0, 0, "web", True, False, 4.0, 4.5)])
    assert read_latency(pd.concat([MESSAGES, own], ignore_index=True)) == read_latency(MESSAGES)


def test_delivery_by_device_without_device_requests_has_no_request_counts():
    requests = pd.DataFrame({"kind": ["sync"], "messages": [3]})
    got = by_device(MESSAGES, requests)
    assert got["web"]["deliveries"] == 3
    assert "requests" not in got["web"] and "sync_items" not in got["web"]

"""Display-order metrics of a trace (``docs/metrics.md``, "Order") on hand-written traces.

``stored_order_inversions``: messages whose order key is smaller than that of a message of
the same conversation stored strictly earlier (a message's first ``stored`` row counts).
``causal_order_violations``: sends whose sender had been shown, at or before the send, a
message of the same conversation with a larger order key. Each case says why it counts;
the last test compares the vectorised computation with the direct pandas formulation of
these definitions on random traces (ties, repeated stores, missing values).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immodel.analysis.metrics import order_inversions

NAN = math.nan
COLUMNS = ["t", "event", "msg_id", "conversation", "user", "order_key"]


def _count(rows):
    return order_inversions(pd.DataFrame(rows, columns=COLUMNS))


def _stored(rows):
    return _count(rows)["stored_order_inversions"]


def _causal(rows):
    return _count(rows)["causal_order_violations"]


def test_a_trace_without_stored_rows_has_no_inversions():
    rows = [(0.0, "send", "a", "c", "1", NAN), (0.5, "send", "b", "c", "2", NAN)]
    assert _count(rows) == {"stored_order_inversions": 0, "causal_order_violations": 0}


def test_a_key_below_any_earlier_stored_key_is_an_inversion():
    # Stored in time order a (30), b (10), c (20): b is below a, and c is below a too
    # although it is above the message stored just before it. The file lists b first:
    # the order is the stored time, not the row.
    rows = [
        (2.0, "stored", "b", "c", "2", 10),
        (1.0, "stored", "a", "c", "2", 30),
        (3.0, "stored", "c", "c", "2", 20),
    ]
    assert _stored(rows) == 2


def test_equal_keys_and_increasing_keys_are_no_inversion():
    rows = [
        (1.0, "stored", "a", "c", "2", 10),
        (2.0, "stored", "b", "c", "2", 10),
        (3.0, "stored", "d", "c", "2", 11),
    ]
    assert _stored(rows) == 0


def test_conversations_are_ordered_independently():
    # c2's key 5 is below c's 30, stored later, but in another conversation.
    rows = [
        (1.0, "stored", "a", "c", "2", 30),
        (2.0, "stored", "x", "c2", "1", 5),
        (3.0, "stored", "y", "c2", "1", 6),
    ]
    assert _stored(rows) == 0


def test_a_message_stored_twice_keeps_its_first_time_and_key():
    # a's second copy (no server dedup) at 5 s with key 5 would be below b's 20; the first
    # copy (1 s, key 10) is not. A group message's rows, one per recipient, are one message.
    rows = [
        (1.0, "stored", "a", "c", "2", 10),
        (2.0, "stored", "b", "c", "2", 20),
        (5.0, "stored", "a", "c", "2", 5),
        (6.0, "stored", "g1", "g", "2", 1),
        (6.0, "stored", "g1", "g", "3", 1),
    ]
    assert _stored(rows) == 0


def test_a_reply_to_a_message_shown_with_a_larger_key_is_a_causal_violation():
    # User 2 was shown a (key 30) at 2.0 and then b (key 10, a fast-clock stamp seen
    # late) at 2.5; at 3.0 it replies with r, stamped 20: r sorts above a, which it
    # answers. The largest key shown so far counts, not the last one shown.
    rows = [
        (1.0, "stored", "a", "c", "2", 30),
        (1.1, "stored", "b", "c", "2", 10),
        (2.0, "deliver", "a", "c", "2", 30),
        (2.5, "deliver", "b", "c", "2", 10),
        (3.0, "send", "r", "c", "2", NAN),
        (3.1, "stored", "r", "c", "1", 20),
    ]
    assert _causal(rows) == 1


def test_every_later_send_of_the_same_sender_is_compared():
    # Two replies after seeing key 30, both stamped below it: two violations.
    rows = [
        (1.0, "stored", "a", "c", "2", 30),
        (2.0, "deliver", "a", "c", "2", 30),
        (3.0, "send", "r1", "c", "2", NAN),
        (3.1, "stored", "r1", "c", "1", 20),
        (4.0, "send", "r2", "c", "2", NAN),
        (4.1, "stored", "r2", "c", "1", 25),
    ]
    assert _causal(rows) == 2


def test_a_message_shown_at_the_instant_of_the_send_was_seen_before_it():
    rows = [
        (1.0, "stored", "a", "c", "2", 30),
        (2.0, "deliver", "a", "c", "2", 30),
        (2.0, "send", "r", "c", "2", NAN),
        (2.1, "stored", "r", "c", "1", 20),
    ]
    assert _causal(rows) == 1


def test_what_the_sender_had_not_seen_is_no_causal_violation():
    rows = [
        (1.0, "stored", "a", "c", "2", 30),
        # r is sent at 1.5, before user 2 is shown a at 2.0
        (1.5, "send", "r", "c", "2", NAN),
        (1.6, "stored", "r", "c", "1", 20),
        (2.0, "deliver", "a", "c", "2", 30),
        # user 3 was shown a, but in another conversation it writes to c3
        (2.2, "deliver", "a", "c", "3", 30),
        (3.0, "send", "s", "c3", "3", NAN),
        (3.1, "stored", "s", "c3", "4", 20),
        # user 4 was shown nothing in c and sends there
        (3.5, "send", "u", "c", "4", NAN),
        (3.6, "stored", "u", "c", "2", 21),
        # an equal key is no violation; a send never stored has no key to compare
        (4.0, "send", "e", "c", "2", NAN),
        (4.1, "stored", "e", "c", "1", 30),
        (5.0, "send", "f", "c", "2", NAN),
    ]
    assert _count(rows) == {"stored_order_inversions": 2, "causal_order_violations": 0}


def _reference(trace: pd.DataFrame) -> dict[str, int]:
    """The direct pandas formulation (groupbys and joins on the id strings) that
    ``order_inversions`` computes on integer codes; kept here as the oracle."""
    ev = trace["event"].astype(str)
    stored = trace[ev == "stored"]
    if stored.empty:
        return {"stored_order_inversions": 0, "causal_order_violations": 0}
    first = stored.sort_values("t", kind="stable").drop_duplicates("msg_id")
    first = first[["t", "msg_id", "conversation", "order_key"]].astype({"order_key": float})
    first = first.sort_values(["conversation", "t"], kind="stable")
    at_instant = first.groupby(["conversation", "t"], sort=False)["order_key"].max()
    by_conv = at_instant.groupby(level=0, sort=False)
    prior = by_conv.cummax().groupby(level=0, sort=False).shift().rename("before")
    before = first.join(prior, on=["conversation", "t"])["before"]
    stored_inv = int((first["order_key"] < before).sum())
    key_of = first.set_index("msg_id")["order_key"]
    cols = ["t", "conversation", "user"]
    dl = trace.loc[ev == "deliver", cols].assign(
        seen=trace.loc[ev == "deliver", "order_key"].astype(float), own=np.nan, rank=0
    )
    sends = trace.loc[ev == "send", [*cols, "msg_id"]]
    sd = sends[cols].assign(seen=np.nan, own=sends["msg_id"].map(key_of).to_numpy(), rank=1)
    rows = pd.concat([dl, sd], ignore_index=True).astype({"conversation": str, "user": str})
    rows = rows.sort_values(["conversation", "user", "t", "rank"], kind="stable")
    keys = [rows["conversation"], rows["user"]]
    seen_max = rows["seen"].groupby(keys, sort=False).cummax()
    seen_max = seen_max.groupby(keys, sort=False).ffill()
    causal = int(((rows["rank"] == 1) & (rows["own"] < seen_max)).sum())
    return {"stored_order_inversions": stored_inv, "causal_order_violations": causal}


def _random_trace(rng: np.random.Generator, n: int, gaps: bool) -> pd.DataFrame:
    """Few messages, conversations, users and instants, so that ties, repeated stores,
    inversions and causal violations are common; with ``gaps``, missing values too."""

    def pick(values, p_missing):
        out = rng.choice(np.asarray(values, dtype=object), n)
        if gaps:
            out[rng.random(n) < p_missing] = None
        return out

    trace = pd.DataFrame(
        {
            "t": rng.integers(0, 6, n).astype(float),
            "event": rng.choice(["send", "stored", "deliver"], n),
            "msg_id": pick([f"m{i}" for i in range(8)], 0.05),
            "conversation": pick(["a", "b", "c"], 0.1),
            "user": pick(["1", "2", "3"], 0.1),
            "order_key": rng.integers(0, 10, n).astype(float),
        }
    )
    if gaps:
        trace.loc[rng.random(n) < 0.1, "order_key"] = np.nan
        trace.loc[rng.random(n) < 0.05, "t"] = np.nan
    return trace


@pytest.mark.parametrize("gaps", [False, True])
def test_the_coded_computation_equals_the_direct_pandas_one(gaps):
    rng = np.random.default_rng(7)
    counted = {"stored_order_inversions": 0, "causal_order_violations": 0}
    for _ in range(120):
        trace = _random_trace(rng, int(rng.integers(1, 40)), gaps)
        want = _reference(trace)
        assert order_inversions(trace) == want, trace.to_string()
        # the simulator's dtypes: a categorical event, a str user
        typed = trace.astype({"event": pd.CategoricalDtype(["send", "stored", "deliver"])})
        assert order_inversions(typed) == want
        for name, value in want.items():
            counted[name] += value
    assert all(counted.values())  # the traces did exercise both counts

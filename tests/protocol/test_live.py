"""The live room's protocol decisions (immodel.protocol.live), driven directly: the rate
cap's window rule with priorities and the bounded recent buffer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immodel.protocol.live import (
    DROP_REASON,
    PRIORITIES,
    RateCap,
    RecentBuffer,
    keep_by_priority,
)


def _offer_all(cap: RateCap, offers: list[tuple[float, str]]) -> None:
    for i, (t, p) in enumerate(offers):
        cap.offer(t, f"m{i}", p)


def test_under_the_cap_everything_is_accepted_in_arrival_order():
    cap = RateCap(cap_per_window=5, window_s=1.0)
    _offer_all(cap, [(0.1, "low"), (0.2, "high"), (0.3, "normal")])
    d = cap.close(0)
    assert [a.msg_id for a in d.accepted] == ["m0", "m1", "m2"]
    assert [a.seq for a in d.accepted] == [1, 2, 3]
    assert d.dropped == ()


def test_over_the_cap_low_priority_is_dropped_first_even_when_it_came_first():
    cap = RateCap(cap_per_window=2, window_s=1.0)
    _offer_all(cap, [(0.1, "low"), (0.2, "normal"), (0.9, "high")])
    d = cap.close(0)
    assert [a.msg_id for a in d.accepted] == ["m1", "m2"]  # arrival order kept
    assert [(x.msg_id, x.priority, x.reason) for x in d.dropped] == [("m0", "low", DROP_REASON)]


def test_high_is_dropped_only_when_high_alone_exceeds_the_cap():
    cap = RateCap(cap_per_window=3, window_s=1.0)
    _offer_all(cap, [(0.1 * i, "high") for i in range(5)] + [(0.7, "normal")])
    d = cap.close(0)
    assert [a.msg_id for a in d.accepted] == ["m0", "m1", "m2"]  # earliest highs
    assert sorted(x.priority for x in d.dropped) == ["high", "high", "normal"]


def test_windows_are_decided_separately_and_seqs_continue_across_them():
    cap = RateCap(cap_per_window=1, window_s=0.5)
    _offer_all(cap, [(0.1, "normal"), (0.2, "normal"), (0.6, "normal")])
    assert cap.next_deadline() == 0.5
    first = cap.close(0)
    assert cap.next_deadline() == 1.0
    second = cap.close(1)
    assert [a.seq for a in first.accepted] == [1]
    assert [a.seq for a in second.accepted] == [2]
    assert len(first.dropped) == 1 and second.dropped == ()
    assert cap.close(1).accepted == () and cap.next_deadline() is None


def test_a_message_arriving_after_its_window_was_decided_joins_the_next_window():
    cap = RateCap(cap_per_window=5, window_s=0.2)
    cap.offer(0.1, "early", "normal")
    first = cap.close(0)
    # 0.19999… by the caller's clock, but window 0 is decided: it goes to window 1
    assert cap.offer(0.2 - 1e-12, "boundary", "normal") == 1
    second = cap.close(1)
    assert [a.msg_id for a in first.accepted] == ["early"]
    assert [a.msg_id for a in second.accepted] == ["boundary"]


def test_bad_arguments_are_refused_with_the_argument_named():
    cases = [
        (lambda: RateCap(0, 1.0), "cap_per_window must be ≥ 1, got 0"),
        (lambda: RateCap(1, 0.0), "window_s must be > 0, got 0.0"),
        (
            lambda: RateCap(1, 1.0).offer(0.0, "m", "urgent"),
            f"priority must be one of {', '.join(PRIORITIES)}, got 'urgent'",
        ),
        (lambda: RecentBuffer(0), "capacity must be ≥ 1, got 0"),
        (lambda: keep_by_priority({"high": 1}, -1), "cap must be ≥ 0, got -1"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message


def test_the_smallest_allowed_values_work():
    # a cap of 0 keeps nothing (a muted room), a buffer of one holds the newest message
    assert keep_by_priority({"high": 2, "normal": 1, "low": 0}, 0) == {
        "high": 0,
        "normal": 0,
        "low": 0,
    }
    buf = RecentBuffer(capacity=1)
    buf.publish(1, "a")
    buf.publish(2, "b")
    assert buf.since(0) == ([(2, "b")], 1)


def test_a_window_decision_names_its_window():
    cap = RateCap(cap_per_window=1, window_s=1.0)
    cap.offer(2.5, "m", "normal")
    assert cap.close(2).window == 2
    assert cap.close(7).window == 7  # an empty decision too


@given(
    st.lists(st.sampled_from(PRIORITIES), max_size=60),
    st.integers(min_value=1, max_value=30),
)
def test_the_window_keeps_min_offered_cap_and_by_priority_as_the_rule_says(prios, c):
    cap = RateCap(cap_per_window=c, window_s=1.0)
    _offer_all(cap, [(0.5, p) for p in prios])
    d = cap.close(0)
    assert len(d.accepted) == min(len(prios), c)
    assert len(d.accepted) + len(d.dropped) == len(prios)
    offered = {p: prios.count(p) for p in PRIORITIES}
    kept = {p: sum(a.priority == p for a in d.accepted) for p in PRIORITIES}
    assert kept == keep_by_priority(offered, c)
    # the rule itself: high = min(H, c); a lower priority only gets what is left
    assert kept["high"] == min(offered["high"], c)
    if any(x.priority == "high" for x in d.dropped):
        assert offered["high"] > c
    if any(x.priority == "normal" for x in d.dropped):
        assert kept["low"] == 0
    assert [a.seq for a in d.accepted] == list(range(1, len(d.accepted) + 1))


def test_the_buffer_returns_what_follows_the_cursor():
    buf = RecentBuffer(capacity=3)
    for seq in range(1, 4):
        buf.publish(seq, f"m{seq}")
    items, skipped = buf.since(1)
    assert [s for s, _ in items] == [2, 3] and skipped == 0
    assert buf.since(3) == ([], 0)


def test_what_left_the_buffer_before_the_viewer_asked_is_skipped_not_resent():
    buf = RecentBuffer(capacity=3)
    for seq in range(1, 8):
        buf.publish(seq, seq)
    assert buf.oldest == 5 and buf.head == 7
    items, skipped = buf.since(2)
    assert [s for s, _ in items] == [5, 6, 7]
    assert skipped == 2  # seqs 3 and 4 are gone for good


def test_the_buffer_takes_seqs_in_order_only():
    buf = RecentBuffer(capacity=2)
    buf.publish(1, None)
    with pytest.raises(ValueError) as info:
        buf.publish(3, None)
    assert str(info.value) == "seq 3 does not follow head 1"

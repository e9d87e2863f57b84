"""The vendor's notification rate limit: a token bucket of one second's worth, refilled
continuously (:class:`immodel.protocol.notification.TokenBucket`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immodel.protocol.notification import TokenBucket


def test_a_full_bucket_lets_one_seconds_worth_through_at_once_then_refuses():
    bucket = TokenBucket(4.0, now=10.0)
    assert [bucket.take(10.0) for _ in range(5)] == [True, True, True, True, False]


def test_it_refills_at_its_rate_and_holds_at_most_one_second():
    bucket = TokenBucket(4.0, now=0.0)
    for _ in range(4):
        assert bucket.take(0.0)
    assert not bucket.take(0.2)  # 0.8 of a token after 0.2 s at 4 per s
    assert bucket.take(0.25)  # a whole one after 0.25 s
    # an idle minute fills it to 4 tokens, not 240
    assert sum(bucket.take(60.0) for _ in range(10)) == 4


@given(
    rate=st.floats(0.5, 50.0),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=200),
)
def test_no_window_lets_more_through_than_its_rate_allows(rate, gaps):
    # theory: over any interval [a, b] a bucket of capacity r refilled at r per s lets
    # through at most r + r (b - a) notifications
    bucket = TokenBucket(rate, now=0.0)
    now = 0.0
    passed = []
    for gap in gaps:
        now += gap
        if bucket.take(now):
            passed.append(now)
    for i, a in enumerate(passed):
        for j in range(i, len(passed)):
            assert j - i + 1 <= rate + rate * (passed[j] - a) + 1e-9


def test_a_rate_of_zero_is_not_a_bucket():
    with pytest.raises(ValueError):
        TokenBucket(0.0)

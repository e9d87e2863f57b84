"""The REST API's per-app rate limit and the backend's retry decisions (immodel.protocol.rest)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immodel.protocol.rest import (
    ACCEPTED,
    GAVE_UP,
    RATE_LIMITED,
    CallAt,
    CallDone,
    CallNow,
    FixedWindowLimiter,
    RestAnswer,
    RestCaller,
)


def test_limiter_admits_up_to_the_limit_in_a_second_then_refuses_until_the_next():
    lim = FixedWindowLimiter(3)
    assert [lim.admit(t).admitted for t in (5.0, 5.1, 5.2)] == [True, True, True]
    refused = lim.admit(5.25)
    assert not refused.admitted
    assert refused.retry_after_s == pytest.approx(0.75)
    assert lim.admit(6.0).admitted  # a new whole second opens a new window


def test_limiter_refusal_points_at_the_start_of_the_next_second():
    lim = FixedWindowLimiter(1)
    lim.admit(10.4)
    for t in (10.4, 10.5, 10.999):
        a = lim.admit(t)
        assert not a.admitted
        assert t + a.retry_after_s == pytest.approx(11.0)


def test_limiter_rejects_a_limit_below_one():
    with pytest.raises(ValueError, match="max_calls_per_s"):
        FixedWindowLimiter(0)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 20),
    gaps=st.lists(st.floats(0.0, 0.5, allow_nan=False), min_size=1, max_size=300),
)
def test_limiter_admits_min_of_arrivals_and_limit_in_every_whole_second(limit, gaps):
    lim = FixedWindowLimiter(limit)
    t = 0.0
    arrivals: dict[int, int] = {}
    admitted: dict[int, int] = {}
    for g in gaps:
        t += g
        k = math.floor(t)
        arrivals[k] = arrivals.get(k, 0) + 1
        a = lim.admit(t)
        if a.admitted:
            admitted[k] = admitted.get(k, 0) + 1
        else:
            assert 0 < a.retry_after_s <= 1.0
            assert math.floor(t + a.retry_after_s + 1e-9) == k + 1
    for k, n in arrivals.items():
        assert admitted.get(k, 0) == min(n, limit)


def test_caller_sends_once_and_finishes_on_acceptance():
    c = RestCaller(timeout_s=10.0)
    assert c.start("c1", 0.0) == [CallNow("c1", 1)]
    assert c.deadline("c1") == 10.0
    done = c.handle_answer(RestAnswer("c1", 1, ACCEPTED), 0.1)
    assert done == [CallDone("c1", ACCEPTED, 1)]
    assert len(c) == 0 and c.retries == 0 and c.refused == 0


def test_caller_waits_the_retry_after_then_calls_again():
    c = RestCaller(timeout_s=10.0)
    c.start("c1", 0.0)
    plan = c.handle_answer(RestAnswer("c1", 1, RATE_LIMITED, retry_after_s=0.6), 0.4)
    assert plan == [CallAt("c1", pytest.approx(1.0))]
    assert c.deadline("c1") is None  # no timeout while it waits for its retry-after
    assert c.handle_timeout("c1", 1, 10.0) == []
    assert c.retry_due("c1", 1.0) == [CallNow("c1", 2)]
    assert c.refused == 1 and c.retries == 1
    assert c.handle_answer(RestAnswer("c1", 2, ACCEPTED), 1.1) == [CallDone("c1", ACCEPTED, 2)]


def test_caller_resends_the_same_call_when_no_answer_comes():
    c = RestCaller(timeout_s=2.0)
    c.start("c1", 0.0)
    assert c.handle_timeout("c1", 1, 1.0) == []  # not due yet
    assert c.handle_timeout("c1", 1, 2.0) == [CallNow("c1", 2)]
    assert c.handle_timeout("c1", 1, 4.0) == []  # a stale timer of attempt 1
    assert c.timeouts == 1
    # the first attempt's late answer completes the call (its messages are stored)
    assert c.handle_answer(RestAnswer("c1", 1, ACCEPTED), 4.5) == [CallDone("c1", ACCEPTED, 2)]
    assert c.handle_answer(RestAnswer("c1", 2, ACCEPTED), 4.6) == []


def test_caller_ends_a_call_refused_for_its_usersig():
    c = RestCaller(timeout_s=2.0)
    c.start("c1", 0.0)
    assert c.handle_answer(RestAnswer("c1", 1, "auth_expired"), 0.1) == [
        CallDone("c1", "auth_expired", 1)
    ]


def test_caller_ignores_a_refusal_of_an_older_attempt():
    c = RestCaller(timeout_s=1.0)
    c.start("c1", 0.0)
    c.handle_timeout("c1", 1, 1.0)  # attempt 2 is out
    assert c.handle_answer(RestAnswer("c1", 1, RATE_LIMITED, 0.5), 1.2) == []
    assert c.deadline("c1") == 2.0


def test_caller_refuses_a_call_id_used_twice():
    c = RestCaller(timeout_s=1.0)
    c.start("c1", 0.0)
    with pytest.raises(ValueError, match="already started"):
        c.start("c1", 0.5)


def test_caller_gives_up_when_the_attempt_after_its_last_retry_is_refused():
    c = RestCaller(timeout_s=10.0, max_retries=1)
    c.start("c1", 0.0)
    assert c.handle_answer(RestAnswer("c1", 1, RATE_LIMITED, 0.5), 0.5) == [CallAt("c1", 1.0)]
    assert c.retry_due("c1", 1.0) == [CallNow("c1", 2)]
    assert c.handle_answer(RestAnswer("c1", 2, RATE_LIMITED, 0.5), 1.5) == [
        CallDone("c1", GAVE_UP, 2)
    ]
    assert len(c) == 0 and c.gave_up == 1 and c.retries == 1 and c.refused == 2


def test_caller_with_no_retries_gives_up_on_the_first_refusal():
    c = RestCaller(timeout_s=10.0, max_retries=0)
    c.start("c1", 0.0)
    assert c.handle_answer(RestAnswer("c1", 1, RATE_LIMITED, 0.5), 0.5) == [
        CallDone("c1", GAVE_UP, 1)
    ]


def test_caller_does_not_count_timeouts_or_stale_refusals_against_the_retry_budget():
    c = RestCaller(timeout_s=1.0, max_retries=1)
    c.start("c1", 0.0)
    assert c.handle_timeout("c1", 1, 1.0) == [CallNow("c1", 2)]  # a re-send, not a refusal
    assert c.handle_answer(RestAnswer("c1", 1, RATE_LIMITED, 0.5), 1.2) == []  # stale
    assert c.handle_answer(RestAnswer("c1", 2, RATE_LIMITED, 0.5), 1.3) == [CallAt("c1", 1.8)]
    assert c.gave_up == 0 and len(c) == 1


def test_caller_rejects_a_negative_retry_budget():
    with pytest.raises(ValueError, match="max_retries"):
        RestCaller(timeout_s=1.0, max_retries=-1)


def test_caller_counters_add_up_over_several_events():
    c = RestCaller(timeout_s=1.0, max_retries=0)
    c.start("c1", 0.0)
    c.handle_timeout("c1", 1, 1.0)
    c.handle_timeout("c1", 2, 2.0)
    assert c.timeouts == 2
    c.handle_answer(RestAnswer("c1", 3, RATE_LIMITED, 0.5), 2.1)  # gives up
    c.start("c2", 3.0)
    c.handle_answer(RestAnswer("c2", 1, RATE_LIMITED, 0.5), 3.1)  # gives up too
    assert c.gave_up == 2 and c.refused == 2
    patient = RestCaller(timeout_s=10.0)
    patient.start("c3", 0.0)
    for attempt, t in ((1, 0.1), (2, 1.1)):
        patient.handle_answer(RestAnswer("c3", attempt, RATE_LIMITED, 0.5), t)
        patient.retry_due("c3", t + 0.5)
    assert patient.retries == 2


def test_bad_limits_are_refused_with_the_argument_named():
    cases = [
        (lambda: FixedWindowLimiter(0), "max_calls_per_s must be ≥ 1"),
        (lambda: RestCaller(timeout_s=0.0), "timeout_s must be > 0"),
        (lambda: RestCaller(timeout_s=1.0, max_retries=-1), "max_retries must be >= 0 or None"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message


def test_a_retry_timer_that_is_not_due_sends_nothing():
    c = RestCaller(timeout_s=1.0)
    assert c.retry_due("nobody", 5.0) == []  # a call that ended or never was
    c.start("c1", 0.0)
    assert c.retry_due("c1", 0.5) == []  # in flight, not waiting for a retry-after

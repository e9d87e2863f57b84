"""Long and short polling in ``immodel real``: web clients over HTTPS (aiohttp) lose and
duplicate nothing, their polls are recorded with the messages each answer carried, and
ACKs ride on polls (no ACK requests of their own)."""

from __future__ import annotations

import pytest

from immodel import Scenario
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]


@pytest.fixture(scope="module", params=["long_poll", "short_poll"])
def poll_run(request, tmp_path_factory):
    scenario = Scenario.load(
        "baseline",
        {
            **SMALL,
            "transport.kind": request.param,
            "transport.poll_interval_s": 0.5,
            "transport.long_poll_hold_s": 1.0,
        },
    )
    result = shared_real_run(tmp_path_factory, request.param, scenario)[0]
    return request.param, scenario, result


def test_polling_loses_and_duplicates_nothing(poll_run):
    _, _, result = poll_run
    summary = result.summary
    assert summary["messages_sent"] > 10
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["order_violations"] == 0


def test_poll_rows_carry_what_their_answers_held(poll_run):
    _, _, result = poll_run
    requests = result.requests
    polls = requests[requests["kind"] == "poll"]
    assert len(polls) > 0
    assert (requests["kind"] == "ack").sum() == 0  # ACKs ride on polls
    # every first copy that came by poll was in some poll answer
    by_poll = (result.messages["first_via"] == "poll").sum()
    assert 0 < by_poll <= polls["messages"].sum()
    assert set(result.messages["recipient_kind"]) == {poll_run[0]}


def test_short_polls_come_at_their_interval(poll_run):
    kind, scenario, result = poll_run
    if kind != "short_poll":
        pytest.skip("short polling only")
    requests = result.requests
    polls = requests[requests["kind"] == "poll"].sort_values(["user", "t"])
    gaps = polls.groupby("user")["t"].diff().dropna()
    # fixed-rate polling: a poll every interval; a late one (a loaded machine) is followed
    # by a shorter gap as the schedule catches up, so the median gap is the interval
    assert len(gaps) >= 20 * 3
    assert gaps.median() == pytest.approx(scenario["transport.poll_interval_s"], rel=0.2)


def test_a_poll_answer_takes_at_least_the_one_way_latency_back(poll_run):
    # the fault proxy delays the answer by network.latency_ms (a constant 40 ms) on its way
    # from the access node to the client; the harness's own share is what lies above it
    _, scenario, result = poll_run
    summary = result.summary
    assert summary["poll_return_p50_ms"] >= scenario["network.latency_ms"]
    assert summary["poll_return_p99_ms"] >= summary["poll_return_p50_ms"]
    assert summary["loadgen_lag_p99_ms"] >= 0.0

"""Derived drains: how long a run must continue after sending (or a fault) ends.

A drain that is too short counts late messages as lost (``lost`` is "not shown by the
end of the drain", DESIGN.md), so the drain must cover the slowest repair the protocol
can need. The slowest repair timer differs per transport: a push retransmit waits the
ACK timeout, but a long-polling client notices a lost response only when its poll times
out, after the hold *and* the request timeout.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from faultkit import run_checked

from immodel import Scenario, run
from immodel.sim.faults import (
    loss_settle_time_s,
    repair_rounds,
    repair_timer_s,
    required_drain_s,
    settle_time_s,
    stream_delay_bound_s,
)


def test_a_lost_long_poll_response_is_noticed_only_after_the_hold_and_the_timeout():
    # Every downlink packet is lost from 5 s to 205 s: each poll's response (held for
    # H, or answered at once) vanishes, and the client polls again when its timer ends.
    hold_s, timeout_s = 12.0, 7.0
    sc = Scenario.load(
        "long-poll",
        {
            "workload.users": 20,
            "duration_s": 300.0,
            "drain_s": 0.0,
            "transport.long_poll_hold_s": hold_s,
            "transport.request_timeout_s": timeout_s,
            "faults": [
                {
                    "kind": "loss_burst",
                    "at_s": 5.0,
                    "down_s": 200.0,
                    "downlink_loss": 1.0,
                    "uplink_loss": 0.0,
                },
            ],
        },
    )
    polls = run(sc).requests.query("kind == 'poll' and t > 60 and t < 200")
    gaps = polls.groupby("user")["t"].diff().dropna().to_numpy()
    assert len(gaps) > 50
    # Constant latency: a poll reaches the access layer d after it left, every time.
    np.testing.assert_allclose(gaps, hold_s + timeout_s, rtol=0, atol=1e-9)
    assert repair_timer_s(sc) == hold_s + timeout_s


@pytest.mark.parametrize(
    ("kind", "expected_s"),
    [
        ("push", 9.0),  # max(ACK timeout 4, request timeout 9)
        ("short_poll", 11.0),  # max(4, 9, poll interval 11)
        ("long_poll", 34.0),  # hold 25 + request timeout 9
        ("hybrid", 34.0),  # its web clients long-poll
    ],
)
def test_repair_timer_is_the_slowest_retry_of_the_transport(kind, expected_s):
    over = {
        "transport.kind": kind,
        "reliability.ack_timeout_s": 4.0,
        "transport.request_timeout_s": 9.0,
        "transport.poll_interval_s": 11.0,
        "transport.long_poll_hold_s": 25.0,
    }
    assert repair_timer_s(Scenario.load("baseline", over)) == expected_s


def test_settle_time_adds_detection_and_reconnects_to_the_loss_settle_time():
    sc = Scenario.load("long-poll", {"network.downlink_loss": 0.2, "network.model": "datagram"})
    loss_only = loss_settle_time_s(sc)
    # 25 s of uplink retries (5 × 5 s) + rounds × (hold + timeout + a round trip).
    rounds = repair_rounds(sc)
    assert rounds == 9  # 0.2^9 ≤ 1e-6 < 0.2^8
    rtt = 2 * 0.040
    assert loss_only == pytest.approx(25.0 + rounds * (30.0 + 10.0 + rtt))
    assert settle_time_s(sc) > loss_only


def test_a_lossy_long_poll_run_with_the_derived_drain_loses_nothing():
    sc = Scenario.load(
        "long-poll",
        {
            "workload.users": 60,
            "workload.send_rate_per_user": 0.1,
            "duration_s": 60.0,
            "network.downlink_loss": 0.3,
            "network.uplink_loss": 0.1,
        },
    )
    run_checked(sc.with_overrides({"drain_s": loss_settle_time_s(sc)}))


def test_on_a_stream_only_the_transport_repairs_and_the_drain_is_three_round_trips():
    # Without faults the stream transport resends every lost segment itself: the last
    # message needs its send + reply, its push, and at most a gap sync — three round
    # trips bounded by the retransmission chain — plus the request timeout.
    sc = Scenario.load("long-poll", {"network.downlink_loss": 0.2})
    rtt = 2 * (0.040 + stream_delay_bound_s(sc))
    assert loss_settle_time_s(sc) == pytest.approx(3 * rtt + 10.0)
    assert required_drain_s(sc) == math.ceil(3 * rtt + 10.0)
    # the 1e-6 bound: k = 8 losses in a row (0.2^9 ≤ 1e-6) at an RTO doubling from the
    # floor (max(rto_min, round-trip bound) = 0.2 s), capped at 60 s
    assert stream_delay_bound_s(sc) == pytest.approx(0.2 * (2**8 - 1))

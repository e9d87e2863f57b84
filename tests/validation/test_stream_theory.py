"""The stream model against the theory of a retransmitting transport.

Theory tells us (:mod:`immodel.analysis.theory_stream`) that a segment sent on a
connection with retransmission timeout RTO, lost independently with probability p per
transmission, arrives after D + S_K, S_k the sum of the first k (doubling, capped) RTOs,
with P(K = k) = (1 − p) p^k: mean D + RTO·p/(1 − 2p) uncapped, and
P(delay ≤ D + S_k) = 1 − p^(k+1). A connection also hands segments over in the order
they were sent, so one stream cannot reorder a 1:1 conversation.

Power: with N segments the sample mean's standard error is σ/√N, σ taken from the same
theory; the band is ±4 standard errors (a false alarm about 1 in 16,000). With
N = 80,000 at p = 0.1 the band is ±1.9 % of the mean, so a 2 % error in the formula or
in the simulator's RTO arithmetic fails the test.
"""

from __future__ import annotations

import itertools
import math

import pytest
import simpy

from immodel import Scenario, run
from immodel.analysis.theory_stream import (
    converged_rto_s,
    retransmission_wait_s,
    segment_delay_cdf,
    segment_delay_mean_s,
    segment_delay_quantile_s,
)
from immodel.sim.connection import Connection
from immodel.sim.network import Network
from immodel.sim.rng import Streams

Z = 4.0


def _delays(loss: float, latency_ms, n: int, gap_s: float, rto_max_ms: float, converged=True):
    """Send ``n`` downlink segments ``gap_s`` apart on one connection; their delays (s)
    in send order, and their arrival times."""
    sc = Scenario.load(
        "baseline",
        {
            "network.latency_ms": latency_ms,
            "network.downlink_loss": loss,
            "network.rto_max_ms": rto_max_ms,
        },
    )
    env = simpy.Environment()
    net = Network(env, sc, Streams(11))
    conn = Connection(1, 0, 0, "push", 0.0)
    if converged:
        rtt = 2 * latency_ms / 1000.0
        conn.srtt_down, conn.rttvar_down = rtt, 0.0
        conn.rto_down = converged_rto_s(rtt, sc["network.rto_min_ms"] / 1000.0)
    sent: list[float] = [0.0] * n
    arrived: list[float] = [math.nan] * n

    def arrive(i: int) -> None:
        arrived[i] = env.now

    for i in range(n):
        if i:
            env.run(until=i * gap_s)
        sent[i] = env.now
        net.send_down(conn, 0, 100, arrive, i)
    env.run()
    return [a - s for a, s in zip(arrived, sent, strict=True)], arrived, conn


def _theory_moments(d_s, p, rto_s, cap_s):
    mean = segment_delay_mean_s(d_s, p, rto_s, cap_s)
    second, k, w = 0.0, 0, 1.0 - p
    while w > 1e-18:
        second += w * (d_s + retransmission_wait_s(k, rto_s, cap_s)) ** 2
        k += 1
        w *= p
    return mean, math.sqrt(max(0.0, second - mean * mean))


@pytest.mark.parametrize(
    ("loss", "rto_max_ms"),
    [(0.1, 60000.0), (0.3, 60000.0), (0.4, 800.0)],
    ids=["p=0.1", "p=0.3", "p=0.4-capped"],
)
def test_segment_delay_mean_matches_the_retransmission_closed_form(loss, rto_max_ms) -> None:
    n = 80_000
    delays, _, conn = _delays(loss, 50.0, n, gap_s=30.0, rto_max_ms=rto_max_ms)
    rto = conn.rto_down
    assert rto == pytest.approx(0.2)  # the floor: 2D + G = 101 ms < rto_min = 200 ms
    mean, sd = _theory_moments(0.05, loss, rto, rto_max_ms / 1000.0)
    sample_mean = sum(delays) / n
    assert abs(sample_mean - mean) < Z * sd / math.sqrt(n), (sample_mean, mean)


def test_segment_delay_steps_at_each_retransmission_with_geometric_weights() -> None:
    n, p = 80_000, 0.2
    delays, _, conn = _delays(p, 50.0, n, gap_s=30.0, rto_max_ms=60000.0)
    for k in range(3):
        edge = 0.05 + retransmission_wait_s(k, conn.rto_down) + 1e-9
        share = sum(d <= edge for d in delays) / n
        expected = 1.0 - p ** (k + 1)
        assert expected == pytest.approx(segment_delay_cdf(edge, 0.05, p, conn.rto_down))
        assert abs(share - expected) < Z * math.sqrt(expected * (1 - expected) / n)
    q99 = segment_delay_quantile_s(0.99, 0.05, p, conn.rto_down)
    assert sorted(delays)[int(0.99 * n)] == pytest.approx(q99, abs=1e-9)


def test_a_connection_hands_segments_over_in_send_order_whatever_latency_and_loss() -> None:
    latency = {"dist": "lognormal", "median": 80.0, "p99": 600.0}
    _, arrived, _ = _delays(0.1, latency, 5000, gap_s=0.001, rto_max_ms=60000.0, converged=False)
    assert all(b >= a for a, b in itertools.pairwise(arrived))


def test_the_closed_form_is_the_uncapped_series() -> None:
    # an independent check of the algebra: E[S_K] summed term by term
    p, rto = 0.3, 0.25
    series = sum((1 - p) * p**k * retransmission_wait_s(k, rto) for k in range(400))
    assert segment_delay_mean_s(0.0, p, rto) == pytest.approx(series, rel=1e-12)


def _chatty(model: str) -> dict:
    return run(
        Scenario.load(
            "baseline",
            {
                "workload.users": 20,
                "workload.send_rate_per_user": 2.0,
                "duration_s": 60.0,
                "drain_s": 30.0,
                "network.latency_ms": {"dist": "lognormal", "median": 80.0, "p99": 600.0},
                "network.model": model,
            },
        )
    ).summary


def test_one_stream_never_reorders_a_conversation_at_zero_loss() -> None:
    # A variable latency reorders independent packets (datagram) but not one stream.
    stream, datagram = _chatty("stream"), _chatty("datagram")
    assert stream["lost"] == 0 and stream["duplicates"] == 0
    assert stream["order_violations"] == 0
    assert datagram["order_violations"] > 0  # the same traffic, packets on their own

"""Theory of the stream model: how long a segment takes when the transport resends it.

A segment is sent at time 0 on a connection whose retransmission timeout is ``rto_s``.
Each transmission is lost independently with probability ``p``; after a loss the next
transmission leaves one RTO later, the RTO doubling each time up to ``rto_max_s``
(RFC 6298 §5.5, with the ceiling of §2.5). With ``K`` losses before the first success
(``P(K = k) = (1 − p) p^k``) the segment arrives after

    D + S_K,   S_k = Σ_{j<k} min(rto · 2^j, rto_max)

where ``D`` is the one-way latency. Uncapped and for p < 1/2 the mean is the closed form
``D + rto · p / (1 − 2p)`` (E[2^K] = (1 − p)/(1 − 2p)); for p ≥ 1/2 the mean is finite
only because of the ceiling. ``P(delay ≤ D + S_k) = 1 − p^(k+1)`` gives every quantile.

These are the formulas the simulator's stream model is validated against
(``tests/validation/test_stream_theory.py``); they hold for a segment that does not wait
behind another one (no head-of-line blocking), i.e. sparse traffic on the connection.
"""

from __future__ import annotations

import math


def retransmission_wait_s(k: int, rto_s: float, rto_max_s: float = math.inf) -> float:
    """S_k: the time the first k (lost) transmissions add before the k+1-th leaves."""
    total, rto = 0.0, rto_s
    for _ in range(k):
        total += min(rto, rto_max_s)
        rto *= 2.0
    return total


def segment_delay_mean_s(
    latency_s: float, loss: float, rto_s: float, rto_max_s: float = math.inf
) -> float:
    """Mean delivery time of one segment: D + E[S_K]."""
    if not 0.0 <= loss < 1.0:
        raise ValueError("loss must be in [0, 1)")
    if math.isinf(rto_max_s):
        if loss >= 0.5:
            return math.inf
        return latency_s + rto_s * loss / (1.0 - 2.0 * loss)
    # Capped: sum until the tail's weight is negligible (each further term adds at most
    # rto_max · p^k, a geometric series).
    mean, k, weight = 0.0, 0, 1.0 - loss
    while True:
        term = weight * retransmission_wait_s(k, rto_s, rto_max_s)
        mean += term
        if weight < 1e-15 and term < 1e-15:
            break
        k += 1
        weight *= loss
    return latency_s + mean


def segment_delay_cdf(
    delay_s: float, latency_s: float, loss: float, rto_s: float, rto_max_s: float = math.inf
) -> float:
    """P(delivery time ≤ ``delay_s``): 1 − p^(k+1) for the largest k with D + S_k ≤ delay."""
    if delay_s < latency_s:
        return 0.0
    k = -1
    while latency_s + retransmission_wait_s(k + 1, rto_s, rto_max_s) <= delay_s:
        k += 1
        if k > 10_000:
            return 1.0
    return 1.0 - loss ** (k + 1)


def segment_delay_quantile_s(
    q: float, latency_s: float, loss: float, rto_s: float, rto_max_s: float = math.inf
) -> float:
    """The q-quantile of the delivery time: D + S_k for the smallest k with
    1 − p^(k+1) ≥ q (the distribution is discrete: a step per retransmission)."""
    if not 0.0 < q < 1.0:
        raise ValueError("q must be in (0, 1)")
    k = 0
    while 1.0 - loss ** (k + 1) < q:
        k += 1
    return latency_s + retransmission_wait_s(k, rto_s, rto_max_s)


def converged_rto_s(rtt_s: float, rto_min_s: float, granularity_s: float = 0.001) -> float:
    """The RTO on a path of constant round-trip time: RTTVAR decays to 0, so
    RTO = max(rto_min, SRTT + G) with SRTT = RTT (RFC 6298 §2.3)."""
    return max(rto_min_s, rtt_s + granularity_s)


__all__ = [
    "converged_rto_s",
    "retransmission_wait_s",
    "segment_delay_cdf",
    "segment_delay_mean_s",
    "segment_delay_quantile_s",
]

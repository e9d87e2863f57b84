"""Theory of a live room's rate cap: what a window accepts, per priority, under Poisson load.

The cap (:mod:`immodel.protocol.live`) keeps at most ``c`` messages per window, high
priority first, then normal, then low. With Poisson offered traffic of mean ``μ_p`` per
window for priority ``p`` (independent Poisson counts ``H``, ``N``, ``L``), the rule's
counts are

* high: ``min(H, c)``;
* high + normal: ``min(H + N, c)``, so normal gets ``min(H + N, c) − min(H, c)``;
* all: ``min(H + N + L, c)``, so low gets ``min(H + N + L, c) − min(H + N, c)``;

and a sum of independent Poisson counts is Poisson, so every expectation reduces to
``E[min(X, c)]`` for ``X ~ Poisson(μ)``: ``Σ_{k<c} k·P(X = k) + c·P(X ≥ c)``. Note that
``E[min(X, c)] < min(μ, c)``: a cap of 40 with 40 offered per window on average accepts
fewer than 40 per window on average (the windows with fewer than 40 cannot lend to the
others), which is why "accepted rate = min(offered, cap)" holds per window and only as
a bound for the means.
"""

from __future__ import annotations

import math

from immodel.protocol.live import PRIORITIES


def poisson_pmf(k: int, mu: float) -> float:
    """``P(X = k)`` for ``X ~ Poisson(mu)``."""
    if mu == 0:
        return 1.0 if k == 0 else 0.0
    return math.exp(k * math.log(mu) - mu - math.lgamma(k + 1))


def expected_min_poisson(mu: float, cap: int) -> float:
    """``E[min(X, cap)]`` for ``X ~ Poisson(mu)`` (exact: a finite sum)."""
    below = 0.0  # Σ_{k<cap} k P(k)
    p_below = 0.0  # P(X < cap)
    for k in range(cap):
        p = poisson_pmf(k, mu)
        below += k * p
        p_below += p
    return below + cap * max(0.0, 1.0 - p_below)


def expected_accepted(offered_per_window: dict[str, float], cap: int) -> dict[str, float]:
    """Expected accepted messages per window and priority for Poisson offered means
    ``offered_per_window`` (priority → mean per window; missing: 0) under cap ``cap``."""
    out: dict[str, float] = {}
    mu = 0.0
    kept_before = 0.0
    for p in PRIORITIES:
        mu += offered_per_window.get(p, 0.0)
        kept = expected_min_poisson(mu, cap)
        out[p] = kept - kept_before
        kept_before = kept
    return out


__all__ = ["expected_accepted", "expected_min_poisson", "poisson_pmf"]

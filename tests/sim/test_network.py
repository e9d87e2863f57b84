"""Links: latency distributions and loss as configured."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immodel.sim.network import Link, latency_mean_s, latency_sampler
from immodel.sim.rng import Streams


def draws(spec, n=40_000, seed=3):
    sample = latency_sampler(spec, Streams(seed)["latency"])
    return np.array([sample() for _ in range(n)])


def test_constant_latency_is_in_seconds():
    assert set(draws(40.0, n=10)) == {0.04}


def test_lognormal_has_the_configured_median_and_p99():
    x = draws({"dist": "lognormal", "median": 40.0, "p99": 300.0})
    # Order-statistic standard errors at n = 40 000 are well under 3 %.
    assert np.median(x) == pytest.approx(0.040, rel=0.03)
    assert np.quantile(x, 0.99) == pytest.approx(0.300, rel=0.06)
    assert x.mean() == pytest.approx(
        latency_mean_s({"dist": "lognormal", "median": 40.0, "p99": 300.0}), rel=0.05
    )


def test_empirical_latency_draws_only_the_samples_uniformly():
    x = draws({"dist": "empirical", "samples": [10.0, 20.0, 70.0]}, n=30_000)
    values, counts = np.unique(x, return_counts=True)
    assert values.tolist() == [0.01, 0.02, 0.07]
    # Each Binomial(30000, 1/3); 5 sigma.
    assert np.all(np.abs(counts - 10_000) < 5 * math.sqrt(30_000 * (1 / 3) * (2 / 3)))


def test_independent_loss_rate_matches_probability():
    streams = Streams(5)
    link = Link(users=10, loss=0.2, latency=lambda: 0.0, loss_stream=streams["uplink"])
    n = 50_000
    lost = sum(link.lost(i % 10, 100) for i in range(n))
    assert abs(lost / n - 0.2) < 5 * math.sqrt(0.2 * 0.8 / n)
    assert link.bytes == 100 * n


def test_gilbert_elliott_loss_matches_the_stationary_mix():
    streams = Streams(6)
    enter, leave, bad_loss = 0.05, 0.25, 0.6
    link = Link(
        users=1,
        loss=0.0,
        latency=lambda: 0.0,
        loss_stream=streams["uplink"],
        burst_enter=enter,
        burst_exit=leave,
        burst_loss=bad_loss,
    )
    n = 200_000
    lost = sum(link.lost(0, 1) for _ in range(n))
    # Theory: the chain is in the bad state a fraction enter / (enter + leave) of packets.
    expected = bad_loss * enter / (enter + leave)
    # Losses are correlated within bursts; a generous 10 % relative band at n = 200 000.
    assert lost / n == pytest.approx(expected, rel=0.1)


def test_streams_do_not_depend_on_creation_order():
    a = Streams(11)
    a["workload"].uniform()
    first = [a["network"].uniform() for _ in range(5)]
    b = Streams(11)
    second = [b["network"].uniform() for _ in range(5)]
    assert first == second

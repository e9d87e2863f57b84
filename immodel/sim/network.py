"""The network between clients and the access layer: latency, loss, bytes.

Each direction (uplink: client → server, downlink: server → client) is a :class:`Link`.
A packet on a link is lost independently with the link's loss probability, or — with the
Gilbert–Elliott option — with the loss of the sending user's current channel state
(good: the configured loss; bad: ``burst_loss``), the state flipping per packet with
``burst_enter_prob`` / ``burst_exit_prob``. Each packet draws its own one-way latency, so
a variable latency reorders packets, as a real network does. Loss faults
(``loss_burst``, ``partition``) override the loss for a while.

Latency distributions (``network.latency_ms``): a number (constant), or a table —
``lognormal`` given ``median`` and ``p99`` (σ = ln(p99/median) / z₀.₉₉), ``exponential``
given ``mean``, ``empirical`` given ``samples`` (drawn uniformly), ``constant`` given
``value``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from immodel.sim.rng import Stream

Z_99 = 2.3263478740408408  # standard normal 0.99 quantile


def latency_sampler(spec: Any, stream: Stream) -> Callable[[], float]:
    """A function returning one-way latency draws in **seconds** for ``spec`` (ms)."""
    if isinstance(spec, int | float):
        value = float(spec) / 1000.0
        return lambda: value
    dist = spec["dist"]
    if dist == "constant":
        value = spec["value"] / 1000.0
        return lambda: value
    if dist == "exponential":
        mean = spec["mean"] / 1000.0
        return lambda: stream.exponential(mean)
    if dist == "lognormal":
        mu = math.log(spec["median"] / 1000.0)
        sigma = math.log(spec["p99"] / spec["median"]) / Z_99
        exp, normal = math.exp, stream.normal
        return lambda: exp(mu + sigma * normal())
    samples = [s / 1000.0 for s in spec["samples"]]
    n, below = len(samples), stream.below
    return lambda: samples[below(n)]


def latency_mean_s(spec: Any) -> float:
    """The mean of a latency spec, in seconds (for timeouts and theory)."""
    if isinstance(spec, int | float):
        return float(spec) / 1000.0
    dist = spec["dist"]
    if dist == "constant":
        return spec["value"] / 1000.0
    if dist == "exponential":
        return spec["mean"] / 1000.0
    if dist == "lognormal":
        sigma = math.log(spec["p99"] / spec["median"]) / Z_99
        return spec["median"] / 1000.0 * math.exp(sigma * sigma / 2)
    return sum(spec["samples"]) / len(spec["samples"]) / 1000.0


class Link:
    """One direction of the client ↔ access-layer network, for all users.

    :meth:`lost` decides a packet's fate; :meth:`delay` draws its latency. ``override``
    (set by loss faults) replaces the loss probability for everyone while it is not None;
    ``blocked`` users (a partition) lose every packet.
    """

    __slots__ = (
        "_bad",
        "_loss_stream",
        "blocked",
        "burst_enter",
        "burst_exit",
        "burst_loss",
        "bytes",
        "delay",
        "loss",
        "override",
        "packets",
        "packets_lost",
    )

    def __init__(
        self,
        *,
        users: int,
        loss: float,
        latency: Callable[[], float],
        loss_stream: Stream,
        burst_enter: float = 0.0,
        burst_exit: float = 0.3,
        burst_loss: float = 0.5,
    ) -> None:
        self.loss = loss
        self.delay = latency
        self._loss_stream = loss_stream
        self.burst_enter = burst_enter
        self.burst_exit = burst_exit
        self.burst_loss = burst_loss
        self._bad = bytearray(users) if burst_enter > 0 else None
        self.override: float | None = None
        self.blocked: set[int] = set()
        self.packets = 0
        self.packets_lost = 0
        self.bytes = 0

    def lost(self, user: int, size_bytes: int) -> bool:
        """Send one packet of ``user``: True if the network drops it."""
        self.packets += 1
        self.bytes += size_bytes
        if self.blocked and user in self.blocked:
            self.packets_lost += 1
            return True
        p = self.loss if self.override is None else self.override
        bad = self._bad
        if bad is not None:
            u = self._loss_stream.uniform()
            if bad[user]:
                if u < self.burst_exit:
                    bad[user] = 0
                else:
                    p = self.burst_loss
            elif u < self.burst_enter:
                bad[user] = 1
                p = self.burst_loss
        if p <= 0.0:
            return False
        if p >= 1.0 or self._loss_stream.uniform() < p:
            self.packets_lost += 1
            return True
        return False

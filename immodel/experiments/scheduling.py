"""In which order a sweep hands its tasks to the workers: the longest expected first.

A sweep's runs differ in cost by an order of magnitude or more (short polling at 20 %
loss simulates a long drain of polls; push without loss is a few messages and
heartbeats). Handed out in grid order, an expensive run that starts last keeps one
worker busy while the others idle, and a sweep on N workers then runs well below N
times the one-worker rate. Handing out the longest runs first (the classic LPT rule)
bounds that tail by the shortest runs instead.

:func:`expected_cost` is a rough proxy of a run's cost — the number of requests the
access tier will see, from the scenario alone, without simulating — because the
simulator's time per run grows with its requests (polls, heartbeats, sends and acks)
across transports. It only orders tasks: a wrong estimate costs some wall time, never a
different result (each run's numbers depend only on its scenario and seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from immodel.errors import ConfigError
from immodel.scenario import Scenario

__all__ = ["expected_cost", "longest_first"]

# Requests one delivered message causes besides the polls and heartbeats counted per
# user: the send, its acknowledgement and the delivery's acknowledgement (or poll).
_REQUESTS_PER_DELIVERY = 3.0


def _background_rate_per_user(scenario: Scenario) -> float:
    """Requests per second one idle user makes on ``transport.kind`` (polls, heartbeats)."""
    kind = scenario["transport.kind"]
    per_poll = 1.0 / max(scenario["transport.poll_interval_s"], 1e-3)
    per_hold = 1.0 / max(scenario["transport.long_poll_hold_s"], 1e-3)
    per_beat = 1.0 / max(scenario["transport.heartbeat_s"], 1e-3)
    if kind == "short_poll":
        return per_poll
    if kind == "long_poll":
        return per_hold
    if kind == "hybrid":
        web = scenario["transport.web_share"]
        return web * per_hold + (1.0 - web) * per_beat
    return per_beat


def expected_cost(scenario: Scenario) -> float:
    """The requests a run of ``scenario`` is expected to make (a unitless cost proxy).

    ``users × horizon_s × background rate + deliveries × 3``, the horizon being the
    sending period plus the drain (``"auto"`` resolved as the run will resolve it). A
    scenario the proxy does not understand costs 0.0 (it keeps its place in the order).
    """
    try:
        drain = scenario.required_drain_s() if scenario.drain_is_auto else scenario["drain_s"]
        duration_s = scenario["duration_s"]
        users = scenario["workload.users"]
        group_share = scenario["workload.group_share"]
        fanout = 1.0 + group_share * max(scenario["workload.group_size"] - 2, 0)
        deliveries = users * scenario["workload.send_rate_per_user"] * duration_s * fanout
        background = users * (duration_s + drain) * _background_rate_per_user(scenario)
        return float(background + _REQUESTS_PER_DELIVERY * deliveries)
    except (ConfigError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return 0.0


def longest_first(tasks: Sequence[Any]) -> list[Any]:
    """``tasks`` (anything with a ``scenario``) sorted by :func:`expected_cost`, highest
    first; equal costs keep their order (the sort is stable). The cost is computed once
    per distinct scenario without its seed, so replications of a point share it."""
    costs: dict[tuple, float] = {}

    def cost(task: Any) -> float:
        values = {k: v for k, v in task.scenario.values.items() if k != "seed"}
        key = tuple(sorted((k, repr(v)) for k, v in values.items()))
        if key not in costs:
            costs[key] = expected_cost(task.scenario)
        return costs[key]

    return sorted(tasks, key=cost, reverse=True)

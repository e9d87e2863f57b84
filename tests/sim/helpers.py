"""Shared builders for simulator tests: quiet scenarios where one message can be followed."""

from __future__ import annotations

from immodel.scenario import Scenario
from immodel.sim.world import World

# With constant service times and no load, a message's server time is exactly the sum of
# the stages it passes: auth, checks, recent contacts, store, then status + fan-out.
SERVICE_MS = 0.3 + 0.3 + 0.3 + 1.0 + (0.1 + 0.02)


def quiet(**overrides) -> Scenario:
    """No background workload, constant latency and service: one message at a time."""
    values = {
        "workload.users": 4,
        "workload.send_rate_per_user": 0.0,
        "network.latency_ms": 40.0,
        "server.service_dist": "constant",
        # the access tier's per-request and per-frame work left out: SERVICE_MS is the
        # logic stages' time alone
        "server.access_request_ms": 0.0,
        "server.access_frame_ms": 0.0,
        "duration_s": 20.0,
        "drain_s": 60.0,
    }
    values.update(overrides)
    return Scenario.load("baseline", values)


def follow_one(scenario: Scenario, at_s: float = 5.0, sender: int = 0, recipient: int = 1):
    """Run ``scenario`` with one injected 1:1 message; return (world, its messages row)."""
    world = World(scenario)
    world.inject(at_s, sender, recipient)
    world.run()
    messages = world.rec.messages_frame()
    assert len(messages) == 1
    return world, messages.iloc[0]

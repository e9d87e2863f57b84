"""The REST rate limit holds in the simulator, and what it refuses comes back as retries.

Theory (a fixed window of L calls per whole second, calls offered as a Poisson stream of
rate r, refused calls retried at the next second): no whole second admits more than L;
under overload (r > L) a backlog forms after the first second, every later second admits
exactly L until the backlog is gone, and every refused call is retried once per refusal,
so offered + retries = accepted + refused; with r well below L a second's Poisson count
exceeds L so rarely that nothing is refused.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from immodel.scenario import Scenario
from immodel.sim.world import World

LIMIT = 20
DURATION_S = 10.0


def _world(rate_per_s: float) -> World:
    sc = Scenario.load(
        "baseline",
        {
            "workload.users": 50,
            "workload.send_rate_per_user": 0.0,
            "duration_s": DURATION_S,
            # the backlog of an overload (≈ (r − L)·duration calls) clears at L per second
            "drain_s": 40.0,
            "workload.rest_rate_per_s": rate_per_s,
            "server.rest_max_calls_per_s": LIMIT,
        },
    )
    world = World(sc)
    world.run()
    return world


def _accepted_per_second(world: World) -> np.ndarray:
    t = np.asarray(world.backend.accepted_t)
    return np.bincount(np.floor(t).astype(int), minlength=int(world.horizon_s))


def test_overload_admits_exactly_the_limit_each_second_and_retries_the_rest():
    rate = 2.0 * LIMIT
    world = _world(rate)
    s = world.backend.summary()
    per_s = _accepted_per_second(world)
    assert per_s.max() <= LIMIT
    assert s["rest_calls_max_per_s"] == LIMIT
    # the backlog exists from the second second on: each second admits exactly L, so the
    # accepted rate over the sending period is min(r, L) = L, whatever r was
    backlog_s = s["rest_calls_offered"] // LIMIT  # whole seconds the offered calls fill
    assert (per_s[1:backlog_s] == LIMIT).all()
    assert per_s[backlog_s + 1 :].sum() == 0  # and then nothing is left
    # offered calls are a Poisson count of mean r·duration: a 4-sigma band
    mean = rate * DURATION_S
    assert abs(s["rest_calls_offered"] - mean) <= 4 * math.sqrt(mean)
    # every refusal was answered by one retry; everything was admitted in the end
    assert world.backend.caller.timeouts == 0 and len(world.backend.caller) == 0
    assert s["rest_refused"] == s["rest_retries"] > 0
    assert s["rest_calls_offered"] + s["rest_retries"] == s["rest_calls"] + s["rest_refused"]
    assert s["rest_calls"] == s["rest_calls_offered"]
    msgs = world.rec.messages_frame()
    assert msgs["t_first_show"].notna().all()  # every REST message reached its recipient
    # the requests records say the same, call by call
    kinds = world.rec.requests_frame()["kind"].astype(str).value_counts()
    assert kinds["rest"] == s["rest_calls"] and kinds["rest_refused"] == s["rest_refused"]


def test_below_the_limit_nothing_is_refused():
    rate = LIMIT / 4
    # P(some second of the run gets more than L calls) for Poisson(r) counts per second
    p_any = 1 - stats.poisson.cdf(LIMIT, rate) ** (DURATION_S + 1)
    assert p_any < 1e-5  # so a refusal here would be the model's fault, not chance
    world = _world(rate)
    s = world.backend.summary()
    assert s["rest_refused"] == s["rest_retries"] == 0
    assert s["rest_calls"] == s["rest_calls_offered"] > 0

"""Collecting a finished world twice gives the same records and summary.

``immodel.sim.model.collect`` builds the frames from the recorder's buffers and reads
the world's counters; nothing it does may consume or change them, so a second call (a
notebook re-running a cell, a benchmark timing the collection) returns equal frames and
the same summary, ``wall_s`` aside.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from immodel.scenario import Scenario
from immodel.sim import model
from immodel.sim.world import World

FRAMES = ("messages", "requests", "load", "trace", "live_messages", "live_trace")
SMALL = {"workload.users": 120, "duration_s": 15.0, "workload.send_rate_per_user": 0.1}


@pytest.mark.parametrize(
    "name, over",
    [
        ("baseline", SMALL),
        ("crash", SMALL),
        ("multi-device", {**SMALL, "workload.group_size": 50, "drain_s": 30.0}),
    ],
)
def test_a_second_collect_returns_the_same_records_and_summary(name, over):
    world = World(Scenario.load(name, over).resolved())
    world.run()
    first = model.collect(world)
    second = model.collect(world)
    for frame in FRAMES:
        pd.testing.assert_frame_equal(
            getattr(first, frame), getattr(second, frame), check_exact=True
        )
    a, b = dict(first.summary), dict(second.summary)
    del a["wall_s"], b["wall_s"]
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert first.summary["sim_events"] > 0

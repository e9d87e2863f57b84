"""The logic tier's calibration charges its measured I/O exactly once per frame.

:func:`immodel.real.calibrate.measure_logic_io_cost` takes a real run's logic CPU less
the in-process operation costs over the frames the logic processes exchanged; the
preset adds that per-frame cost to each operation's key for the frames the operation
makes. Pure arithmetic on a small made-up run: the preset's keys applied to the counted
operations must give back the measured CPU (no frame's I/O missing or counted twice),
and the preset without I/O the in-process share alone. A simulated run charges the same
keys per operation, so its logic busy time is then the real CPU when it counts the same
operations (``immodel.experiments.sim_vs_real.busy_per_node``, checked on matched runs
by ``tests/real/test_sim_vs_real.py``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from immodel.real.calibrate import (
    logic_frames,
    logic_in_process_ms,
    measure_logic_io_cost,
    preset,
)

#: in-process costs (ms), made up but of the measured order
COSTS = {
    "send_ms": 0.12,
    "push_ms": 0.008,
    "ack_ms": 0.002,
    "sync_ms": 0.04,
    "sync_ms_per_item": 0.005,
    "poll_ms": 0.006,
    "poll_ms_per_message": 0.012,
    "hold_ms": 0.02,
}


def _run(counters: dict, cpu_s_logic: float):
    return SimpleNamespace(summary={"cpu_s_logic": cpu_s_logic}, counters=counters)


#: the counted operations the preset's keys are charged for (one key each)
CHARGED = (
    "run_stored",
    "run_out_push",
    "run_in_ack",
    "run_in_sync",
    "run_sync_items",
    "run_in_poll",
    "run_poll_items",
    "run_polls_held",
)


def _charged_ms(keys: dict, c: dict) -> float:
    """What the preset's keys charge for the operations a run counted, as the simulator
    charges them: per stored send, per pushed copy, per ACK (one id each here), per sync
    page and item, per poll and polled message, per held poll (on the access tier in the
    simulator, counted here to match the in-process share)."""
    return (
        c.get("run_stored", 0) * keys["server.store_ms"]
        + c.get("run_out_push", 0) * keys["server.fanout_ms_per_recipient"]
        + c.get("run_in_ack", 0) * keys["server.ack_ms"]
        + c.get("run_in_sync", 0) * keys["server.sync_ms"]
        + c.get("run_sync_items", 0) * keys["server.sync_ms_per_item"]
        + c.get("run_in_poll", 0) * keys["server.poll_ms"]
        + c.get("run_poll_items", 0) * keys["server.poll_ms_per_message"]
        + c.get("run_polls_held", 0) * keys["server.hold_ms"]
    )


# a push run: each message is a send up, its reply down, a push down, an ACK up and the
# receipt sync's request up and page down (as counted in a real push run)
N = 500
PUSH = {
    "run_stored": N,
    "run_in_send": N,
    "run_out_reply": N,
    "run_out_push": N,
    "run_in_ack": N,
    "run_in_sync": N,
    "run_out_sync_resp": N,
    "run_sync_items": 20,
}
# a long-poll run: the copy goes down in a poll's answer, the ACK rides up beside the
# next poll as a frame of its own; 100 polls were held (no message waiting)
LONG_POLL = {
    "run_stored": N,
    "run_in_send": N,
    "run_out_reply": N,
    "run_in_poll": N + 100,
    "run_out_poll_resp": N + 100,
    "run_poll_items": N,
    "run_polls_held": 100,
    "run_in_ack": N,
}


def test_frames_count_every_op_in_both_directions_and_nothing_else():
    counters = {**PUSH, "run_in_login": 3, "run_out_route": 2, "stored": 999, "run_stored": N}
    assert logic_frames(counters) == 6 * N + 3 + 2


@pytest.mark.parametrize(
    ("counters", "transport"), [(PUSH, "push"), (LONG_POLL, "long_poll")], ids=["push", "poll"]
)
def test_the_preset_charges_the_measured_cpu_exactly_once(counters, transport):
    io_ms = 0.25  # the per-frame cost the made-up CPU below implies
    frames = logic_frames(counters)
    cpu_ms = logic_in_process_ms(counters, COSTS) + io_ms * frames
    measured = measure_logic_io_cost(_run(counters, cpu_ms / 1000.0), COSTS)
    assert measured == pytest.approx(io_ms, rel=1e-9)
    keys = preset(COSTS, 0.3, 1.0, measured, transport)
    # keys are rounded to 0.1 µs: at most 0.05 µs per charged operation off
    ops = sum(counters.get(k, 0) for k in CHARGED)
    assert _charged_ms(keys, counters) == pytest.approx(cpu_ms, abs=0.05e-3 * ops)
    # and without I/O, the in-process share alone: the I/O is the whole difference
    bare = preset(COSTS, 0.3, 1.0, 0.0, transport)
    assert _charged_ms(bare, counters) == pytest.approx(
        logic_in_process_ms(counters, COSTS), abs=0.05e-3 * ops
    )
    assert _charged_ms(keys, counters) - _charged_ms(bare, counters) == pytest.approx(
        io_ms * frames, abs=0.1e-3 * ops
    )


def test_each_key_gets_the_frames_of_its_operation():
    io = 0.5
    push, bare = preset(COSTS, 0.3, 1.0, io, "push"), preset(COSTS, 0.3, 1.0, 0.0, "push")
    extra = {k: round(push[k] - bare[k], 6) for k in bare if isinstance(bare[k], float)}
    assert extra["server.store_ms"] == 2 * io  # the send up, the reply down
    assert extra["server.fanout_ms_per_recipient"] == io  # the push down
    assert extra["server.retransmit_ms"] == io
    assert extra["server.ack_ms"] == io
    assert extra["server.sync_ms"] == 2 * io  # the request up, the page down
    assert extra["server.poll_ms"] == 2 * io  # the poll up, its answer down
    for key in ("server.sync_ms_per_item", "server.poll_ms_per_message", "server.hold_ms"):
        assert extra[key] == 0.0
    assert extra["server.access_request_ms"] == extra["server.access_frame_ms"] == 0.0
    poll = preset(COSTS, 0.3, 1.0, io, "long_poll")
    # a poller's copy rides on the poll's answer, which poll_ms carries
    assert poll["server.fanout_ms_per_recipient"] == bare["server.fanout_ms_per_recipient"]
    assert poll["server.poll_ms"] == push["server.poll_ms"]


def test_runs_are_pooled_by_their_sums_and_a_run_without_frames_is_an_error():
    a = _run(PUSH, (logic_in_process_ms(PUSH, COSTS) + 0.2 * logic_frames(PUSH)) / 1000.0)
    half = {k: v // 2 for k, v in PUSH.items()}
    b = _run(half, (logic_in_process_ms(half, COSTS) + 0.5 * logic_frames(half)) / 1000.0)
    pooled = (0.2 * logic_frames(PUSH) + 0.5 * logic_frames(half)) / (
        logic_frames(PUSH) + logic_frames(half)
    )
    assert measure_logic_io_cost([a, b], COSTS) == pytest.approx(pooled, rel=1e-9)
    with pytest.raises(ValueError, match="no frames"):
        measure_logic_io_cost(_run({}, 0.1), COSTS)


@pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning")
def test_busy_per_node_is_the_simulators_busy_time_per_logic_node():
    # the simulator's utilization_logic divides by every stage's workers; busy_per_node
    # must give back the busy seconds per node per second, here summed the other way: one
    # node, each stage's own busy fraction times its workers
    from immodel import Scenario, run
    from immodel.experiments.sim_vs_real import busy_per_node
    from immodel.sim.logic import STAGE_NAMES

    sc = Scenario.load(
        "baseline",
        {
            "workload.users": 20,
            "workload.send_rate_per_user": 1.0,
            "duration_s": 3.0,
            "drain_s": 2.0,
            "server.workers": 2,
            "server.store_ms": 2.0,
            "server.ack_ms": 0.5,
        },
    )
    result = run(sc)
    s = result.summary
    per_stage = sum(s[f"utilization_{name}"] * sc["server.workers"] for name in STAGE_NAMES)
    assert per_stage > 0
    assert busy_per_node(result, "logic") == pytest.approx(per_stage, rel=1e-9)
    assert busy_per_node(result, "access") == pytest.approx(
        s["utilization_access"] * sc["server.access_workers"], rel=1e-9
    )

"""``immodel real`` with pollers on two logic nodes: a copy stored by the node that does
not own its poller goes to the poller's own node through the access tier (where its polls
and their ACKs go), so nothing is lost — as in the simulator, whose fan-out hands each
copy to the recipient's node.

And a crash of one of the two nodes: the long polls it held are answered empty by the
access node when its link drops (the simulator parks a long poll on the access node,
where the crash does not reach it), and when the node is back the survivor hands the
copies it queued for the node's pollers back to it (the simulator's poll reads every
node that holds copies for the user). What a crash may lose is what waited in the
crashed node's memory at the instant of the kill; nothing stored after it."""

from __future__ import annotations

import pytest

from immodel import Scenario, run
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]


@pytest.fixture(scope="module", params=["long_poll", "short_poll"])
def scenario(request):
    return Scenario.load(
        "baseline",
        {
            **SMALL,
            "workload.users": 30,
            "transport.kind": request.param,
            "transport.long_poll_hold_s": 2.0,
            "transport.poll_interval_s": 1.0,
            "server.nodes": 2,
        },
    )


@pytest.fixture(scope="module")
def real(scenario, tmp_path_factory):
    return shared_real_run(tmp_path_factory, f"nodes-{scenario['transport.kind']}", scenario)[0]


def test_pollers_on_two_logic_nodes_lose_and_duplicate_nothing(scenario, real):
    sim = run(scenario)
    for result in (sim, real):
        assert result.summary["lost"] == 0 and result.summary["duplicates"] == 0
    assert real.summary["messages_sent"] == sim.summary["messages_sent"] > 10


def test_copies_stored_on_the_other_node_were_routed_to_the_pollers_node(real):
    # every copy to a poller takes the hop when there are several logic nodes (only the
    # access tier knows which node owns whom): one routed copy per delivery, nothing lost
    assert real.counters["access_copies_routed"] == real.summary["deliveries"]


CRASH_AT_S = 1.5


@pytest.fixture(scope="module")
def crash_pair(tmp_path_factory):
    scenario = Scenario.load(
        "baseline",
        {
            **SMALL,
            "workload.users": 30,
            "duration_s": 5.0,
            "drain_s": 3.0,
            "transport.kind": "long_poll",
            "transport.long_poll_hold_s": 2.0,
            "server.nodes": 2,
            # the real access tier routes a dead node's users to the survivor at once
            "server.failover_detect_s": 0.0,
            "faults": [{"kind": "server_crash", "at_s": CRASH_AT_S, "down_s": 1.0, "node": 0}],
        },
    )
    real = shared_real_run(tmp_path_factory, "nodes-crash-long_poll", scenario)[0]
    return run(scenario), real


def test_a_logic_crash_under_long_pollers_loses_only_what_the_crash_held(crash_pair):
    # before: the crashed node's held polls waited for their request timeout (10 s) and
    # the survivor kept the copies it queued for the node's pollers: 34 of 74 lost
    # where the simulator lost none
    sim, real = crash_pair
    assert real.summary["messages_sent"] == sim.summary["messages_sent"] > 40
    for result in (sim, real):
        assert result.summary["duplicates"] == 0
        m = result.messages
        lost = m[m["t_first_show"].isna() & ~m["send_failed"].astype(bool)]
        assert (lost["t_stored"] <= CRASH_AT_S).all(), lost[["msg_id", "t_stored"]]


def test_the_crashed_nodes_held_polls_were_answered_when_its_link_dropped(crash_pair):
    # ~half of the 30 pollers are the node's, most with a poll held there at the kill
    assert crash_pair[1].counters["access_polls_orphaned"] > 0

"""``immodel real`` with pollers on two logic nodes: a copy stored by the node that does
not own its poller goes to the poller's own node through the access tier (where its polls
and their ACKs go), so nothing is lost — as in the simulator, whose fan-out hands each
copy to the recipient's node."""

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

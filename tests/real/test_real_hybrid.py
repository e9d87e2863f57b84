"""``immodel real`` on the hybrid transport: web clients on long polling beside push
clients, the same users on the web as in the simulator (the draw of
:func:`immodel.sim.endpoints.phases_and_transports`), and nothing lost or duplicated."""

from __future__ import annotations

import pytest

from immodel import Scenario
from immodel.sim.endpoints import phases_and_transports
from immodel.sim.rng import Streams
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]


@pytest.fixture(scope="module")
def scenario():
    return Scenario.load(
        "hybrid",
        {
            **SMALL,
            "workload.users": 30,
            "workload.groups": 3,
            "workload.group_size": 8,
            "transport.long_poll_hold_s": 2.0,
        },
    )


@pytest.fixture(scope="module")
def real(scenario, tmp_path_factory):
    return shared_real_run(tmp_path_factory, "hybrid", scenario)[0]


def test_a_hybrid_run_loses_and_duplicates_nothing(real):
    s = real.summary
    assert s["messages_sent"] > 10
    assert s["lost"] == 0 and s["duplicates"] == 0


def test_the_web_users_are_the_simulators_and_only_they_poll(scenario, real):
    users = scenario["workload.users"]
    _, kinds = phases_and_transports(scenario, users, Streams(scenario["seed"])["phase"].generator)
    web = {u for u in range(users) if kinds[u] == "long_poll"}
    assert 0 < len(web) < users  # web_share 0.3: both kinds present
    m = real.messages
    assert dict(zip(m["recipient"], m["recipient_kind"], strict=True)) == {
        u: kinds[u] for u in m["recipient"].unique()
    }
    pollers = set(real.requests.loc[real.requests["kind"] == "poll", "user"].unique())
    assert pollers == web

"""``immodel real`` runs the check stage's relationship facts (mute, blacklist,
friendship) as the simulator draws them for the scenario and seed, so a real run refuses
exactly the messages a simulated run of the same plan refuses, with the same reasons."""

from __future__ import annotations

import pytest

from immodel import Scenario, run
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

CHECKS = {
    "server.muted_fraction": 0.15,
    "server.blacklist_fraction": 0.2,
    "server.require_friendship": True,
    "server.friend_fraction": 0.7,
}


@pytest.fixture(scope="module")
def scenario():
    # groups too: a group send is checked for mute only (no pair facts)
    return Scenario.load(
        "baseline",
        {
            **SMALL,
            **CHECKS,
            "workload.group_share": 0.3,
            "workload.groups": 2,
            "workload.group_size": 5,
        },
    )


@pytest.fixture(scope="module")
def both(scenario, tmp_path_factory):
    real, _work = shared_real_run(tmp_path_factory, "admission", scenario)
    return run(scenario), real


def _refused(result) -> dict[str, str]:
    m = result.messages.drop_duplicates("msg_id")
    m = m[m["failure_reason"].astype(str) != ""]
    return dict(zip(m["msg_id"].astype(str), m["failure_reason"].astype(str), strict=True))


def test_the_same_messages_are_refused_for_the_same_reasons(both):
    sim, real = both
    assert sim.summary["messages_sent"] == real.summary["messages_sent"]
    refused = _refused(sim)
    # with these fractions about 1 - 0.85 × 0.8 × 0.7 ≈ half of the 1:1 sends are refused;
    # the comparison means something only if each reason occurs
    assert set(refused.values()) == {"muted", "blacklisted", "not_friends"}
    assert _refused(real) == refused
    assert real.summary["rejections"] == sim.summary["rejections"] == len(refused)


def test_refused_messages_are_neither_stored_nor_lost(both):
    for result in both:
        assert result.summary["lost"] == 0 and result.summary["duplicates"] == 0

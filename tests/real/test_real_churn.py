"""Presence churn in ``immodel real``: users open and close the app at the simulator's
times. The plan replays the simulator's presence and workload draws, so the real run
sends exactly the simulated run's messages from the same users; a closed app's
connection is closed cleanly, the next login brings what was missed, and nothing is
lost or shown twice."""

from __future__ import annotations

import numpy as np
import pytest

from immodel import Scenario, run
from immodel.real.loadgen import make_plan
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

CHURN = {
    **SMALL,
    "workload.users": 30,
    "workload.online_fraction": 0.7,
    "workload.mean_online_s": 3.0,
    "workload.mean_offline_s": 2.0,
    "duration_s": 6.0,
    "drain_s": 2.0,
}


@pytest.fixture(scope="module", params=["push", "long_poll"])
def scenario(request):
    # push: the app's connection closes and opens; long polling: the web app's poll
    # ends, a /logout, and a login over new connections
    return Scenario.load("baseline", {**CHURN, "transport.kind": request.param})


@pytest.fixture(scope="module")
def churn_run(scenario, tmp_path_factory):
    name = "churn-" + scenario["transport.kind"]
    return shared_real_run(tmp_path_factory, name, scenario)[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("groups", [False, True])
def test_the_plan_sends_what_the_simulator_sends(seed, groups):
    # the sender of each message is drawn among the users online at that moment, so the
    # sequence of senders matches only if the plan's presence flips are the simulator's
    over = {**CHURN, "seed": seed}
    if groups:
        over.update({"workload.group_share": 0.3, "workload.groups": 3, "workload.group_size": 5})
    sc = Scenario.load("baseline", over)
    plan = make_plan(sc)
    assert plan.flips  # churn happened (30 users flipping every ~2.5 s for 8 s)
    sim = run(sc).messages.drop_duplicates("msg_id")
    assert sim["sender"].tolist() == [s[1] for s in plan.sends]
    assert sim["conversation"].tolist() == [s[2] for s in plan.sends]
    np.testing.assert_allclose(sim["t_send"].to_numpy(), [s[0] for s in plan.sends], atol=1e-9)


def test_without_churn_the_plan_has_no_flips():
    assert make_plan(Scenario.load("baseline", SMALL)).flips == []


def test_a_churning_run_loses_and_duplicates_nothing(churn_run):
    s = churn_run.summary
    assert s["messages_sent"] > 30  # ~0.5 msg/s × ~21 users online × 6 s
    # a pair can stay undelivered only because its recipient did not come back before
    # the end (the store keeps it for the next login): none while reachable
    assert s["lost_while_reachable"] == 0
    assert s["lost"] == s["lost_awaiting_login"]
    assert s["duplicates"] == 0 and s["order_violations"] == 0
    assert s["send_failures"] == 0


def test_every_flip_online_is_one_login(churn_run, scenario):
    plan = make_plan(scenario)
    logins = churn_run.requests[churn_run.requests["kind"] == "login"]
    online_flips = [(u, t) for t, u, on in plan.flips if on]
    # no reset, so no other login; a login is written 2 round trips after its flip (TCP
    # and TLS handshakes, 160 ms): an online period that ends sooner (the app closed
    # during the handshake), or starts in the run's last moments, may have none
    horizon_s = scenario["duration_s"] + scenario["drain_s"]
    ends = {}  # (user, start of an online period) -> its end
    for t, u, on in plan.flips:
        if not on:
            for (v, start), end in ends.items():
                if v == u and end is None:
                    ends[(v, start)] = t
        else:
            ends[(u, t)] = None
    early = [
        u
        for u, t in online_flips
        if t < horizon_s - 0.5 and (ends[(u, t)] is None or ends[(u, t)] > t + 0.5)
    ]
    assert len(early) <= len(logins) <= len(online_flips)
    assert set(early) <= set(logins["user"]) <= {u for u, _ in online_flips}


def test_a_message_for_a_closed_app_waits_for_its_next_login(churn_run, scenario):
    # theory: a copy cannot reach a closed app; it comes over the connection of the next
    # online period, so not before that period's handshake and login (TCP and TLS round
    # trips, then the login frame: 5 one-way times of the constant 40 ms), and the
    # login's queue push or reconnect sync brings it within a few round trips
    plan = make_plan(scenario)
    logins: dict[int, list[float]] = {}
    for t, u, on in plan.flips:
        if on:
            logins.setdefault(u, []).append(t)
    m = churn_run.messages
    waited = m[~m["online_at_store"] & m["t_first_show"].notna()]
    assert len(waited) > 5  # a third of the users are offline at any time
    one_way_s = scenario["network.latency_ms"] / 1000.0
    for row in waited.itertuples():
        before = [t for t in logins.get(row.recipient, []) if t <= row.t_first_show]
        assert before, f"{row.msg_id} shown to {row.recipient}, who never logged in again"
        assert before[-1] + 5 * one_way_s <= row.t_first_show <= before[-1] + 1.0

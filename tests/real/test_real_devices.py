"""Several devices per user in ``immodel real``: one client per device (a phone on push,
a web client on long polling for some users), each with its own login, presence,
pending-ACK entries, offline queue and sync cursors; a message goes to every device of
each recipient and to the sender's other devices. The plan replays the simulator's
device table and draws, so the real run sends what the simulated run sends, to the same
devices, and nothing reachable is lost or shown twice."""

from __future__ import annotations

import pytest

from immodel import Scenario, run
from immodel.real.loadgen import make_plan
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

DEVICES = {
    **SMALL,
    "workload.users": 30,
    "duration_s": 5.0,
    "drain_s": 2.0,
    "workload.devices": {
        "phone": {"share": 1.0, "transport": "push"},
        "web": {"share": 0.4, "transport": "long_poll"},
    },
    "workload.online_fraction": 0.7,
    "workload.mean_online_s": 3.0,
    "workload.mean_offline_s": 2.0,
    "workload.group_share": 0.3,
    "workload.groups": 3,
    "workload.group_size": 5,
}


@pytest.fixture(scope="module")
def scenario():
    return Scenario.load("baseline", DEVICES)


@pytest.fixture(scope="module")
def sim_run(scenario):
    return run(scenario)


@pytest.fixture(scope="module")
def devices_run(scenario, tmp_path_factory):
    return shared_real_run(tmp_path_factory, "devices", scenario)[0]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("churn", [False, True])
def test_the_plan_sends_what_the_simulator_sends_to_the_same_devices(seed, churn):
    over = {**DEVICES, "seed": seed}
    if not churn:
        over.update({"workload.mean_online_s": 0.0, "workload.mean_offline_s": 0.0})
    sc = Scenario.load("baseline", over)
    plan = make_plan(sc)
    sim = run(sc).messages
    first = sim.drop_duplicates("msg_id")
    # the plan's senders are devices: the simulator's records name their users
    assert [plan.devices.user[s[1]] for s in plan.sends] == first["sender"].tolist()
    assert [s[2] for s in plan.sends] == first["conversation"].tolist()
    # each message's recipients: every device of each recipient and the sender's others
    labels = plan.devices.label
    planned = [sorted(labels[e] for e in s[4]) for s in plan.sends]
    sim_labels = (
        sim["recipient"]
        .astype(str)
        .where(sim["device"] == "phone", sim["recipient"].astype(str) + "/" + sim["device"])
    )
    by_msg = sim_labels.groupby(sim["msg_id"], sort=False).apply(sorted).tolist()
    assert planned == by_msg


def test_every_device_gets_its_copy(devices_run, sim_run):
    s, sim = devices_run.summary, sim_run.summary
    assert s["messages_sent"] == sim["messages_sent"] > 20
    # the logic tier expands recipients to devices as the simulator's workload does
    assert s["deliveries_expected"] == sim["deliveries_expected"] > s["messages_sent"]
    assert set(devices_run.messages["device"]) == {"phone", "web"}


def test_nothing_reachable_is_lost_or_shown_twice(devices_run):
    s = devices_run.summary
    assert s["lost_while_reachable"] == 0
    assert s["lost"] == s["lost_awaiting_login"]
    assert s["duplicates"] == 0 and s["order_violations"] == 0


def test_the_trace_names_devices_as_the_simulator_does(devices_run):
    users = set(devices_run.trace["user"])
    assert any("/web" in str(u) for u in users)  # a web device: "{user}/web"
    assert all(str(u).split("/")[0].isdigit() for u in users)

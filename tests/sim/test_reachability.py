"""Lost pairs split by reachability: a recipient device that never connected after the
store is ``lost_awaiting_login``, any other lost pair ``lost_while_reachable``
(:mod:`immodel.sim.reachability`), per device with several devices per user and per user
with one."""

from __future__ import annotations

import numpy as np
import pytest

from immodel import Scenario
from immodel.analysis.checker import check_trace
from immodel.sim.model import collect
from immodel.sim.world import World

DEVICES = {
    "phone": {"share": 1.0, "transport": "push"},
    "web": {"share": 0.5, "transport": "long_poll"},
}
NEVER_S = 1e9  # presence periods far longer than the run: no device ever flips


def _run(overrides: dict):
    values = {
        "workload.users": 200,
        "duration_s": 10.0,
        "workload.send_rate_per_user": 0.05,
        "workload.group_share": 0.3,
        "workload.groups": 3,
        "workload.group_size": 20,
    }
    values.update(overrides)
    world = World(Scenario.load("baseline", values))
    world.run()
    return world, collect(world)


def _eids(world, messages) -> np.ndarray:
    """The endpoint id of each messages row (recipient user, device kind)."""
    users = messages["recipient"].to_numpy()
    if world.devices is None:
        return users
    of = world.devices.of
    kind = world.devices.kind
    return np.array(
        [
            next(e for e in of[u] if kind[e] == k)
            for u, k in zip(users, messages["device"], strict=True)
        ]
    )


@pytest.mark.parametrize("devices", [{}, DEVICES], ids=["one-device", "phone+web"])
def test_pairs_to_devices_that_never_connected_are_awaiting_login_and_nothing_else_is_lost(
    devices,
):
    # Every mechanism on; half the devices online for the whole run, the others offline
    # for the whole run (churn with periods far longer than it): the offline devices'
    # pairs wait in the store, the online devices' pairs all arrive.
    world, r = _run(
        {
            "workload.online_fraction": 0.5,
            "workload.mean_online_s": NEVER_S,
            "workload.mean_offline_s": NEVER_S,
            "workload.devices": devices,
        }
    )
    m = r.messages[r.messages["stored"]]
    online = np.array([world.clients[e].online for e in _eids(world, m)])
    assert 0 < online.sum() < len(m)
    shown = m["t_first_show"].notna().to_numpy()
    reachable = m["reachable_after_store"].to_numpy(dtype=bool)
    assert (reachable == online).all()
    assert (shown == online).all()
    s = r.summary
    assert s["lost"] == s["lost_awaiting_login"] == int((~online).sum())
    assert s["lost_while_reachable"] == 0
    report = check_trace(r.trace)
    assert report.lost == s["lost"] and report.lost_awaiting_login == s["lost"]
    assert report.ok
    # the trace's stored rows carry the same flag as the messages rows
    stored = r.trace[r.trace["event"].astype(str) == "stored"]
    assert stored["reachable_after_store"].notna().all()
    assert int((~stored["reachable_after_store"].astype(bool)).sum()) == int((~online).sum())
    assert (
        r.trace.loc[r.trace["event"].astype(str) != "stored", "reachable_after_store"].isna().all()
    )


@pytest.mark.parametrize("devices", [{}, DEVICES], ids=["one-device", "phone+web"])
def test_a_connected_device_that_misses_a_message_is_lost_while_reachable(devices):
    # Everyone online all along; per-packet loss with neither the pending-ACK retransmit
    # nor sync: lost pushes and poll answers are gone while their devices are connected.
    _, r = _run(
        {
            "network.model": "datagram",
            "network.downlink_loss": 0.2,
            "reliability.downlink_ack": False,
            "reliability.sync": False,
            "workload.devices": devices,
        }
    )
    s = r.summary
    assert s["lost"] > 0
    assert s["lost_while_reachable"] == s["lost"] and s["lost_awaiting_login"] == 0
    m = r.messages[r.messages["stored"]]
    assert m["reachable_after_store"].all()
    report = check_trace(r.trace)
    assert report.lost_while_reachable == s["lost"] and not report.ok


def test_a_device_that_logs_in_after_the_store_is_reachable_and_catches_up():
    # Offline devices that open the app on their notification log in after the store:
    # their pairs are reachable (and arrive by the login's sync); devices that stay
    # closed are awaiting.
    _, r = _run(
        {
            "workload.online_fraction": 0.5,
            "workload.mean_online_s": NEVER_S,
            "workload.mean_offline_s": NEVER_S,
            "workload.push_open_prob": 0.5,
            "workload.push_open_delay_s": 1.0,
            "workload.devices": DEVICES,
        }
    )
    s = r.summary
    m = r.messages[r.messages["stored"]]
    late = m[~m["online_at_store"] & m["reachable_after_store"]]
    assert len(late) > 0 and late["t_first_show"].notna().all()
    assert s["push_opens"] > 0 and s["lost_awaiting_login"] > 0
    assert s["lost_while_reachable"] == 0
    assert s["lost"] == s["lost_awaiting_login"] + s["lost_while_reachable"]

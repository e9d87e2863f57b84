"""Several devices per user: every device of every recipient, and the sender's other
devices, get each message, each device judged on its own (workload.devices)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immodel import Scenario, run
from immodel.errors import ConfigError
from immodel.sim.devices import build_devices
from immodel.sim.rng import Streams
from immodel.sim.world import World
from tests.sim.helpers import quiet

WEB_SHARE = 0.3
DEVICES = {
    "phone": {"share": 1.0, "transport": "push"},
    "web": {"share": WEB_SHARE, "transport": "long_poll"},
}


def _multi(**overrides) -> Scenario:
    values = {
        "workload.users": 300,
        "duration_s": 20.0,
        "workload.send_rate_per_user": 0.05,
        "workload.devices": DEVICES,
    }
    values.update(overrides)
    return Scenario.load("baseline", values)


def test_a_message_reaches_every_device_of_the_recipient_and_the_senders_other_devices():
    everyone_has_web = {"phone": {"share": 1.0}, "web": {"share": 1.0, "transport": "long_poll"}}
    world = World(quiet(**{"workload.devices": everyone_has_web}))
    world.inject(5.0, 0, 1)  # from user 0's phone
    world.run()
    rows = world.rec.messages_frame()
    got = set(zip(rows["recipient"], rows["device"], strict=True))
    assert got == {(1, "phone"), (1, "web"), (0, "web")}
    assert rows["t_first_show"].notna().all()
    assert (rows["copies"] == 1).all()
    trace_users = set(world.rec.trace_frame().query("event == 'deliver'")["user"])
    assert trace_users == {"1", "1/web", "0/web"}


def test_per_device_delivery_counts_equal_the_expected_pairs_of_the_device_table():
    scenario = _multi()
    r = run(scenario)
    table = build_devices(scenario, scenario["workload.users"], Streams(scenario["seed"]))
    n_devices = [len(table.of[u]) for u in range(scenario["workload.users"])]
    per_msg = r.messages.drop_duplicates("msg_id")
    # 1:1 only: the recipient's devices plus the sender's devices but the sending one
    expected = sum(
        n_devices[int(m.recipient)] + n_devices[int(m.sender)] - 1 for m in per_msg.itertuples()
    )
    stored = r.messages[r.messages["stored"]]
    assert len(r.messages) == expected
    assert r.summary["deliveries_expected"] == len(stored) == expected
    by_kind = r.summary["delivery_by_device"]
    assert sum(v["deliveries_expected"] for v in by_kind.values()) == expected
    assert by_kind["web"]["deliveries_expected"] == int((stored["device"] == "web").sum())
    # nothing lost, nothing twice, per device (the checker sees one label per device)
    assert r.summary["lost"] == 0
    assert r.summary["duplicates"] == 0
    assert r.summary["order_violations"] == 0


def test_a_message_goes_to_one_plus_twice_the_web_share_devices_on_average():
    # For a 1:1 message: the recipient's phone, its web client with probability s, and the
    # sender's web (or phone) with probability s: 1 + 2s devices; variance 2 s (1 - s)
    # (the two users' web ownership is independent). Tolerance: 4 standard errors.
    r = run(_multi(**{"workload.users": 400, "seed": 3}))
    per_msg = r.messages.groupby("msg_id").size()
    n = len(per_msg)
    se = math.sqrt(2 * WEB_SHARE * (1 - WEB_SHARE) / n)
    assert n > 300
    assert abs(per_msg.mean() - (1 + 2 * WEB_SHARE)) < 4 * se


def test_the_share_of_users_with_a_device_kind_is_its_share_within_four_sigma():
    n = 5000
    sc = Scenario.load("baseline", {"workload.users": n, "workload.devices": DEVICES})
    table = build_devices(sc, n, Streams(7))
    web = sum(1 for k in table.kind if k == "web")
    assert abs(web - n * WEB_SHARE) < 4 * math.sqrt(n * WEB_SHARE * (1 - WEB_SHARE))
    assert len(table) == n + web


def test_each_device_keeps_its_own_transport_and_requests():
    r = run(_multi())
    web = r.messages[r.messages["device"] == "web"]
    assert set(web["recipient_kind"]) == {"long_poll"}
    assert set(r.messages.loc[r.messages["device"] == "phone", "recipient_kind"]) == {"push"}
    polls = r.requests[r.requests["kind"].astype(str) == "poll"]
    assert len(polls) > 0 and set(polls["device"]) == {"web"}
    assert r.requests["user"].max() < 300  # user ids, not the devices' endpoint ids


def test_devices_have_their_own_presence():
    r = run(_multi(**{"workload.online_fraction": 0.5}))
    stored = r.messages[r.messages["stored"]]
    both = stored.groupby(["msg_id", "recipient"])["online_at_store"].agg(["min", "max"])
    # with independent presence some users are online on one device and not the other
    assert ((both["min"] == False) & (both["max"] == True)).any()  # noqa: E712


def test_one_device_per_user_is_a_phone_and_the_trace_names_users():
    r = run(Scenario.load("baseline", {"workload.users": 20, "duration_s": 10.0}))
    assert set(r.messages["device"]) == {"phone"}
    assert set(r.requests["device"]) <= {"phone"}
    users = set(r.trace["user"])
    assert all(u.isdigit() for u in users)
    assert set(r.summary["delivery_by_device"]) == {"phone"}


@pytest.mark.parametrize(
    "value, needle",
    [
        ({"phone": {"share": 0.5}}, "workload.devices.phone.share must be 1.0"),
        ({"phone": {"share": 1.0}, "web": {"share": 2}}, "workload.devices.web.share"),
        ({"phone": {"share": 1.0}, "web": {"transport": "web"}}, "workload.devices.web.transport"),
        ({"phone": {"share": 1.0, "colour": 1}}, "unknown field 'colour'"),
        ({"phone": 3}, "workload.devices.phone must be a table"),
        (3, "workload.devices must be a table"),
    ],
)
def test_a_bad_device_table_names_the_key(value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        Scenario.load("baseline", {"workload.devices": value})


def test_a_device_without_transport_on_a_hybrid_run_is_refused():
    with pytest.raises(ConfigError, match=r"workload\.devices\.phone\.transport"):
        Scenario.load("hybrid", {"workload.devices": {"phone": {"share": 1.0}}})


def test_a_device_table_round_trips_through_toml():
    sc = _multi()
    again = Scenario.load(__import__("tomllib").loads(sc.to_toml()))
    assert again["workload.devices"] == sc["workload.devices"]
    default = Scenario.load("baseline")
    assert Scenario.load(__import__("tomllib").loads(default.to_toml()))["workload.devices"] == {}


def test_same_seed_same_records_with_devices():
    a, b = run(_multi(**{"workload.users": 100})), run(_multi(**{"workload.users": 100}))
    assert a.messages.equals(b.messages)
    assert np.array_equal(a.trace["t"].to_numpy(), b.trace["t"].to_numpy())


def test_recovery_after_a_gateway_crash_is_measured_per_device():
    # Every device (phones and web clients) on the crashed access node is cut off; the
    # recovery metrics follow each device's own pairs and its own login back.
    sc = _multi(
        **{
            "workload.users": 100,
            "server.access_nodes": 1,
            "faults": [{"kind": "gateway_crash", "at_s": 8.0, "down_s": 2.0, "node": 0}],
        }
    )
    r = run(sc)
    s = r.summary
    assert s["lost"] == 0
    assert s["recovery_pairs"] > 0
    assert s["recovery_undelivered"] == 0
    assert 2.0 <= s["reconnect_time_s"] < 30.0


def test_each_device_repairs_its_own_losses_without_duplicates_or_misorder():
    # Three kinds on three transports, 10 % downlink and 5 % uplink loss per packet: every
    # device's own pending-ACK, dedup, cursors and syncs bring each copy exactly once.
    kinds = {
        "phone": {"share": 1.0, "transport": "push"},
        "web": {"share": 0.5, "transport": "long_poll"},
        "desk": {"share": 0.2, "transport": "short_poll"},
    }
    r = run(
        _multi(
            **{
                "workload.users": 200,
                "duration_s": 30.0,
                "workload.group_share": 0.3,
                "workload.groups": 5,
                "workload.group_size": 20,
                "workload.devices": kinds,
                "network.model": "datagram",
                "network.downlink_loss": 0.1,
                "network.uplink_loss": 0.05,
            }
        )
    )
    s = r.summary
    assert set(s["delivery_by_device"]) == {"phone", "web", "desk"}
    assert all(v["deliveries_expected"] > 100 for v in s["delivery_by_device"].values())
    assert s["lost"] == s["duplicates"] == s["order_violations"] == 0
    assert r.summary["packets_lost_down"] > 0


def test_the_admin_account_is_judged_as_itself_not_as_a_device_owner():
    # the admin (REST sender, id -1) owns no device: with every user muted, its messages
    # pass the mute check; read as a device id, -1 would name the last device's owner,
    # who is muted, and every REST message would be refused
    result = run(_multi(**{"server.muted_fraction": 1.0, "workload.rest_rate_per_s": 2.0}))
    rest = result.messages[result.messages["origin"] == "rest"].drop_duplicates("msg_id")
    assert len(rest) > 10  # 2 calls/s × 20 s
    assert (rest["failure_reason"] == "").all()

"""Offline push end to end: the vendor's rate limit and collapsing, and users who open
the app on a notification (immodel.sim.offline_push)."""

from __future__ import annotations

import math

from immodel import Scenario, run
from immodel.sim.world import World


def _group_to_offline(**overrides) -> Scenario:
    """One group of every user, half of them offline; only the online half sends."""
    values = {
        "workload.users": 200,
        "workload.group_share": 1.0,
        "workload.groups": 1,
        "workload.group_size": 200,
        "workload.online_fraction": 0.5,
        "workload.send_rate_per_user": 0.0,
        "network.latency_ms": 40.0,
        "server.offline_push_loss": 0.0,
        "duration_s": 5.0,
        "drain_s": 200.0,
    }
    values.update(overrides)
    return Scenario.load("baseline", values)


def _one_group_message(scenario: Scenario, at_s: float = 1.0) -> World:
    world = World(scenario)
    members = world.groups[0]
    sender = next(m for m in members if world.clients[m].online)

    def send(_arg) -> None:
        recipients = tuple(m for m in members if m != sender)
        world.side.submit(world.clients[sender], "g0", True, recipients, world.env.now)

    world.later(at_s, send, None)
    world.run()
    return world


def test_the_vendor_rate_limit_passes_one_second_of_notifications_from_a_burst():
    # A group message fans out to every offline member in one go: the token bucket holds
    # rate_per_s tokens, so exactly that many pass and the rest are refused.
    world = _one_group_message(_group_to_offline(**{"server.offline_push_rate_per_s": 10.0}))
    c = world.counters
    offline = sum(1 for m in world.groups[0] if not world.clients[m].online)
    assert c["offline_pushes"] == offline > 10
    assert c["offline_push_refused"] == offline - 10
    notified = world.rec.messages_frame()["t_offline_push"].notna().sum()
    assert notified == 10


def test_the_rate_limit_refills_at_its_rate():
    # 40 offline devices, notifications every 0.6 s at 1/s (a bucket of one token): one
    # passes, the next finds 0.6 of a token, the one after a full token again — every
    # other notification passes.
    sc = Scenario.load(
        "baseline",
        {
            "workload.users": 41,
            "workload.send_rate_per_user": 0.0,
            "server.offline_push_rate_per_s": 1.0,
            "server.offline_push_loss": 0.0,
            "duration_s": 30.0,
            "drain_s": 10.0,
        },
    )
    world = World(sc)
    for u in range(1, 41):
        world.presence.set_online(world.clients[u], False)
        world.access.close(u, clean=True)
        world.side.detach(world.clients[u])
    for i in range(40):
        world.inject(1.0 + 0.6 * i, 0, 1 + i)
    world.run()
    assert world.counters["offline_pushes"] == 40
    assert world.counters["offline_push_refused"] == 20


def test_collapsing_notifies_a_device_once_while_unread():
    scenario = _group_to_offline(**{"server.offline_push_collapse": True})
    world = World(scenario)
    members = world.groups[0]
    sender = next(m for m in members if world.clients[m].online)

    def send(_arg) -> None:
        recipients = tuple(m for m in members if m != sender)
        world.side.submit(world.clients[sender], "g0", True, recipients, world.env.now)

    for t in (1.0, 2.0, 3.0):
        world.later(t, send, None)
    world.run()
    offline = sum(1 for m in members if not world.clients[m].online)
    assert world.counters["offline_pushes"] == offline
    assert world.counters["offline_push_collapsed"] == 2 * offline


def test_without_open_probability_a_notification_brings_nobody_back():
    world = _one_group_message(_group_to_offline())
    assert world.counters["push_opens"] == 0
    assert world.counters["logins"] == 0


def test_notification_to_shown_is_the_open_delay_plus_a_short_connect():
    # Every offline member is notified (constant vendor latency) and opens the app after
    # an exponential delay of mean D, then connects, logs in and syncs: notification →
    # shown = Exp(D) + connect, connect a few round trips (< 1 s here). The sample mean of
    # n exponentials has standard error D / sqrt(n): 4 standard errors of tolerance.
    mean_open_s = 20.0
    world = _one_group_message(
        _group_to_offline(
            **{"workload.push_open_prob": 1.0, "workload.push_open_delay_s": mean_open_s}
        )
    )
    m = world.rec.messages_frame()
    offline = m[~m["online_at_store"]]
    gap = (offline["t_first_show"] - offline["t_offline_push"]).to_numpy()
    n = len(gap)
    assert n > 80 and not math.isnan(gap.sum())
    se = mean_open_s / math.sqrt(n)
    assert -4 * se < gap.mean() - mean_open_s < 4 * se + 1.0
    assert world.counters["push_opens"] == n


def test_read_latency_is_the_users_first_show_for_offline_recipients():
    r = run(
        _group_to_offline(
            **{
                "workload.send_rate_per_user": 0.2,
                "workload.push_open_prob": 1.0,
                "workload.push_open_delay_s": 5.0,
                "workload.users": 60,
                "workload.group_size": 60,
            }
        )
    )
    m = r.messages[r.messages["stored"] & ~r.messages["online_at_store"]]
    lat = ((m["t_first_show"] - m["t_send"]) * 1000.0).dropna()
    assert len(lat) > 10
    assert r.summary["read_latency_p50_ms"] == lat.quantile(0.5)
    assert r.summary["offline_push_sent"] == r.summary["offline_pushes"]
    assert r.summary["offline_push_dropped"] == 0

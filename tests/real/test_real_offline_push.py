"""Offline push end to end in ``immodel real`` (:mod:`immodel.real.vendor_push`).

Two real runs of push clients with churn and long offline periods:

* ``opens``: users open the app on a notification (``workload.push_open_prob``), the
  vendor's channel collapses while unread, limits the app's rate (group messages make
  bursts over it), loses some and has exponential latency. Checked against the
  simulator's rules: every copy queued for a device that is not connected gets one
  decision, the token bucket's definition holds at every decision, losses and opens are
  within binomial bands of their probabilities, opened apps log in and catch up, nothing
  reachable is lost or shown twice.
* ``plain``: nobody opens the app and there is no rate limit, so presence and sends are
  the plan's — the simulator's — and the vendor's counts must be the simulated run's, up
  to the copies stored within a login's time of their device's presence flip.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from immodel import Scenario, run
from immodel.real.loadgen import make_plan
from tests.real.real_helpers import shared_real_run

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

#: push clients, half of them offline at the start, long offline periods (40 s against a
#: 6 s run: an offline device mostly stays offline unless its user opens the app), and
#: groups of 10 whose messages queue several copies at once (bursts for the rate limit)
BASE = {
    "transport.kind": "push",
    "workload.users": 40,
    "workload.send_rate_per_user": 0.4,
    "workload.online_fraction": 0.5,
    "workload.mean_online_s": 4.0,
    "workload.mean_offline_s": 40.0,
    "workload.group_share": 0.3,
    "workload.groups": 2,
    "workload.group_size": 10,
    "duration_s": 6.0,
    "drain_s": 3.0,
    "server.offline_push_collapse": True,
}
OPENS = {
    **BASE,
    "workload.push_open_prob": 0.5,
    "workload.push_open_delay_s": 0.5,
    "server.offline_push_ms": 150.0,
    "server.offline_push_dist": "exponential",
    "server.offline_push_loss": 0.15,
    "server.offline_push_rate_per_s": 4.0,
}
PLAIN = {
    **BASE,
    "server.offline_push_ms": 300.0,
    "server.offline_push_dist": "constant",
    "server.offline_push_loss": 0.2,
}
#: A copy stored this close to a presence flip of its device may find it connected in
#: one run and not in the other: a login is written two round trips after its flip (TCP
#: and TLS handshakes through the proxy's 40 ms legs, ~160 ms), the simulator's store
#: one uplink leg after the send.
RACE_S = 0.5


def binomial_band(n: int, p: float, tail: float = 5e-4) -> tuple[int, int]:
    """The central band of Binomial(n, p) leaving at most ``tail`` in each tail."""
    pmf = [math.comb(n, k) * p**k * (1.0 - p) ** (n - k) for k in range(n + 1)]
    cdf = np.cumsum(pmf)
    lo = int(np.searchsorted(cdf, tail, side="right"))
    hi = int(np.searchsorted(cdf, 1.0 - tail, side="left"))
    return lo, min(n, hi)


def _load(workdir):
    log = [json.loads(line) for line in (workdir / "vendor-log.jsonl").read_text().splitlines()]
    device = json.loads((workdir / "device_pushes.json").read_text())
    return log, device


@pytest.fixture(scope="module")
def opens(tmp_path_factory):
    sc = Scenario.load("baseline", OPENS)
    result, workdir = shared_real_run(tmp_path_factory, "offline-push-opens", sc)
    return sc, result, *_load(workdir)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    sc = Scenario.load("baseline", PLAIN)
    result, workdir = shared_real_run(tmp_path_factory, "offline-push-plain", sc)
    return sc, result, *_load(workdir)


def _offline_copies(result) -> set[tuple[str, int]]:
    m = result.messages
    queued = m[m["stored"] & ~m["online_at_store"]]
    return set(zip(queued["msg_id"], queued["recipient"].astype(int), strict=True))


def test_every_copy_for_a_device_not_connected_gets_one_decision(opens):
    _sc, result, log, _device = opens
    notified = [(e["msg_id"], e["eid"]) for e in log if e["op"] == "notify"]
    assert len(notified) == len(set(notified))  # one decision per copy
    assert set(notified) == _offline_copies(result)
    s = result.summary
    outcomes = [e["outcome"] for e in log if e["op"] == "notify"]
    assert s["offline_push_collapsed"] == outcomes.count("collapsed") > 0
    assert s["offline_push_refused"] == outcomes.count("refused") > 0
    assert s["offline_pushes_lost"] == outcomes.count("lost")
    assert (
        s["offline_push_sent"] == s["offline_pushes"] == len(notified) - outcomes.count("collapsed")
    )
    assert s["offline_push_dropped"] == s["offline_push_refused"] + s["offline_pushes_lost"]


def test_delivered_notifications_reach_their_devices_and_are_recorded(opens):
    _sc, result, log, device = opens
    delivered = {(e["msg_id"], e["eid"]) for e in log if e.get("outcome") == "delivered"}
    arrived = [(m, e) for _t, m, e in device["arrivals"]]
    assert len(arrived) == len(set(arrived)) and set(arrived) == delivered
    m = result.messages
    pushed = m[m["t_offline_push"].notna()]
    assert set(zip(pushed["msg_id"], pushed["recipient"].astype(int), strict=True)) == delivered
    assert (pushed["t_offline_push"] >= pushed["t_stored"]).all()
    assert result.summary["offline_push_latency_mean_ms"] > 0


def test_the_token_bucket_holds_at_every_decision(opens):
    # the definition of a bucket of r tokens refilled at r per s, full at the start: at
    # time t it holds min over s of r + r (t - s) - (notifications taken in (s, t]), s
    # ranging over the start and the times of the notifications taken; one is taken iff
    # it holds at least one token
    sc, _result, log, _device = opens
    r = sc["server.offline_push_rate_per_s"]
    start = next(e["t"] for e in log if e["op"] == "start")
    decisions = [e for e in log if e["op"] == "notify" and e["outcome"] != "collapsed"]
    taken: list[float] = []
    for e in decisions:
        t = e["t"]
        holds = min(
            [r + r * (t - start) - len(taken)]
            + [r + r * (t - s) - (len(taken) - i) for i, s in enumerate(taken)]
        )
        if e["outcome"] == "refused":
            assert holds < 1.0 + 1e-9, e
        else:
            assert holds >= 1.0 - 1e-9, e
            taken.append(t)


def test_collapsing_until_the_device_logs_in(opens):
    _sc, result, log, _device = opens
    unread: set[int] = set()
    for e in log:  # the rule, on the vendor's own order of events
        if e["op"] == "read":
            unread.discard(e["eid"])
        elif e["op"] == "notify":
            assert (e["outcome"] == "collapsed") == (e["eid"] in unread), e
            if e["outcome"] in ("delivered", "lost"):
                unread.add(e["eid"])
    # and on the records: a device is notified at most once per login (+ the first)
    logins = result.requests[result.requests["kind"] == "login"]["user"].value_counts()
    accepted: dict[int, int] = {}
    for e in log:
        if e.get("outcome") in ("delivered", "lost"):
            accepted[e["eid"]] = accepted.get(e["eid"], 0) + 1
    assert all(n <= 1 + int(logins.get(eid, 0)) for eid, n in accepted.items())


def test_losses_are_within_the_binomial_band(opens):
    sc, result, _log, _device = opens
    s = result.summary
    n = s["offline_pushes"] - s["offline_push_refused"]
    lo, hi = binomial_band(n, sc["server.offline_push_loss"])
    assert n >= 15 and lo <= s["offline_pushes_lost"] <= hi


def test_opens_are_push_open_prob_of_the_notifications_on_closed_apps(opens):
    sc, result, _log, device = opens
    c = result.counters
    draws, yes = c["push_open_draws"], c["push_open_yes"]
    assert draws <= c["push_notifications_received"] == len(device["arrivals"])
    lo, hi = binomial_band(draws, sc["workload.push_open_prob"])
    assert draws > 10 and lo <= yes <= hi
    opens_n = result.summary["push_opens"]
    assert opens_n == len(device["opens"]) == yes - c.get("push_opens_superseded", 0) > 0


def test_opened_apps_log_in_and_catch_up(opens):
    sc, result, _log, device = opens
    horizon_s = sc["duration_s"] + sc["drain_s"]
    req = result.requests
    logins = req[req["kind"] == "login"]
    m = result.messages
    queued = m[m["stored"] & ~m["online_at_store"]]
    own_offline = {}  # device -> times its own clock closed the app
    for t, eid, on in device["flips"]:
        if not on:
            own_offline.setdefault(eid, []).append(t)
    checked = 0
    for t_open, eid in device["opens"]:
        closes = [t for t in own_offline.get(eid, []) if t > t_open]
        if closes and min(closes) < t_open + 1.0:
            continue  # closed again (its own churn) before it could log in and catch up
        if t_open > horizon_s - 1.0:
            continue  # the run ends before its login would be recorded
        mine = logins[logins["user"] == eid]["t"]
        after = mine[mine >= t_open - 1e-6]
        # the login follows at once (a TCP and TLS handshake: two round trips)
        assert len(after) and after.min() < t_open + 1.0, (t_open, eid)
        before = mine[mine < t_open - 1e-6]
        since = before.max() if len(before) else -math.inf
        waiting = queued[(queued["recipient"] == eid) & (queued["t_stored"] > since)]
        waiting = waiting[waiting["t_stored"] < t_open]
        assert waiting["t_first_show"].notna().all(), (t_open, eid)
        assert (waiting["t_first_show"] >= t_open).all()
        checked += len(waiting)
    assert checked > 0


def test_nothing_reachable_is_lost_or_shown_twice(opens):
    s = opens[1].summary
    assert s["lost_while_reachable"] == 0
    assert s["lost"] == s["lost_awaiting_login"]
    assert s["duplicates"] == 0 and s["order_violations"] == 0
    assert s["read_latency_p50_ms"] is not None


def test_the_vendor_starts_only_when_a_device_can_be_offline():
    from immodel.real.orchestrator import check_supported
    from immodel.real.vendor_push import needed

    base = {"workload.users": 20, "duration_s": 3.0, "drain_s": 1.5}
    assert not needed(Scenario.load("baseline", base))  # every device connected throughout
    for over in (
        {"workload.online_fraction": 0.9},
        {"workload.mean_online_s": 5.0, "workload.mean_offline_s": 5.0},
        {"workload.push_open_prob": 0.1},
        {"faults": [{"kind": "client_crash", "at_s": 1.0, "share": 0.5}]},
        {"security.usersig_ttl_s": 2},
    ):
        sc = Scenario.load("baseline", {**base, **over})
        assert needed(sc), over
    check_supported(Scenario.load("baseline", OPENS))  # offline push is no longer refused


def _race_prone(sc) -> int:
    """Copies sent within RACE_S of a presence flip of their device (from the plan)."""
    plan = make_plan(sc)
    flips: dict[int, list[float]] = {}
    for t, u, _on in plan.flips:
        flips.setdefault(u, []).append(t)
    return sum(
        1
        for t, _s, _c, _g, rcpt in plan.sends
        for r in rcpt
        if any(abs(t - f) < RACE_S for f in flips.get(r, ()))
    )


def test_without_opens_the_counts_are_the_simulators(plain):
    sc, result, log, _device = plain
    sim = run(sc)
    race = _race_prone(sc)
    real, want = result.summary, sim.summary
    assert real["messages_sent"] == want["messages_sent"] > 20
    assert want["offline_pushes"] > 20 and want["offline_push_collapsed"] > 0
    for key in ("offline_pushes", "offline_push_collapsed"):
        assert abs(real[key] - want[key]) <= race, key
    # the same sequence of notifications draws the same losses (stream offline_push)
    if real["offline_pushes"] == want["offline_pushes"] and race == 0:
        assert real["offline_pushes_lost"] == want["offline_pushes_lost"]
    lo, hi = binomial_band(real["offline_pushes"], sc["server.offline_push_loss"])
    assert lo <= real["offline_pushes_lost"] <= hi
    assert real["offline_push_refused"] == want["offline_push_refused"] == 0
    assert real["push_opens"] == want["push_opens"] == 0
    # per copy: the same copies were queued for devices not connected
    sim_m = sim.messages
    sim_q = sim_m[sim_m["stored"] & ~sim_m["online_at_store"]]
    real_q = result.messages[result.messages["stored"] & ~result.messages["online_at_store"]]
    order = {mid: i for i, mid in enumerate(sim_m.drop_duplicates("msg_id")["msg_id"])}
    real_order = {
        mid: i for i, mid in enumerate(result.messages.drop_duplicates("msg_id")["msg_id"])
    }
    a = {(order[m], int(u)) for m, u in zip(sim_q["msg_id"], sim_q["recipient"], strict=True)}
    b = {
        (real_order[m], int(u)) for m, u in zip(real_q["msg_id"], real_q["recipient"], strict=True)
    }
    assert len(a ^ b) <= race
    # constant latency: a notification arrives offline_push_ms after its copy was stored
    # (the vendor's timer; the hops on loopback add milliseconds)
    m = result.messages
    gap_s = (m["t_offline_push"] - m["t_stored"]).dropna()
    delay_s = sc["server.offline_push_ms"] / 1000.0
    assert len(gap_s) > 10 and (gap_s >= delay_s - 1e-3).all()
    assert float(gap_s.median()) < delay_s + 0.05
    assert {e["outcome"] for e in log if e["op"] == "notify"} <= {"delivered", "lost", "collapsed"}

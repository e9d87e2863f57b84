"""Each fault kind does what immodel.sim.faults documents, measured on a small deployment.

Every mechanism is on unless a test says otherwise, so each test also checks that the
fault's damage is repaired (nothing lost or shown twice, groups in seq order). Expected
magnitudes are argued in the comments; thresholds are far below them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from faultkit import SMALL, replay_hint, run_checked, scenario

from immodel import run
from immodel.analysis.metrics import order_inversions, recovery_metrics
from immodel.sim.kernel import rendezvous
from immodel.sim.world import World


def _world(sc) -> World:
    world = World(sc)
    world.run()
    return world


def _probe(world: World, times, fn):
    """Record ``fn(world)`` at each simulated time in ``times`` (scheduled before run)."""
    seen: dict[float, object] = {}
    for t in times:
        world.later(t, lambda at: seen.__setitem__(at, fn(world)), t)
    return seen


# --------------------------------------------------------------------------------------
# server_crash
def test_logic_crash_drops_its_pending_acks_but_no_connection_and_sync_repairs_it():
    # 10 % downlink loss keeps pushes waiting for their ACK (a lost push or ACK waits
    # ack_timeout_s = 5 s), so a crash finds entries in the pending-ACK queue. The
    # connections live on the access tier: nobody logs in again (the article's figure 4).
    sc = scenario(
        [{"kind": "server_crash", "at_s": 10.0, "down_s": 10.0, "node": 0}],
        **{"network.downlink_loss": 0.1},
    )
    result = run_checked(sc)
    s, load = result.summary, result.load
    assert s["crash_pending_lost"] > 0, replay_hint(sc)
    assert (result.requests["kind"] == "login").sum() == 0
    during = load[(load["t"] > 11.0) & (load["t"] < 19.0)]
    logic0 = during[(during["tier"] == "logic") & (during["node"] == 0)]
    assert not logic0["up"].any()
    access = during[during["tier"] == "access"]
    assert (access["connections"] == SMALL["workload.users"]).all()
    # What the pending-ACK queue lost came back by sync.
    assert s["recovered_via_sync"] > 0
    assert s["recovery_time_s"] >= 10.0


def test_server_crash_drops_as_many_pending_acks_as_littles_law_says_wait_on_average():
    # Entries for node 2's recipients (the ten users the routing hash gives it) arrive at
    # λ (pairs stored per second just before the crash) and stay W = 2d (push, ACK) +
    # ack_timeout · p/(1 − p) (each lost push waits one timeout; ACKs are not lost
    # here): the crash at t0 finds L = λW of them on average. 20 seeds; the mean must
    # lie within 4 standard errors of the mean λW.
    dropped, little = [], []
    for seed in range(1, 21):
        sc = scenario(
            [{"kind": "server_crash", "at_s": 10.0, "down_s": 10.0, "node": 2}],
            **{"network.downlink_loss": 0.1, "seed": seed},
        )
        result = run_checked(sc)
        m = result.messages
        on_node2 = m["recipient"].map(lambda u: rendezvous(u, [0, 1, 2]) == 2)
        recent = m[m["stored"] & on_node2 & m["t_stored"].between(5.0, 10.0)]
        little.append(len(recent) / 5.0 * (2 * 0.040 + 5.0 * 0.1 / 0.9))
        dropped.append(result.summary["crash_pending_lost"])
    se = np.std(dropped, ddof=1) / math.sqrt(len(dropped))
    assert abs(np.mean(dropped) - np.mean(little)) <= 4 * se, (dropped, np.mean(little))
    assert np.mean(dropped) > 2.0  # ~4 per crash: the check is not about an empty table


def test_server_crash_forgets_the_dedup_window_unless_it_is_durable():
    # A message stored just before the crash whose reply was lost is retried after the
    # node is back: a volatile window stores it again (client dedup hides the copy), a
    # durable one answers with the original reply. 20 % downlink loss makes such
    # replies common among the ~50 messages that node 0 stores near the crash.
    faults = [{"kind": "server_crash", "at_s": 10.0, "down_s": 3.0, "node": 0}]
    over = {"network.downlink_loss": 0.2, "workload.send_rate_per_user": 1.0}
    twice = []
    for durable in (False, True):
        sc = scenario(faults, **over, **{"reliability.dedup_durable": durable})
        twice.append(run_checked(sc).summary["messages_stored_twice"])
    assert twice[0] > 0
    assert twice[1] == 0


def test_a_crash_while_the_node_is_down_extends_the_outage():
    sc = scenario(
        [
            {"kind": "server_crash", "at_s": 5.0, "down_s": 10.0, "node": 0},
            {"kind": "server_crash", "at_s": 10.0, "down_s": 10.0, "node": 0},
        ]
    )
    world = World(sc)
    up = _probe(world, (4.0, 12.0, 17.0, 19.5, 20.5), lambda w: w.nodes[0].up)
    recovered_at = []
    recover_node = world.logic.recover_node

    def recording_recover(node):
        recovered_at.append(world.env.now)
        recover_node(node)

    world.logic.recover_node = recording_recover
    world.run()
    assert up == {4.0: True, 12.0: False, 17.0: False, 19.5: False, 20.5: True}
    # One outage, one recovery: the second crash moved its end, it did not add another.
    assert recovered_at == [20.0]


# --------------------------------------------------------------------------------------
# gateway_crash, client_crash
def test_gateway_crash_drops_connections_and_every_client_reconnects_without_loss():
    sc = scenario([{"kind": "gateway_crash", "at_s": 10.0, "share": 1.0}])
    s = run_checked(sc).summary
    # Everyone was connected; the servers survive, so no pending-ACK entry is lost.
    assert s["logins"] == SMALL["workload.users"]
    assert s["crash_pending_lost"] == 0
    # Detection waits for the next heartbeat (≤ 30 s) plus the request timeout (10 s).
    assert 0 < s["reconnect_time_s"] <= 30.0 + 10.0 + 1.0
    # The fault-free twin never logs in (users online at t = 0 start connected), so
    # every login is extra traffic, each carrying its 300-byte UserSig.
    assert s["extra_requests_login"] == s["logins"]
    assert s["extra_bytes_up"] > 0


def test_a_run_without_faults_has_no_recovery_figures():
    s = run_checked(scenario([])).summary
    assert s["recovery_time_s"] is None and s["recovery_pairs"] is None
    assert s["extra_requests"] is None


def test_recovery_metrics_on_hand_written_records():
    # A crash at t = 10 cut off user 1 (back at 25); user 2 was not cut off.
    # m1: stored at 9 for user 2, shown at 9.05, before the crash: not affected.
    # m2: stored at 9.9 for user 2, shown at 10.1 by push: in flight at the crash.
    # m3: stored at 12 for user 1 (cut off), shown at 26 by sync: waited for the reconnect.
    # m4: stored at 30 for user 1, after it was back: not affected.
    # m5: stored at 11 for user 3, who was offline at the crash: not affected.
    messages = pd.DataFrame(
        {
            "msg_id": ["m1", "m2", "m3", "m4", "m5"],
            "recipient": [2, 2, 1, 1, 3],
            "stored": [True] * 5,
            "t_stored": [9.0, 9.9, 12.0, 30.0, 11.0],
            "t_first_show": [9.05, 10.1, 26.0, 30.1, 40.0],
            "first_via": ["push", "push", "sync", "push", "push"],
        }
    )
    requests = pd.DataFrame({"t": [25.0, 31.0], "user": [1, 1], "kind": ["login", "login"]})
    incident = {"at_s": 10.0, "end_s": 20.0, "users": (1,), "online": (1, 2)}
    got = recovery_metrics(messages, requests, [incident])
    assert got == {
        "recovery_time_s": 16.0,
        "reconnect_time_s": 15.0,
        "recovery_pairs": 2,
        "recovered_via_sync": 1,
        "recovered_via_push": 1,
        "recovery_undelivered": 0,
    }


def test_client_crash_with_local_state_reconnects_at_once_and_forgets_nothing():
    sc = scenario([{"kind": "client_crash", "at_s": 10.0, "share": 1.0}])
    s = run_checked(sc).summary
    assert s["logins"] == SMALL["workload.users"]
    assert s["reconnect_time_s"] < 1.0  # a restart reconnects at once: a few round trips


def test_client_crash_without_local_state_shows_the_history_again():
    # A wiped app syncs from cursor 0 and has no shown ids to dedup against: it shows
    # its conversations' history anew (counted as duplicates; documented behaviour).
    sc = scenario([{"kind": "client_crash", "at_s": 20.0, "share": 0.5, "keep_local_state": False}])
    result = run(sc)
    s, requests, m = result.summary, result.requests, result.messages
    assert s["lost"] == 0
    # Exactly what each wiped app had been shown before the crash comes again: the users
    # who log in after it (the crashed ones) see each such (message, recipient) twice.
    crashed = set(requests.loc[(requests["kind"] == "login") & (requests["t"] >= 20.0), "user"])
    shown_before = m["recipient"].isin(crashed) & (m["t_first_show"] < 20.0)
    assert 6 <= len(crashed) <= 18  # share 0.5 of 24 users
    assert s["duplicates"] == int(shown_before.sum()) > 0


# --------------------------------------------------------------------------------------
# partition, loss_burst
def test_partition_blocks_only_its_users_in_its_direction_until_every_partition_heals():
    faults = [
        {"kind": "partition", "at_s": 10.0, "down_s": 10.0, "share": 1.0, "direction": "uplink"},
        {"kind": "partition", "at_s": 15.0, "down_s": 10.0, "share": 0.5, "direction": "uplink"},
    ]
    world = World(scenario(faults))
    blocked = _probe(
        world, (9.0, 12.0, 22.0, 26.0), lambda w: (len(w.up.blocked), len(w.down.blocked))
    )
    world.run()
    n = SMALL["workload.users"]
    assert blocked[9.0] == (0, 0)
    assert blocked[12.0] == (n, 0)
    # The first partition healed at 20 s; the users of the second stay blocked until 25 s.
    assert 0 < blocked[22.0][0] < n and blocked[22.0][1] == 0
    assert blocked[26.0] == (0, 0)
    assert world.down.packets_lost == 0 and world.up.packets_lost > 0


def test_partition_of_both_directions_is_repaired_by_retries_and_retransmits():
    sc = scenario(
        [{"kind": "partition", "at_s": 10.0, "down_s": 10.0, "share": 0.5, "direction": "both"}]
    )
    s = run_checked(sc).summary
    assert s["packets_lost_up"] > 0 and s["packets_lost_down"] > 0
    assert s["retransmits_downlink"] > 0
    assert s["send_failures"] == 0  # 10 s < the sender's 25 s retry budget


def test_loss_burst_replaces_the_loss_for_its_window_and_the_strongest_burst_wins():
    faults = [
        {
            "kind": "loss_burst",
            "at_s": 10.0,
            "down_s": 10.0,
            "uplink_loss": 0.3,
            "downlink_loss": 0.1,
        },
        {
            "kind": "loss_burst",
            "at_s": 15.0,
            "down_s": 10.0,
            "uplink_loss": 0.2,
            "downlink_loss": 0.4,
        },
    ]
    world = World(scenario(faults))
    loss = _probe(world, (9.0, 12.0, 17.0, 22.0, 26.0), lambda w: (w.up.override, w.down.override))
    world.run()
    assert loss == {
        9.0: (None, None),
        12.0: (0.3, 0.1),
        17.0: (0.3, 0.4),
        22.0: (0.2, 0.4),
        26.0: (None, None),
    }


def test_loss_burst_is_repaired_with_every_mechanism_on():
    sc = scenario(
        [
            {
                "kind": "loss_burst",
                "at_s": 10.0,
                "down_s": 10.0,
                "uplink_loss": 0.5,
                "downlink_loss": 0.5,
            }
        ]
    )
    s = run_checked(sc).summary
    assert s["packets_lost_up"] > 0 and s["packets_lost_down"] > 0
    assert s["retransmits_uplink"] > 0 and s["retransmits_downlink"] > 0


# --------------------------------------------------------------------------------------
# store_failure, slow_server
def test_store_failure_never_tells_a_sender_success_for_a_message_that_was_not_stored():
    # Every write on node 0 fails for 10 s; its senders hear "not stored" and retry (the
    # 25 s retry budget outlasts the window, so every message is stored in the end).
    sc = scenario([{"kind": "store_failure", "at_s": 10.0, "down_s": 10.0, "prob": 1.0, "node": 0}])
    world = _world(sc)
    assert world.counters["store_failures"] > 0
    outcomes = list(world.rec.message_outcomes().itertuples())
    succeeded = [r for r in outcomes if r.failure == "" and not math.isnan(r.t_outcome)]
    assert succeeded
    for r in succeeded:
        assert r.stored_copies > 0 and r.t_stored <= r.t_outcome, r.msg_id
    # A sender on node 0 that submitted during the window was stored only after it.
    failed_window = [
        r for r in outcomes if world.logic.owner(r.sender).node_id == 0 and 10.5 < r.t_send < 19.0
    ]
    assert failed_window and all(r.t_stored >= 20.0 for r in failed_window)


def test_slow_server_retries_are_answered_by_the_dedup_window_not_stored_again():
    # Node 0 answers 12.5 s late (> the 5 s uplink timeout): each of its senders retries
    # a message that is already stored.
    slow = [{"kind": "slow_server", "at_s": 5.0, "down_s": 10.0, "extra_ms": 12500.0, "node": 0}]
    s = run_checked(scenario(slow)).summary
    assert s["dedup_hits"] > 0
    assert s["messages_stored_twice"] == 0
    assert s["send_failures"] == 0


def test_slow_server_without_server_dedup_stores_retries_twice_and_client_dedup_hides_them():
    slow = [{"kind": "slow_server", "at_s": 5.0, "down_s": 10.0, "extra_ms": 12500.0, "node": 0}]
    s = run_checked(scenario(slow, **{"reliability.server_dedup": False})).summary
    assert s["messages_stored_twice"] > 0
    assert s["dedup_hits"] == 0


# --------------------------------------------------------------------------------------
# clock_skew
def _skewed(skew_ms: float):
    # Twenty users on two nodes (six of them on node 1 by the routing hash) talking fast:
    # both directions of a conversation interleave within a second, so a 1 s skew of
    # node 1 must invert some of them.
    return scenario(
        [{"kind": "clock_skew", "at_s": 0.0, "skew_ms": skew_ms, "node": 1}],
        **{
            "workload.users": 20,
            "workload.groups": 1,
            "workload.group_size": 6,
            "workload.send_rate_per_user": 1.0,
            "server.nodes": 2,
        },
    )


def test_clock_skew_inverts_one_to_one_order_between_directions_but_not_group_seq():
    sc = _skewed(1000.0)
    result = run_checked(sc)
    s, trace, messages = result.summary, result.trace, result.messages
    # Invisible to the per-recipient check: a recipient only gets the other party's
    # messages, all stamped by the same node, so their order is intact ...
    assert s["order_violations"] == 0
    # ... visible between the directions: the app's key order contradicts the order of
    # acceptance, and some replies sort above the message they answer.
    assert s["stored_order_inversions"] > 0, replay_hint(sc)
    assert s["causal_order_violations"] > 0, replay_hint(sc)
    groups = set(messages.loc[messages["is_group"], "conversation"])
    assert groups
    in_groups = order_inversions(trace[trace["conversation"].isin(groups)])
    assert in_groups == {"stored_order_inversions": 0, "causal_order_violations": 0}


def test_without_clock_skew_there_is_no_inversion():
    s = run_checked(_skewed(0.0)).summary
    assert s["stored_order_inversions"] == 0
    assert s["causal_order_violations"] == 0


def test_order_inversions_on_a_hand_written_trace():
    # a stored at t=1 with key 2000 (fast clock); b stored later (t=2) with key 1500:
    # an inversion. User 2 had seen a (key 2000) before sending b: a causal violation.
    rows = [
        (0.9, "send", "a", "c", "1", np.nan),
        (1.0, "stored", "a", "c", "2", 2000),
        (1.1, "deliver", "a", "c", "2", 2000),
        (1.5, "send", "b", "c", "2", np.nan),
        (2.0, "stored", "b", "c", "1", 1500),
        (2.1, "deliver", "b", "c", "1", 1500),
        (3.0, "send", "x", "g", "1", np.nan),
        (3.1, "stored", "x", "g", "2", 1),
    ]
    trace = pd.DataFrame(
        rows, columns=["t", "event", "msg_id", "conversation", "user", "order_key"]
    )
    assert order_inversions(trace) == {"stored_order_inversions": 1, "causal_order_violations": 1}


def test_messages_stored_at_the_same_instant_are_not_inversions_of_each_other():
    # "a message of the same conversation the server had stored strictly earlier": two
    # nodes store a (key 2000) and b (key 1500) at the same t = 1.0, a first in row
    # order — neither was stored before the other, so no inversion. c, stored at t = 2.0
    # with key 1800, is below a's 2000 stored strictly earlier: one inversion.
    rows = [
        (1.0, "stored", "a", "c", "1", 2000),
        (1.0, "stored", "b", "c", "2", 1500),
        (2.0, "stored", "c", "c", "1", 1800),
    ]
    trace = pd.DataFrame(
        rows, columns=["t", "event", "msg_id", "conversation", "user", "order_key"]
    )
    assert order_inversions(trace)["stored_order_inversions"] == 1

"""Recovery metrics of crash incidents (``docs/metrics.md``, "Faults and recovery") on
hand-written records: each case's expected values are worked out from the definitions.

An incident strikes at t0; a cut-off user is back at its first ``login`` request after
t0. Affected pairs: recipient online at t0, not shown before t0, stored before t0 or (a
cut-off recipient) before it was back.
"""

from __future__ import annotations

import math

import pandas as pd

from immodel.analysis.metrics import RECOVERY_KEYS, recovery_metrics

NAN = math.nan


def _messages(rows):
    """(recipient, t_stored, t_first_show, first_via) rows, every one stored."""
    df = pd.DataFrame(rows, columns=["recipient", "t_stored", "t_first_show", "first_via"])
    df.insert(0, "msg_id", [f"m{i}" for i in range(len(df))])
    df["stored"] = True
    return df


def _requests(rows=()):
    """(t, user, kind) rows."""
    return pd.DataFrame(list(rows), columns=["t", "user", "kind"]).astype({"t": float})


def test_no_incident_gives_no_recovery_metrics():
    got = recovery_metrics(_messages([(1, 1.0, 1.1, "push")]), _requests(), [])
    assert got == dict.fromkeys(RECOVERY_KEYS)


def test_affected_pairs_reconnect_and_the_way_each_pair_came_back():
    # t0 = 10, the fault ends at 12; user 1 is cut off, users 1 and 2 were online.
    # User 1 is back at 14: its login at 5 was before the crash, the one at exactly 10 is
    # not after t0, a sync at 11 is no login, the login at 16 is not its first.
    incident = {"at_s": 10.0, "end_s": 12.0, "users": (1,), "online": (1, 2)}
    requests = _requests(
        [
            (5.0, 1, "login"),
            (10.0, 1, "login"),
            (11.0, 1, "sync"),
            (11.0, 2, "login"),
            (14.0, 1, "login"),
            (16.0, 1, "login"),
        ]
    )
    messages = _messages(
        [
            (2, 9.0, 9.5, "push"),  # shown before t0: not affected
            (2, 9.9, 10.0, "push"),  # shown at t0: it had reached the app, not affected
            (2, 9.8, 10.4, "push"),  # in flight at t0: affected, by push
            (2, 10.0, 10.2, "push"),  # stored at t0, not before, recipient not cut off
            (1, 13.0, 14.5, "sync"),  # waited for user 1's reconnect: affected, by sync
            (1, 14.0, 14.1, "push"),  # stored when user 1 was back, not before
            (3, 9.9, 20.0, "push"),  # user 3 was not online at t0
            (1, 9.7, 15.0, "poll"),  # in flight at t0, came by a polled copy
        ]
    )
    got = recovery_metrics(messages, requests, [incident])
    assert got == {
        "recovery_time_s": 15.0 - 10.0,  # the last affected pair shown at 15
        "reconnect_time_s": 14.0 - 10.0,  # user 1 back at 14, after the fault ended at 12
        "recovery_pairs": 3,
        "recovered_via_sync": 1,
        "recovered_via_push": 2,  # a pushed and a polled copy
        "recovery_undelivered": 0,
    }


def test_a_user_who_never_comes_back_leaves_no_recovery_or_reconnect_time():
    # t0 = 20; user 5 is cut off and never logs in again: everything stored for it after
    # t0 is affected and never arrives.
    incident = {"at_s": 20.0, "end_s": 25.0, "users": (5,), "online": (5, 6)}
    messages = _messages(
        [
            (5, 30.0, NAN, ""),
            (6, 19.5, 21.0, "push"),
            (6, 22.0, 22.5, "push"),  # user 6 was not cut off: stored after t0, unaffected
        ]
    )
    got = recovery_metrics(messages, _requests([(21.0, 6, "login")]), [incident])
    assert got == {
        "recovery_time_s": None,
        "reconnect_time_s": None,
        "recovery_pairs": 2,
        "recovered_via_sync": 0,
        "recovered_via_push": 1,
        "recovery_undelivered": 1,
    }


def test_reconnect_waits_for_the_end_of_the_fault_and_no_affected_pair_recovers_at_once():
    # User 1 is back at 12, before the fault ends at 18; its only message was shown
    # before the crash, and a message never stored is nobody's pair.
    incident = {"at_s": 10.0, "end_s": 18.0, "users": (1,), "online": (1,)}
    messages = _messages([(1, 8.0, 8.5, "push"), (1, NAN, NAN, "")])
    messages.loc[1, "stored"] = False
    got = recovery_metrics(messages, _requests([(12.0, 1, "login")]), [incident])
    assert got["reconnect_time_s"] == 8.0
    assert got["recovery_time_s"] == 0.0
    assert got["recovery_pairs"] == 0
    assert got["recovery_undelivered"] == 0


def test_an_incident_that_cut_nobody_off_reconnects_when_it_ends():
    # No "users" entry: nobody was cut off. Pair shown 0.5 s after t0.
    incident = {"at_s": 10.0, "end_s": 13.0, "online": (2,)}
    got = recovery_metrics(_messages([(2, 9.9, 10.5, "push")]), _requests(), [incident])
    assert got["reconnect_time_s"] == 3.0
    assert got["recovery_time_s"] == 0.5
    assert got["recovery_pairs"] == 1
    # Without "online" nobody's pair is affected.
    got = recovery_metrics(
        _messages([(2, 9.9, 10.5, "push")]), _requests(), [{"at_s": 10.0, "end_s": 13.0}]
    )
    assert (got["recovery_pairs"], got["recovery_time_s"]) == (0, 0.0)


def test_two_incidents_take_the_longest_times_and_count_a_pair_once():
    first = {"at_s": 10.0, "end_s": 13.0, "users": (), "online": (2,)}
    second = {"at_s": 11.0, "end_s": 15.0, "users": (), "online": (2,)}
    messages = _messages(
        [
            (2, 9.9, 12.0, "push"),  # waiting at both t0: one pair
            (2, 10.5, 11.5, "sync"),  # stored after the first t0, waiting at the second
            (2, 9.5, 10.8, "push"),  # waiting at the first t0, shown before the second
        ]
    )
    got = recovery_metrics(messages, _requests(), [first, second])
    assert got == {
        "recovery_time_s": 2.0,  # first: 12.0 - 10; second: 12.0 - 11
        "reconnect_time_s": 4.0,  # first: 13 - 10; second: 15 - 11
        "recovery_pairs": 3,
        "recovered_via_sync": 1,
        "recovered_via_push": 2,
        "recovery_undelivered": 0,
    }

"""The seq-gap sync storm, and burnt seqs, in a whole run.

A large group whose fan-out jobs finish out of order (several downlink workers,
exponential service) shows every member seq n+1 before seq n: without a wait each member
syncs on each such gap (a sync storm); with a wait of a few tens of milliseconds — longer
than the spread of the fan-out completions — the gaps fill by themselves. Either way
nothing is lost and nothing is shown out of order. A seq burnt by a failed write is a gap
that no message fills: sync pages list it, and the run still loses nothing.
"""

from __future__ import annotations

import pytest

import immodel
from immodel.analysis.checker import check_trace
from immodel.scenario import Scenario

MEMBERS = 100


def storm(wait_ms: float, seed: int, **extra) -> immodel.Result:
    """One group of every user, 20 group messages per second for 3 s."""
    values = {
        "seed": seed,
        "workload.users": MEMBERS,
        "workload.group_share": 1.0,
        "workload.groups": 1,
        "workload.group_size": MEMBERS,
        "workload.send_rate_per_user": 20.0 / MEMBERS,
        "duration_s": 3.0,
        "reliability.gap_wait_ms": wait_ms,
    }
    values.update(extra)
    return immodel.run(Scenario.load("baseline", values))


@pytest.mark.parametrize("seed", [1, 2])
def test_a_gap_wait_longer_than_the_fanout_spread_tames_the_sync_storm(seed):
    without = storm(0.0, seed)
    waited = storm(50.0, seed)
    # out-of-order fan-out really happens: without a wait, members sync on gaps
    assert without.summary["sync_pulls"] > MEMBERS / 2
    assert waited.summary["sync_pulls"] < without.summary["sync_pulls"] / 10
    for result in (without, waited):
        report = check_trace(result.trace)
        assert report.lost == 0 and report.duplicates == 0 and report.order_violations == 0
        assert result.summary["lost"] == 0


def test_burnt_seqs_from_failed_writes_are_stepped_over_and_nothing_is_lost():
    faults = [{"kind": "store_failure", "at_s": 0.5, "down_s": 2.0, "prob": 0.5, "node": 0}]
    # (with a gap wait too: tests/protocol/test_gap_wait.py, under any arrival order)
    result = storm(0.0, 3, faults=faults, **{"server.seq_burn_prob": 1.0})
    assert result.summary["seqs_burnt"] == result.summary["store_failures"] > 0
    report = check_trace(result.trace)
    assert report.lost == 0 and report.duplicates == 0 and report.order_violations == 0
    assert result.summary["lost"] == 0


def test_no_seq_is_burnt_by_default_even_when_writes_fail():
    faults = [{"kind": "store_failure", "at_s": 0.5, "down_s": 2.0, "prob": 0.5, "node": 0}]
    result = storm(0.0, 3, faults=faults)
    assert result.summary["store_failures"] > 0 and result.summary["seqs_burnt"] == 0

"""A ``partition`` in ``immodel real``: the chosen clients' frames are held both ways for
longer than the sender's and the pending-ACK timeouts, then released. The retries reach
the server after their originals and are answered from the dedup window; the pushes
retransmitted meanwhile are dropped by client dedup: nothing lost, nothing stored or
shown twice."""

from __future__ import annotations

import pytest

from immodel import Scenario
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]


@pytest.fixture(scope="module")
def partition_run(tmp_path_factory):
    scenario = Scenario.load(
        "baseline",
        {
            **SMALL,
            "workload.users": 30,
            "workload.send_rate_per_user": 1.0,
            "duration_s": 3.0,
            "drain_s": 3.5,
            "reliability.uplink_timeout_s": 2.0,
            "reliability.ack_timeout_s": 2.0,
            "faults": [
                {"kind": "partition", "at_s": 0.5, "down_s": 3.0, "share": 0.3, "direction": "both"}
            ],
        },
    )
    return shared_real_run(tmp_path_factory, "partition", scenario)[0]


def test_a_partition_longer_than_the_timeouts_loses_and_duplicates_nothing(partition_run):
    summary = partition_run.summary
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["send_failures"] == 0
    assert summary["messages_stored_twice"] == 0


def test_the_held_sends_were_retried_and_deduplicated_by_the_server(partition_run):
    # ~9 partitioned users send ~1 msg/s: the sends of the first 1.5 s of the partition
    # time out (2 s) before it heals (3 s), so retries are all but certain (P(none) ~ e^-9)
    assert partition_run.summary["retransmits_uplink"] > 0
    assert partition_run.counters["dedup_hits"] > 0
    assert partition_run.summary["latency_max_ms"] > 2000  # held, not dropped

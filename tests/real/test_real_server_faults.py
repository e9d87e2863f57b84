"""Server faults in ``immodel real`` that change what a logic process does for a while:
``slow_server`` (the node answers its senders late although the write is done: the
article's failure 3), ``store_failure`` (writes fail with a probability: "not stored",
retryable) and ``clock_skew`` (the node's 1:1 timestamp clock runs ahead). The
orchestrator tells the process by a command at the fault's time."""

from __future__ import annotations

import pytest

from immodel import Scenario, run
from tests.real.real_helpers import SMALL, shared_real_run
from tests.real.test_real_callback import binomial_band

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

# replies 1.5 s late for 2 s, against a 1 s uplink timeout: every send answered in the
# slow period is retried once before its reply comes
SLOW = {
    **SMALL,
    "duration_s": 5.0,
    "drain_s": 3.0,
    "reliability.uplink_timeout_s": 1.0,
    "faults": [{"kind": "slow_server", "at_s": 1.0, "down_s": 2.0, "extra_ms": 1500.0}],
}
FAIL_PROB = 0.5
FAILING = {
    **SMALL,
    "duration_s": 5.0,
    "drain_s": 3.0,
    "reliability.uplink_timeout_s": 1.0,
    "faults": [{"kind": "store_failure", "at_s": 1.0, "down_s": 2.0, "prob": FAIL_PROB}],
}


@pytest.fixture(scope="module")
def slow_scenario():
    return Scenario.load("baseline", SLOW)


@pytest.fixture(scope="module")
def slow(slow_scenario, tmp_path_factory):
    return shared_real_run(tmp_path_factory, "slow-server", slow_scenario)[0]


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    return shared_real_run(tmp_path_factory, "store-failure", Scenario.load("baseline", FAILING))[0]


def test_a_late_reply_makes_the_sender_retry_and_the_dedup_window_answers(slow, slow_scenario):
    s = slow.summary
    assert s["retransmits_uplink"] > 0  # the sends answered in the slow period
    # every retry of a stored message is answered from the dedup window, not stored again
    assert s["dedup_hits"] >= s["retransmits_uplink"] > 0
    assert s["messages_stored_twice"] == 0
    assert s["lost"] == 0 and s["duplicates"] == 0 and s["send_failures"] == 0
    # the simulator, on the same plan: the same rule makes the same messages retry, but
    # for those sent within a round trip of the slow period's edges (timing differs)
    sim = run(slow_scenario).summary
    m = slow.messages.drop_duplicates("msg_id")
    edge = ((m["t_send"] - 1.0).abs() < 0.2) | ((m["t_send"] - 3.0).abs() < 0.2)
    assert abs(s["retransmits_uplink"] - sim["retransmits_uplink"]) <= int(edge.sum())


def test_failed_writes_are_their_share_and_retried_until_stored(failing):
    s = failing.summary
    writes = failing.counters["writes_under_store_failure"]
    assert writes > 5  # 20 users × 0.5 msg/s × 2 s ≈ 20 sends, plus retries
    low, high = binomial_band(writes, FAIL_PROB)
    assert low <= s["store_failures"] <= high
    # a failed write is retryable: the sender retries after its timeout and the message
    # is stored once in the end (the default retries without limit)
    assert s["lost"] == 0 and s["duplicates"] == 0 and s["send_failures"] == 0
    assert s["messages_stored_twice"] == 0
    assert s["retransmits_uplink"] >= s["store_failures"]


def test_the_fault_ends_on_time(failing):
    # no write fails after the fault's end (3 s): the failed attempts' messages were all
    # sent before it, so each had its failure while the fault was in force
    m = failing.messages.drop_duplicates("msg_id")
    retried = m[m["attempts"] > 1]
    assert len(retried) > 0
    assert (retried["t_send"] < 3.0 + 1e-9).all()
    assert retried["t_stored"].notna().all()  # and each was stored by a later attempt


SKEW_MS = 500.0
SKEWED = {
    **SMALL,
    "duration_s": 3.0,
    "drain_s": 1.5,
    "faults": [{"kind": "clock_skew", "at_s": 1.0, "skew_ms": SKEW_MS, "node": 0}],
}


@pytest.fixture(scope="module")
def skewed(tmp_path_factory):
    return shared_real_run(tmp_path_factory, "clock-skew", Scenario.load("baseline", SKEWED))[0]


def test_a_skewed_node_stamps_its_one_to_one_messages_ahead(skewed):
    # a 1:1 order key is the stamping node's clock in ms: its offset from the store time
    # is a constant before the fault and that constant + 500 ms after it (stamps only
    # move forward, so the few stamped at the switch are at most its round trip off)
    m = skewed.messages.drop_duplicates("msg_id")
    offset_ms = m["order_key"] - 1000.0 * m["t_stored"]
    before = offset_ms[m["t_stored"] < 0.9]
    after = offset_ms[m["t_stored"] > 1.1]
    assert len(before) > 3 and len(after) > 3
    assert abs((after.median() - before.median()) - SKEW_MS) < 5.0
    assert skewed.summary["lost"] == 0 and skewed.summary["duplicates"] == 0

"""Content screening in ``immodel real``: each send that passed the checks (and the
callback, if any) is screened by a service of its own (the business process's
``/screen``, an exponential wait of mean ``server.screening_ms``), which hits a share
``server.screening_block_prob``; ``server.screening_policy`` decides what a hit means,
and the records mark it as the simulator's do."""

from __future__ import annotations

import pytest

from immodel import Scenario
from immodel.analysis.checker import check_trace
from tests.real.real_helpers import SMALL, shared_real_run
from tests.real.test_real_callback import binomial_band

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

HIT_PROB = 0.3
SCREENED = {
    **SMALL,
    "workload.users": 30,
    "duration_s": 6.0,
    "drain_s": 2.0,
    "server.screening_enabled": True,
    "server.screening_block_prob": HIT_PROB,
}


def _screened_run(tmp_path_factory, policy: str):
    scenario = Scenario.load("baseline", {**SCREENED, "server.screening_policy": policy})
    return shared_real_run(tmp_path_factory, "screening-" + policy, scenario)[0]


@pytest.fixture(scope="module")
def replaced(tmp_path_factory):
    return _screened_run(tmp_path_factory, "replace")


@pytest.fixture(scope="module")
def sender_only(tmp_path_factory):
    return _screened_run(tmp_path_factory, "sender_only")


@pytest.mark.parametrize(
    ("run_name", "action"), [("replaced", "replaced"), ("sender_only", "sender_only")]
)
def test_screening_hits_its_share_and_the_records_mark_each_hit(request, run_name, action):
    result = request.getfixturevalue(run_name)
    m = result.messages.drop_duplicates("msg_id")
    n = len(m)
    hits = int((m["screening"] == action).sum())
    low, high = binomial_band(n, HIT_PROB)
    assert low <= hits <= high
    assert set(m["screening"]) <= {"", action}
    assert result.summary["screening_" + action] == hits


def test_a_replaced_message_is_delivered_with_its_replaced_text(replaced):
    s = replaced.summary
    assert s["send_failures"] == 0  # a hit is delivered, not refused
    assert s["deliveries"] == s["deliveries_expected"] == s["messages_sent"]
    # stored and shown as the replaced text alike: nothing counts as altered on the way
    report = check_trace(replaced.trace)
    assert report.altered_deliveries == 0 and report.lost == 0 and report.duplicates == 0


def test_a_sender_only_hit_is_refused_and_no_copy_goes_out(sender_only):
    m = sender_only.messages.drop_duplicates("msg_id")
    hit = m["screening"] == "sender_only"
    assert (m.loc[hit, "failure_reason"] == "screened_sender_only").all()
    assert (m.loc[~hit, "failure_reason"] == "").all()
    s = sender_only.summary
    assert s["deliveries_expected"] == s["messages_sent"] - int(hit.sum())
    assert s["lost"] == 0 and s["duplicates"] == 0

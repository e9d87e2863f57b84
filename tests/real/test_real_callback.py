"""The before-send callback in ``immodel real``: each send that passes the checks waits
for the customer's business backend (a process of its own, answering over HTTP after an
exponential wait), which may refuse it; a backend slower than
``server.callback_timeout_s`` is a timeout, and the scenario's default decides."""

from __future__ import annotations

import math

import pytest

from immodel import Scenario
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

BASE = {**SMALL, "workload.users": 30, "duration_s": 6.0, "drain_s": 2.0}
REJECTING = {**BASE, "server.callback_enabled": True, "server.callback_reject_prob": 0.25}
# a backend ~8× slower than its timeout, whose timeouts mean "reject"
SLOW = {
    **BASE,
    "server.callback_enabled": True,
    "server.callback_ms": 400.0,
    "server.callback_timeout_s": 0.05,
    "server.callback_timeout_default": "reject",
}


def binomial_band(n: int, p: float, z: float = 4.0) -> tuple[float, float]:
    """Where a Binomial(n, p) count falls but with probability ~6e-5 (normal, 4 sigma)."""
    half = z * math.sqrt(n * p * (1 - p))
    return n * p - half, n * p + half


@pytest.fixture(scope="module")
def rejecting(tmp_path_factory):
    return shared_real_run(tmp_path_factory, "callback", Scenario.load("baseline", REJECTING))[0]


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    return shared_real_run(tmp_path_factory, "callback-slow", Scenario.load("baseline", SLOW))[0]


def test_the_backend_refuses_its_share_and_nothing_admitted_is_lost(rejecting):
    s = rejecting.summary
    m = rejecting.messages.drop_duplicates("msg_id")
    n = s["messages_sent"]
    assert n > 40  # 30 users × 0.5 msg/s × 6 s: 90 expected
    refused = int((m["failure_reason"] == "callback_rejected").sum())
    low, high = binomial_band(n, 0.25)
    assert low <= refused <= high
    assert set(m["failure_reason"]) <= {"", "callback_rejected"}
    assert s["send_failures"] == refused
    assert s["deliveries_expected"] == n - refused  # 1:1 only: one copy each
    assert s["lost"] == 0 and s["duplicates"] == 0


def test_an_admitted_send_waits_for_the_backend(rejecting):
    # theory: send -> stored is the uplink's 40 ms plus the callback's exponential wait
    # (mean 30 ms) plus the harness's own time (≥ 0); its sample mean cannot fall more
    # than 4 standard errors (sd of an exponential = its mean) below 40 + 30 ms
    m = rejecting.messages.drop_duplicates("msg_id")
    stored = m[m["failure_reason"] == ""]
    up_ms = ((stored["t_stored"] - stored["t_send"]) * 1000.0).to_numpy()
    n = len(up_ms)
    assert up_ms.mean() >= 40.0 + 30.0 - 4 * 30.0 / math.sqrt(n)


def test_a_backend_slower_than_the_timeout_refuses_by_default(slow):
    # P(an exponential of mean 400 ms answers within 50 ms) = 1 - exp(-1/8) ≈ 0.118: the
    # rest are timeouts, which this scenario's default turns into refusals
    m = slow.messages.drop_duplicates("msg_id")
    n = len(m)
    timeouts = int((m["failure_reason"] == "callback_timeout").sum())
    p_timeout = math.exp(-50.0 / 400.0)
    low, high = binomial_band(n, p_timeout)
    assert low <= timeouts <= high
    assert slow.summary["lost"] == 0 and slow.summary["duplicates"] == 0


def test_the_backend_is_a_process_of_the_run(rejecting):
    assert rejecting.summary["cpu_s_by_process"]["business0"] > 0

"""Independent packet loss against the analytic cost of each reliability mechanism.

Push transport, constant 50 ms delay, light load, client sync off (validation_support.BASE):
a 1:1 receipt would start a sync that can deliver a message whose push was lost before
its retransmission does, which would blur the retransmission's own penalty. Loss ``p_up``
hits every client → server packet (sends, ACKs, polls), ``p_down`` every server → client
packet (replies, pushes, poll responses). Formulas: :mod:`immodel.analysis.theory`.
"""

from __future__ import annotations

import numpy as np
import pytest
from validation_support import (
    DETECT,
    assert_mean_matches,
    assert_proportion_matches,
    assert_sample_mean_matches,
    replicate,
    scenario,
)

import immodel
from immodel.analysis import theory as th

R = 10  # replications for latency means (long tails): each sees a 10 % error (DETECT)
R_COUNTS = 6  # replications for transmission and copy counts (less spread)

LOSSY = {
    "transport.kind": "push",
    "workload.send_rate_per_user": 0.4,
    "reliability.uplink_timeout_s": 1.0,
    "reliability.ack_timeout_s": 1.0,
    "drain_s": 30.0,
}

ALL_OFF = {
    "reliability.uplink_retry": False,
    "reliability.server_dedup": False,
    "reliability.downlink_ack": False,
    "reliability.client_dedup": False,
    "reliability.sync": False,
}


def lossy(p_up: float, p_down: float, **extra) -> immodel.Scenario:
    values = dict(LOSSY)
    values.update({"network.uplink_loss": p_up, "network.downlink_loss": p_down})
    values.update(extra)
    return scenario(**values)


def per_message(result: immodel.Result):
    return result.messages.drop_duplicates("msg_id")


def delivered_pairs(result: immodel.Result):
    m = result.messages
    return m[m["stored"] & m["online_at_store"]]


# --------------------------------------------------------------------------------------
# Uplink: retry until the reply arrives
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "p_up, p_down, attempts",
    [(0.1, 0.1, 5), (0.3, 0.3, 5), (0.3, 0.1, 50), (0.05, 0.4, 50)],
)
def test_sender_transmits_one_over_q_times_per_message_capped_at_max_attempts(
    p_up, p_down, attempts
):
    # q = (1 − p_up)(1 − p_down): the send and its reply must both get through.
    sc = lossy(
        p_up,
        p_down,
        **{"reliability.uplink_max_attempts": attempts, "reliability.uplink_timeout_s": 0.5},
    )
    values = [per_message(r)["attempts"].mean() for r in replicate(sc, R_COUNTS)]
    expected = th.mean_uplink_transmissions(p_up, p_down, attempts)
    assert_mean_matches(
        values, expected, f"uplink transmissions p=({p_up},{p_down}) M={attempts}", detect=DETECT
    )


@pytest.mark.parametrize("p_up, p_down, attempts", [(0.3, 0.3, 1), (0.3, 0.3, 3), (0.5, 0.2, 2)])
def test_sender_gives_up_with_1_minus_q_to_the_m_but_loses_only_p_up_to_the_m(
    p_up, p_down, attempts
):
    sc = lossy(p_up, p_down, **{"reliability.uplink_max_attempts": attempts})
    msgs = [per_message(r) for r in replicate(sc, 3)]
    n = sum(len(m) for m in msgs)
    failed = sum(int(m["send_failed"].sum()) for m in msgs)
    never = sum(int((~m["stored"]).sum()) for m in msgs)
    failed_stored = sum(int((m["send_failed"] & m["stored"]).sum()) for m in msgs)
    label = f"p=({p_up},{p_down}) M={attempts}"
    assert_proportion_matches(
        failed, n, th.send_failure_probability(p_up, p_down, attempts), f"send failures {label}"
    )
    assert_proportion_matches(
        never, n, th.never_stored_probability(p_up, attempts), f"never stored {label}"
    )
    assert_proportion_matches(
        failed_stored,
        n,
        th.failed_but_stored_probability(p_up, p_down, attempts),
        f"failed but stored (failure 3) {label}",
    )


# --------------------------------------------------------------------------------------
# Downlink: pending-ACK queue, retransmit, client dedup
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("p_up, p_down", [(0.1, 0.1), (0.3, 0.3), (0.4, 0.05), (0.05, 0.4)])
def test_pending_ack_queue_pushes_one_over_q_times_per_recipient(p_up, p_down):
    # A push (downlink) and its ACK (uplink) must both survive; no attempt limit.
    sc = lossy(p_up, p_down, **{"reliability.ack_timeout_s": 0.5})
    values = [
        1.0 + r.summary["retransmits_downlink"] / len(delivered_pairs(r))
        for r in replicate(sc, R_COUNTS)
    ]
    expected = th.mean_push_transmissions(p_up, p_down)
    assert_mean_matches(
        values, expected, f"pushes per recipient p=({p_up},{p_down})", detect=DETECT
    )


@pytest.mark.parametrize("p_up, p_down", [(0.1, 0.2), (0.3, 0.2), (0.5, 0.0)])
def test_copies_reaching_the_client_are_one_over_one_minus_uplink_loss(p_up, p_down):
    # Client dedup off: every copy that arrives is shown, so `copies` counts arrivals.
    # Extra copies come from lost ACKs (uplink); a lost push is simply resent.
    sc = lossy(p_up, p_down, **{"reliability.client_dedup": False})
    results = replicate(sc, R_COUNTS)
    copies = [delivered_pairs(r)["copies"].mean() for r in results]
    assert_mean_matches(
        copies,
        th.mean_copies_at_client(p_up, p_down),
        f"copies at client p=({p_up},{p_down})",
        detect=DETECT,
    )
    dups = [r.summary["duplicates"] / r.summary["deliveries"] for r in results]
    assert_mean_matches(
        dups, th.duplicates_per_message(p_up), f"duplicates per message p=({p_up},{p_down})"
    )


@pytest.mark.parametrize("p_up, p_down", [(0.3, 0.2), (0.5, 0.0)])
def test_client_dedup_suppresses_every_duplicate_copy(p_up, p_down):
    result = replicate(lossy(p_up, p_down), 1)[0]
    assert result.summary["duplicates"] == 0
    assert (delivered_pairs(result)["copies"] == 1).all()
    assert result.summary["lost"] == 0


# --------------------------------------------------------------------------------------
# Latency penalties
# --------------------------------------------------------------------------------------
def lossy_latency(sc: immodel.Scenario, p_up: float, p_down: float) -> float:
    """2d + S + sender retry penalty (only the send must get through for the message to
    be stored) + pending-ACK retransmit penalty (only the push must get through for the
    first copy to arrive)."""
    d = th.one_way_delay_mean_s(sc["network.latency_ms"])
    base = th.push_mean_latency_s(d, th.message_path_service_s(sc))
    uplink = th.retry_penalty_s(
        p_up,
        sc["reliability.uplink_timeout_s"],
        sc["reliability.uplink_backoff"],
        sc["reliability.uplink_max_attempts"],
    )
    downlink = th.retry_penalty_s(p_down, sc["reliability.ack_timeout_s"])
    return base + uplink + downlink


def latencies(results) -> list[float]:
    return [r.summary["latency_mean_ms"] / 1000.0 for r in results]


@pytest.mark.parametrize(
    "p_up, p_down, attempts",
    [(0.1, 0.0, 5), (0.3, 0.0, 5), (0.3, 0.0, 50), (0.0, 0.1, 5), (0.0, 0.3, 5), (0.2, 0.2, 5)],
)
def test_loss_adds_timeout_times_p_over_one_minus_p_per_direction(p_up, p_down, attempts):
    # Constant timeouts (1 s). With M attempts the uplink term is conditioned on the
    # message being stored at all (the finite sum of theory.retry_penalty_s).
    sc = lossy(p_up, p_down, **{"reliability.uplink_max_attempts": attempts})
    expected = lossy_latency(sc, p_up, p_down)
    assert_mean_matches(
        latencies(replicate(sc, R)),
        expected,
        f"latency p=({p_up},{p_down}) M={attempts}",
        detect=DETECT,
    )


@pytest.mark.parametrize("p_up", [0.1, 0.2])
def test_doubling_backoff_adds_timeout_times_p_over_one_minus_two_p(p_up):
    # τ₀ = 0.25 s doubling, 8 attempts (255 τ₀ = 64 s fit in the drain); no downlink loss.
    sc = lossy(
        p_up,
        0.0,
        **{
            "reliability.uplink_timeout_s": 0.25,
            "reliability.uplink_backoff": 2.0,
            "reliability.uplink_max_attempts": 8,
            "drain_s": 70.0,
        },
    )
    expected = lossy_latency(sc, p_up, 0.0)
    unbounded = th.push_mean_latency_s(0.05, th.message_path_service_s(sc)) + 0.25 * p_up / (
        1 - 2 * p_up
    )
    # With 8 attempts the finite sum is within 0.5 % of the unbounded τ₀p/(1 − 2p).
    assert expected == pytest.approx(unbounded, rel=5e-3)
    assert_mean_matches(
        latencies(replicate(sc, R)), expected, f"latency doubling p_up={p_up}", detect=DETECT
    )


# --------------------------------------------------------------------------------------
# Short polling under loss
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("interval_s, p", [(1.0, 0.1), (2.0, 0.3)])
def test_short_poll_under_loss_adds_t_times_one_minus_q_over_q(interval_s, p):
    sc = lossy(
        p,
        p,
        **{
            "transport.kind": "short_poll",
            "transport.poll_interval_s": interval_s,
            "workload.send_rate_per_user": 0.2,
        },
    )
    d = 0.05
    expected = (
        th.short_poll_mean_latency_s(interval_s, d, th.message_path_service_s(sc))
        + th.short_poll_loss_penalty_s(interval_s, p, p)
        + th.retry_penalty_s(p, 1.0, 1.0, sc["reliability.uplink_max_attempts"])
    )
    assert_mean_matches(
        latencies(replicate(sc, R)),
        expected,
        f"short poll latency T={interval_s} p={p}",
        detect=DETECT,
    )


@pytest.mark.parametrize("interval_s, p_up", [(1.0, 0.1), (2.0, 0.3)])
def test_polls_reaching_the_server_are_n_times_one_minus_p_over_t(interval_s, p_up):
    # Fixed rate: exactly N·k polls leave in k periods; each arrives with 1 − p_up.
    sc = lossy(
        p_up,
        0.0,
        **{"transport.kind": "short_poll", "transport.poll_interval_s": interval_s},
    )
    periods, t0 = 20, 5.0
    arrived = sent = 0
    for r in replicate(sc, 3):
        req = r.requests
        t = req.loc[req["kind"].astype(str) == "poll", "t"].to_numpy()
        arrived += int(((t >= t0) & (t < t0 + periods * interval_s)).sum())
        sent += sc["workload.users"] * periods
    assert_proportion_matches(arrived, sent, 1.0 - p_up, f"polls arriving T={interval_s}")


# --------------------------------------------------------------------------------------
# Every mechanism off
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("p_up, p_down", [(0.1, 0.2), (0.3, 0.05), (0.5, 0.5)])
def test_without_reliability_one_to_one_delivery_is_one_minus_p_up_times_one_minus_p_down(
    p_up, p_down
):
    sc = lossy(p_up, p_down, **ALL_OFF)
    delivered = trials = 0
    for r in replicate(sc, 3):
        m = r.messages
        delivered += int(m["t_first_show"].notna().sum())
        trials += len(m)
    expected = th.unprotected_delivered_fraction(p_up, p_down)
    assert_proportion_matches(delivered, trials, expected, f"unprotected 1:1 p=({p_up},{p_down})")


@pytest.mark.parametrize("p_up, p_down", [(0.1, 0.2), (0.3, 0.05), (0.5, 0.5)])
def test_without_reliability_each_group_member_gets_one_minus_p_up_times_one_minus_p_down(
    p_up, p_down
):
    # Members of one message share its uplink fate, so the independent unit is the
    # message: average the delivered share over its members, then over messages.
    groups = {"workload.group_share": 1.0, "workload.groups": 10, "workload.group_size": 10}
    sc = lossy(p_up, p_down, **ALL_OFF, **groups)
    shares = np.concatenate(
        [
            r.messages.assign(ok=r.messages["t_first_show"].notna())
            .groupby("msg_id")["ok"]
            .mean()
            .to_numpy()
            for r in replicate(sc, 3)
        ]
    )
    expected = th.unprotected_delivered_fraction(p_up, p_down)
    assert_sample_mean_matches(shares, expected, f"unprotected group p=({p_up},{p_down})")

"""End-to-end reliability: every mechanism on loses nothing; all off loses what theory says."""

from __future__ import annotations

import math

import pytest

from immodel import Scenario, run

TRANSPORTS = ["push", "short_poll", "long_poll", "hybrid"]


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_every_mechanism_on_loses_and_duplicates_nothing_at_ten_percent_loss(kind):
    # Drain: a long poll whose request or response is lost is noticed only after
    # hold + request timeout (40 s); two such losses in a row are ~1 % likely per message,
    # so a drain of several cycles lets every retry finish.
    scenario = Scenario.load(
        "hybrid",
        {
            "transport.kind": kind,
            "workload.users": 200,
            "duration_s": 30.0,
            "drain_s": 300.0,
            "network.uplink_loss": 0.1,
            "network.downlink_loss": 0.1,
            "network.model": "datagram",  # every loss reaches the application
        },
    )
    s = run(scenario).summary
    assert s["deliveries_expected"] > 500
    assert s["lost"] == 0
    assert s["duplicates"] == 0
    assert s["retransmits_uplink"] > 0 and s["retransmits_downlink"] > 0


def test_every_mechanism_off_delivers_the_product_of_survival_probabilities():
    p_up, p_down = 0.1, 0.2
    off = {
        f"reliability.{m}": False
        for m in ("uplink_retry", "server_dedup", "downlink_ack", "client_dedup", "sync")
    }
    scenario = Scenario.load(
        "baseline",
        {
            "workload.users": 500,
            "workload.send_rate_per_user": 0.2,
            "duration_s": 40.0,
            "network.uplink_loss": p_up,
            "network.downlink_loss": p_down,
            "network.model": "datagram",  # loss per application packet
            **off,
        },
    )
    result = run(scenario)
    n = result.summary["messages_sent"]
    delivered = result.summary["deliveries"]
    expected = (1 - p_up) * (1 - p_down)
    sigma = math.sqrt(expected * (1 - expected) / n)
    assert n > 3000
    assert abs(delivered / n - expected) < 4 * sigma
    assert result.summary["lost"] > 0


def test_conservation_every_message_is_accounted_for():
    result = run(
        "lossy-mobile",
        **{"workload.users": 300, "duration_s": 30.0, "drain_s": 10.0, "workload.group_share": 0.3},
    )
    m = result.messages
    per_msg = m.drop_duplicates("msg_id")
    s = result.summary
    # Every submitted message was stored, or failed visibly, or was still in flight at the end.
    in_flight = per_msg[~per_msg["stored"] & ~per_msg["send_failed"]]
    assert len(per_msg) == s["messages_sent"]
    assert per_msg["stored"].sum() + per_msg["send_failed"].sum() + len(in_flight) >= len(per_msg)
    # Every expected pair is delivered or lost; nothing else.
    expected = m[m["stored"]]
    assert len(expected) == s["deliveries_expected"]
    assert expected["t_first_show"].notna().sum() + s["lost"] == s["deliveries_expected"]
    # Nobody is shown a message that was never stored.
    assert (m.loc[~m["stored"], "copies"] == 0).all()


def test_a_stored_message_is_never_reported_as_failed_by_a_final_rejection():
    result = run(
        "baseline",
        **{
            "workload.users": 200,
            "duration_s": 20.0,
            "server.muted_fraction": 0.2,
            "server.require_friendship": True,
            "server.friend_fraction": 0.5,
        },
    )
    m = result.messages.drop_duplicates("msg_id")
    reasons = set(m.loc[m["send_failed"], "failure_reason"])
    assert {"muted", "not_friends"} <= reasons
    assert not (m["send_failed"] & m["stored"]).any()
    # Rejections reach the sender with their reason; nothing rejected is delivered.
    assert (result.messages.loc[result.messages["send_failed"], "copies"] == 0).all()

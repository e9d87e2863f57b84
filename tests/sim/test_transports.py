"""Each transport behaves as the article describes, checked on single messages."""

from __future__ import annotations

import math

import pytest
from helpers import SERVICE_MS, follow_one, quiet

D_MS = 40.0


def test_push_needs_no_request_and_takes_two_delays_plus_service():
    world, row = follow_one(quiet(**{"transport.kind": "push"}))
    assert row["latency_ms"] == pytest.approx(2 * D_MS + SERVICE_MS, abs=1e-6)
    requests = world.rec.requests_frame()
    assert (requests["kind"] == "poll").sum() == 0


def test_short_poll_message_waits_for_the_recipients_next_poll():
    scenario = quiet(**{"transport.kind": "short_poll", "transport.poll_interval_s": 2.0})
    world, row = follow_one(scenario, at_s=5.0)
    d = D_MS / 1000.0
    stored_at = 5.0 + d + (SERVICE_MS - 0.12) / 1000.0
    fanned_out_at = stored_at + 0.12 / 1000.0
    # The recipient polls at phase·T + kT; the poll reaches the server d later.
    phase_s = world.clients[1].phase * 2.0
    k = math.ceil((fanned_out_at - d - phase_s) / 2.0)
    poll_at_server = phase_s + k * 2.0 + d
    # poll stage service: poll_ms + poll_ms_per_message for the one message returned
    expected_s = poll_at_server + (0.2 + 0.01) * 1e-3 + d - 5.0
    assert row["latency_ms"] == pytest.approx(expected_s * 1000.0, abs=1e-6)
    assert row["first_via"] == "poll"


def test_held_long_poll_answers_as_soon_as_a_message_arrives():
    _world, row = follow_one(quiet(**{"transport.kind": "long_poll"}), at_s=40.0)
    # By t = 40 s every client has made its first poll (within one 30 s cycle of its
    # phase) and holds the next one: the answer goes out at once.
    assert row["latency_ms"] == pytest.approx(2 * D_MS + SERVICE_MS, abs=1e-6)


def test_long_poll_client_repolls_when_the_hold_expires():
    world, _ = follow_one(
        quiet(**{"transport.kind": "long_poll", "transport.long_poll_hold_s": 5.0})
    )
    requests = world.rec.requests_frame()
    polls = requests[(requests["kind"] == "poll") & (requests["user"] == 2)]
    # An idle client polls every H + 2d (+ the poll stage's service).
    # The first poll has a residual hold (the client's phase): full cycles follow it.
    gaps = polls["t"].diff().dropna().iloc[1:]
    assert gaps.to_numpy() == pytest.approx(5.0 + 2 * D_MS / 1000.0 + 0.2e-3, abs=1e-9)
    assert (polls["messages"] == 0).all()


def test_poll_responses_carry_batches_not_one_message_per_request():
    scenario = quiet(**{"transport.kind": "short_poll", "transport.poll_interval_s": 10.0})
    from immodel.sim.world import World

    world = World(scenario)
    for i in range(5):
        world.inject(3.0 + 0.01 * i, 0, 1)
    world.run()
    requests = world.rec.requests_frame()
    polls = requests[(requests["kind"] == "poll") & (requests["user"] == 1)]
    assert polls["messages"].max() == 5
    messages = world.rec.messages_frame()
    assert messages["t_first_show"].notna().all()


def test_hybrid_puts_about_web_share_of_clients_on_long_polling():
    from immodel.sim.world import LONG_POLL, World

    world = World(quiet(**{"transport.kind": "hybrid", "workload.users": 4000}))
    share = sum(c.kind == LONG_POLL for c in world.clients) / 4000
    # Binomial(4000, 0.3): standard error 0.0072; 4 sigma.
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 4000)


def test_push_acks_remove_the_pending_entry():
    world, _ = follow_one(quiet())
    assert all(len(node.core.pending) == 0 for node in world.nodes)
    assert (world.rec.requests_frame()["kind"] == "ack").sum() == 1

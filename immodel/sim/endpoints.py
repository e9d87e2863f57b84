"""How a scenario configures the protocol's endpoints: a client's sender and receiver,
and a server's admission rules.

The simulator (:mod:`immodel.sim.world`) and the real-sockets load generator
(:mod:`immodel.real.loadgen`) build each client's :class:`~immodel.protocol.sender.UplinkSender`
and :class:`~immodel.protocol.receiver.Receiver` from the same scenario keys. The keys are
read here, once, so that the two cannot drift apart: a simulated and a real client of
one scenario retry, acknowledge, deduplicate and sync by the same settings.
"""

from __future__ import annotations

from typing import Any

from immodel.protocol.admission import AdmissionPolicy
from immodel.protocol.sender import RetryPolicy


def admission_policies(sc: Any) -> tuple[AdmissionPolicy, AdmissionPolicy]:
    """The server's admission rules ``(checks, full)``: the checks stage's own (mute,
    blacklist, friendship) and the whole decision's, which adds the before-send callback
    and content screening when the scenario enables them. The simulator's logic tier and
    the real logic servers decide by the same two."""
    checks = AdmissionPolicy(require_friendship=sc["server.require_friendship"])
    full = AdmissionPolicy(
        require_friendship=sc["server.require_friendship"],
        callback_enabled=sc["server.callback_enabled"],
        callback_timeout_default=sc["server.callback_timeout_default"],
        screening_enabled=sc["server.screening_enabled"],
    )
    return checks, full


def retry_policy(sc: Any) -> RetryPolicy:
    """The sender's retry policy (``reliability.uplink_*``)."""
    return RetryPolicy(
        enabled=sc["reliability.uplink_retry"],
        timeout_s=sc["reliability.uplink_timeout_s"],
        backoff=sc["reliability.uplink_backoff"],
        max_attempts=sc["reliability.uplink_max_attempts"],
    )


def receiver_options(sc: Any) -> dict[str, Any]:
    """Keyword arguments of :class:`~immodel.protocol.receiver.Receiver` besides its user:
    ACKs, client dedup, sync (when, how many per page, how long to wait for a page) and
    the wait before syncing a group seq gap, and the sync cursor (per conversation or
    one inbox cursor)."""
    return {
        "ack": sc["reliability.downlink_ack"],
        "dedup": sc["reliability.client_dedup"],
        "sync_enabled": sc["reliability.sync"],
        "sync_on_receipt": sc["reliability.sync_on_receipt"],
        "sync_on_gap": sc["reliability.sync_on_gap"],
        "sync_on_reconnect": sc["reliability.sync_on_reconnect"],
        "dedup_window_s": sc["reliability.client_dedup_window_s"],
        "sync_limit": sc["transport.batch_max"],
        "sync_timeout_s": sc["transport.request_timeout_s"],
        "gap_wait_s": sc["reliability.gap_wait_ms"] / 1000.0,
        "inbox": sc["reliability.sync_cursor"] == "inbox",
    }


def phases_and_transports(sc: Any, n: int, generator) -> tuple[list[float], list[str]]:
    """Each of ``n`` users' phase (a uniform in [0, 1): where in its poll interval or
    hold it starts) and transport (``push``, ``long_poll`` or ``short_poll``), drawn from
    ``generator`` — the run's ``phase`` stream — in this order: the phases, then, for
    ``transport.kind = "hybrid"``, one uniform per user below ``transport.web_share``
    for a web client on long polling (the rest on push). The simulator and the real load
    generator call it alike, so a hybrid run puts the same users on the web in both."""
    phases = generator.random(n).tolist()
    kind = sc["transport.kind"]
    if kind == "hybrid":
        web = (generator.random(n) < sc["transport.web_share"]).tolist()
        return phases, ["long_poll" if w else "push" for w in web]
    return phases, [kind] * n


__all__ = ["admission_policies", "phases_and_transports", "receiver_options", "retry_policy"]

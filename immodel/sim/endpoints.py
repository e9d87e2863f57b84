"""How a scenario configures a client's protocol endpoints: its sender and its receiver.

The simulator (:mod:`immodel.sim.world`) and the real-sockets load generator
(:mod:`immodel.real.loadgen`) build each client's :class:`~immodel.protocol.sender.UplinkSender`
and :class:`~immodel.protocol.receiver.Receiver` from the same scenario keys. The keys are
read here, once, so that the two cannot drift apart: a simulated and a real client of
one scenario retry, acknowledge, deduplicate and sync by the same settings.
"""

from __future__ import annotations

from typing import Any

from immodel.protocol.sender import RetryPolicy


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
    the wait before syncing a group seq gap."""
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
    }


__all__ = ["receiver_options", "retry_policy"]

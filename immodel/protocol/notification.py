"""The phone vendor's notification channel: its per-app rate limit.

A server that notifies offline devices through a vendor's push service (APNs, FCM, a
vendor channel) is held to a rate per app. The vendor's rule is a token bucket holding
one second of notifications, refilled continuously: a notification that finds a whole
token takes it, one that does not is refused. The simulator's channel
(:mod:`immodel.sim.offline_push`) and the real harness's vendor process
(:mod:`immodel.real.vendor_push`) both decide by :class:`TokenBucket`; pure (``now`` is
passed in).
"""

from __future__ import annotations


class TokenBucket:
    """A bucket of at most ``rate_per_s`` tokens (one second's worth), refilled at
    ``rate_per_s`` per second and full at ``now`` when made.

    Lifecycle: one per app; :meth:`take` is called once per notification, in arrival
    order (``now`` never decreases).
    """

    __slots__ = ("rate_per_s", "tokens", "tokens_at")

    def __init__(self, rate_per_s: float, now: float = 0.0) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self.rate_per_s = rate_per_s
        self.tokens = rate_per_s
        self.tokens_at = now

    def take(self, now: float) -> bool:
        """Whether a notification at ``now`` is let through (it takes a token)."""
        rate = self.rate_per_s
        self.tokens = min(rate, self.tokens + (now - self.tokens_at) * rate)
        self.tokens_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


__all__ = ["TokenBucket"]

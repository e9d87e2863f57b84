"""Offline push end to end: the vendor's notification channel, and users who answer it.

A message for a device that is not connected is kept in the durable offline queue, and
the server asks the phone vendor's push service (APNs, FCM, a vendor channel) to show a
notification. In a real deployment that is how an offline user comes back: the
notification is seen, the app is opened, it logs in and catches up. This module models
that path:

* **the channel** — a notification is handed to the vendor (``offline_push_sent``), which
  limits each app to ``server.offline_push_rate_per_s`` (a token bucket holding one
  second of notifications; over it a notification is refused), loses
  ``server.offline_push_loss`` of the rest, and delivers the others after a latency of
  mean ``server.offline_push_ms`` (``server.offline_push_dist``: constant or
  exponential). Refused and lost notifications are ``offline_push_dropped``.
* **collapsing** — with ``server.offline_push_collapse`` a device is notified at most once
  while its last notification is unread; later messages are collapsed into it
  (``offline_push_collapsed``) until the device logs in.
* **the user** — a notification that reaches its device makes the user open the app with
  probability ``workload.push_open_prob`` after an exponential delay of mean
  ``workload.push_open_delay_s``; the device then comes online
  (:meth:`immodel.sim.presence.Presence.open_app`), logs in and catches up
  (``server.login_catchup`` says whether the backlog crosses the network once or twice).

The default keys (constant latency, no limit, no collapsing, nobody opens the app) are
today's behaviour: the notification is a timestamp (``t_offline_push``) and nothing
follows from it; the world then keeps the logic tier's own short path and builds no
:class:`OfflinePush` at all (:func:`enabled`).

Lifecycle of one notification: notify ─► [collapsed] ─► [refused by the rate limit] ─►
[lost] ─► arrives at the device (``t_offline_push``) ─► [the user opens the app after a
delay] ─► the device comes online ─► login ─► catch-up.
"""

from __future__ import annotations

from typing import Any

from immodel.protocol.notification import TokenBucket
from immodel.sim.kernel import later


def enabled(sc) -> bool:
    """Whether a scenario asks for more than today's timestamp-only notification."""
    return (
        sc["server.offline_push_dist"] != "constant"
        or sc["server.offline_push_rate_per_s"] > 0
        or sc["server.offline_push_collapse"]
        or sc["workload.push_open_prob"] > 0
    )


class OfflinePush:
    """The vendor channel and the users' response to it, for one run (see module doc)."""

    def __init__(self, world: Any) -> None:
        sc = world.sc
        self.w = world
        self.env = world.env
        self.mean_s = sc["server.offline_push_ms"] / 1000.0
        self.exponential = sc["server.offline_push_dist"] == "exponential"
        self.loss = sc["server.offline_push_loss"]
        self.rate_per_s = sc["server.offline_push_rate_per_s"]
        # the vendor's per-app rate limit (a bucket of one second of notifications)
        self.bucket = TokenBucket(self.rate_per_s, 0.0) if self.rate_per_s > 0 else None
        self.collapse = sc["server.offline_push_collapse"]
        self.open_prob = sc["workload.push_open_prob"]
        self.open_delay_s = sc["workload.push_open_delay_s"]
        self.unread: set[int] = set()  # devices with an unread notification (collapsing)
        self.opening: set[int] = set()  # devices whose user is about to open the app

    def notify(self, eid: int, item) -> None:
        """Device ``eid`` is not connected and ``item`` waits for it: notify it."""
        counters = self.w.counters
        if self.collapse and eid in self.unread:
            counters["offline_push_collapsed"] += 1
            return
        counters["offline_pushes"] += 1
        if self.bucket is not None and not self.bucket.take(self.env.now):
            counters["offline_push_refused"] += 1
            return
        if self.collapse:
            self.unread.add(eid)
        streams = self.w.streams
        if streams["offline_push"].uniform() < self.loss:
            counters["offline_pushes_lost"] += 1
            return
        delay = self.mean_s
        if self.exponential:
            delay = streams["offline_push_latency"].exponential(self.mean_s)
        self.w.rec.offline_push(item.msg_id, eid, self.env.now + delay)
        if self.open_prob > 0:
            later(self.env, delay, self._arrives, eid)

    def _arrives(self, eid: int) -> None:
        """The notification is on the device: the user may open the app."""
        client = self.w.clients[eid]
        if client.online or eid in self.opening:
            return
        stream = self.w.streams["push_open"]
        if stream.uniform() < self.open_prob:
            self.opening.add(eid)
            later(self.env, stream.exponential(self.open_delay_s), self._open, eid)

    def _open(self, eid: int) -> None:
        self.opening.discard(eid)
        client = self.w.clients[eid]
        if not client.online:
            self.w.counters["push_opens"] += 1
            self.w.presence.open_app(client)

    def logged_in(self, eid: int) -> None:
        """Device ``eid`` logged in: its notification is read (collapsing starts again)."""
        self.unread.discard(eid)


def push_metrics(counters: dict[str, int]) -> dict[str, int]:
    """``offline_push_sent`` (handed to the vendor) and ``offline_push_dropped`` (refused
    by its rate limit or lost on its channel) from a run's counters."""
    return {
        "offline_push_sent": counters["offline_pushes"],
        "offline_push_dropped": counters["offline_pushes_lost"]
        + counters.get("offline_push_refused", 0),
    }


__all__ = ["OfflinePush", "enabled", "push_metrics"]

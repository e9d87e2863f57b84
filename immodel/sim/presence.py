"""Presence: which users have the app open, and churn between online and offline.

``workload.online_fraction`` of the users are online at t = 0 (connected at once). With
churn (``workload.mean_online_s`` and ``workload.mean_offline_s`` both > 0) each user
alternates exponential online and offline periods: going offline closes the connection
cleanly (the server moves what was not acknowledged to the offline queue), coming back
online connects, logs in, and syncs what was missed. The online users are kept in an
array-backed set so the workload can pick a random online sender in O(1).
"""

from __future__ import annotations

from typing import Any

from immodel.sim.kernel import later


def _swap_set(items: list[int], pos: dict[int, int], x: int, present: bool) -> None:
    """Add ``x`` at the end of ``items`` or remove it by moving the last item into its
    place (``pos``: each item's index) — O(1) either way."""
    if present and x not in pos:
        pos[x] = len(items)
        items.append(x)
    elif not present and x in pos:
        i = pos.pop(x)
        last = items.pop()
        if last != x:
            items[i] = last
            pos[last] = i


class OnlineSet:
    """Who is online: the devices (``device_list``/``device_pos``) and the users with at
    least one device online (``users``/``pos``), each an array-backed set whose order is
    its history of adds and swap-removes — so "the k-th online user", what the workload's
    sender draw picks, depends only on the order of presence changes. With one device
    per user both are the same list. The simulator's :class:`Presence` and the real
    harness's plan (:func:`immodel.real.loadgen.make_plan`) keep it alike.
    """

    __slots__ = ("_count", "device_list", "device_pos", "owner", "pos", "users")

    def __init__(self) -> None:
        self.device_list: list[int] = []
        self.device_pos: dict[int, int] = {}
        self.users, self.pos = self.device_list, self.device_pos
        self.owner: list[int] | None = None  # device → user, with several devices
        self._count: dict[int, int] = {}

    def use_devices(self, owner: list[int]) -> None:
        """Several devices per user (``owner[eid]`` is a device's user): keep the online
        users apart from the online devices."""
        self.owner = owner
        self.users, self.pos = [], {}

    def set(self, eid: int, online: bool) -> None:
        """Device ``eid`` is now online (or not)."""
        if self.owner is not None and online != (eid in self.device_pos):
            uid = self.owner[eid]
            n = self._count[uid] = self._count.get(uid, 0) + (1 if online else -1)
            if (n == 1 and online) or n == 0:
                _swap_set(self.users, self.pos, uid, online)
        _swap_set(self.device_list, self.device_pos, eid, online)


class Presence:
    """The online set and the churn process of one run."""

    def __init__(self, world: Any) -> None:
        sc = world.sc
        self.w = world
        self.env = world.env
        self.online = OnlineSet()
        self.online_list: list[int] = self.online.device_list
        self.online_pos: dict[int, int] = self.online.device_pos
        self.mean_online_s = sc["workload.mean_online_s"]
        self.mean_offline_s = sc["workload.mean_offline_s"]
        self.churn = self.mean_online_s > 0
        # Users with at least one device online (what the workload picks senders from):
        # with one device per user, the very same set as the devices'.
        self.devices = None
        self.user_list: list[int] = self.online.users
        self.user_pos: dict[int, int] = self.online.pos
        # With offline push opening apps (immodel.sim.offline_push) a device can come
        # online between its churn flips: each flip then carries a serial, and only the
        # device's latest scheduled flip happens.
        self._serial: dict[int, int] | None = (
            {} if world.sc["workload.push_open_prob"] > 0 else None
        )

    def use_devices(self, devices) -> None:
        """Several devices per user (:mod:`immodel.sim.devices`): keep the online users
        apart from the online devices."""
        self.devices = devices
        self.online.use_devices(devices.user)
        self.user_list = self.online.users
        self.user_pos = self.online.pos

    def set_online(self, client, online: bool) -> None:
        client.online = online
        self.online.set(client.uid, online)

    def start(self) -> None:
        """Schedule every user's first presence flip (churn only)."""
        if not self.churn:
            return
        stream = self.w.streams["presence"]
        for client in self.w.clients:
            mean = self.mean_online_s if client.online else self.mean_offline_s
            self._schedule(client, stream.exponential(mean))

    def _schedule(self, client, delay_s: float) -> None:
        """The device's next presence flip, ``delay_s`` from now."""
        if self._serial is None:
            later(self.env, delay_s, self._flip, client)
            return
        serial = self._serial[client.uid] = self._serial.get(client.uid, 0) + 1
        later(self.env, delay_s, self._flip_latest, (client, serial))

    def _flip_latest(self, arg) -> None:
        client, serial = arg
        if self._serial[client.uid] == serial:
            self._flip(client)

    def open_app(self, client) -> None:
        """The user opened the app on an offline device (a notification): it comes online
        now, connects and catches up; with churn its online period starts now."""
        if client.online:
            return
        self.set_online(client, True)
        client.backoff_s = 0.0
        self.w.side.connect(client)
        if self.churn:
            self._schedule(client, self.w.streams["presence"].exponential(self.mean_online_s))

    def _flip(self, client) -> None:
        stream = self.w.streams["presence"]
        if client.online:
            self.set_online(client, False)
            self.w.access.close(client.uid, clean=True)
            self.w.side.detach(client)
            client.connecting = False
            self._schedule(client, stream.exponential(self.mean_offline_s))
        else:
            self.set_online(client, True)
            client.backoff_s = 0.0
            self.w.side.connect(client)
            self._schedule(client, stream.exponential(self.mean_online_s))


__all__ = ["OnlineSet", "Presence"]

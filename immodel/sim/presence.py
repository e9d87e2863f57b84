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


class Presence:
    """The online set and the churn process of one run."""

    def __init__(self, world: Any) -> None:
        sc = world.sc
        self.w = world
        self.env = world.env
        self.online_list: list[int] = []
        self.online_pos: dict[int, int] = {}
        self.mean_online_s = sc["workload.mean_online_s"]
        self.mean_offline_s = sc["workload.mean_offline_s"]
        self.churn = self.mean_online_s > 0
        # Users with at least one device online (what the workload picks senders from):
        # with one device per user, the very same set as the devices'.
        self.devices = None
        self.user_list: list[int] = self.online_list
        self.user_pos: dict[int, int] = self.online_pos
        self._devices_online: dict[int, int] = {}
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
        self.user_list = []
        self.user_pos = {}

    def _count_user(self, uid: int, delta: int) -> None:
        n = self._devices_online.get(uid, 0) + delta
        self._devices_online[uid] = n
        if n == 1 and delta > 0:
            self.user_pos[uid] = len(self.user_list)
            self.user_list.append(uid)
        elif n == 0:
            i = self.user_pos.pop(uid)
            last = self.user_list.pop()
            if last != uid:
                self.user_list[i] = last
                self.user_pos[last] = i

    def set_online(self, client, online: bool) -> None:
        uid = client.uid
        if self.devices is not None and (online != (uid in self.online_pos)):
            self._count_user(self.devices.user[uid], 1 if online else -1)
        client.online = online
        if online and uid not in self.online_pos:
            self.online_pos[uid] = len(self.online_list)
            self.online_list.append(uid)
        elif not online and uid in self.online_pos:
            i = self.online_pos.pop(uid)
            last = self.online_list.pop()
            if last != uid:
                self.online_list[i] = last
                self.online_pos[last] = i

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


__all__ = ["Presence"]

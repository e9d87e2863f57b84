"""Several devices per user: which devices exist, and how a user becomes its devices.

A real user has a phone and often a web or desktop client at the same time, each with its
own connection, login, cursors, dedup and pending-ACK entries. The model gives every
device an **endpoint id** (``eid``), and everything below the workload — clients,
sessions on the access tier, pending-ACK tables, offline queues, the store's memberships
(what a sync looks through), the receivers — is keyed by it, so a device is simply a
client of its own. The workload still thinks in users: a message goes to every device of
every recipient and to the sender's other devices (:meth:`DeviceTable.expand`).

Endpoint ids: a user's first device kind (``workload.devices``' first entry, everyone
has it) keeps the user's id, so a one-device run numbers its clients exactly as before;
the other devices follow, ``n_users, n_users + 1, …``, kind by kind, user by user. Who
owns which extra device is drawn once at set-up from the ``devices`` stream.

Lifecycle: built by the world before the clients (:func:`build_devices`), then read-only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The device kind of the default deployment (one device per user).
DEFAULT_DEVICE = "phone"


class DeviceTable:
    """Who owns which device: ``user[eid]``, ``kind[eid]`` (the device kind's name),
    ``transport[eid]``, ``of[uid]`` (a user's endpoint ids, first device first) and
    ``label[eid]`` (what the trace's ``user`` column shows: the user id for the first
    device, ``"{uid}/{kind}"`` for the others)."""

    __slots__ = ("kind", "kinds", "label", "of", "transport", "user")

    def __init__(
        self,
        n_users: int,
        table: dict[str, dict[str, Any]],
        default_transport: str,
        rng: np.random.Generator,
    ) -> None:
        self.kinds = list(table)
        first = self.kinds[0]
        t0 = table[first]["transport"] or default_transport
        self.user: list[int] = list(range(n_users))
        self.kind: list[str] = [first] * n_users
        self.transport: list[str] = [t0] * n_users
        self.label: list[str] = [str(u) for u in range(n_users)]
        self.of: list[list[int]] = [[u] for u in range(n_users)]
        for name in self.kinds[1:]:
            entry = table[name]
            transport = entry["transport"] or default_transport
            has = rng.random(n_users) < entry["share"]
            for u in np.flatnonzero(has).tolist():
                eid = len(self.user)
                self.user.append(u)
                self.kind.append(name)
                self.transport.append(transport)
                self.label.append(f"{u}/{name}")
                self.of[u].append(eid)

    def __len__(self) -> int:
        return len(self.user)

    def expand(self, users, sender_eid: int | None = None) -> tuple[int, ...]:
        """The recipient devices of a message to ``users``: every device of each, then the
        sender's other devices (``sender_eid`` is the sending device)."""
        of = self.of
        out = [e for u in users for e in of[u]]
        if sender_eid is not None:
            out.extend(e for e in of[self.user[sender_eid]] if e != sender_eid)
        return tuple(out)


def build_devices(sc, n_users: int, streams) -> DeviceTable | None:
    """The device table of a scenario, or None for the default (one device per user, the
    user's id is its endpoint id; nothing extra is drawn)."""
    table = sc["workload.devices"]
    if not table:
        return None
    return DeviceTable(n_users, table, sc["transport.kind"], streams["devices"].generator)


__all__ = ["DEFAULT_DEVICE", "DeviceTable", "build_devices"]

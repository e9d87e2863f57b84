"""Reachability: did a recipient device come back after a message was stored?

A pair that is ``lost`` (not shown by the end of the run) is one of two things:

* *lost awaiting login*: the recipient device is not connected at the end of the run and
  has not connected (completed a login) since the message was stored. The message is in
  the store — the device's offline queue, the conversation's timeline — waiting for the
  device's next login, whose reconnect sync (or queue push) brings it. Nothing the
  service did went wrong: an app that stays closed cannot be reached.
* *lost while reachable*: every other lost pair — the device logged in after the store
  or was connected at the end of the run, and the message still did not reach its app.
  This is what the reliability mechanisms are for, and what ``immodel check`` fails on.

A device that was connected when the message was stored and went offline later without
coming back counts as awaiting login: its copy was in flight, or waiting for an ACK, when
the app closed (the server moves unacknowledged messages to the offline queue), and the
next login brings it. (With ``reliability.sync`` and ``reliability.downlink_ack`` both
off, a copy lost on its way to such a device is gone for good; the split does not see
that: it is still counted as awaiting login.)

The device's side is what counts: a device connects when its login reply reaches it (or
at t = 0 for a device online at the start; :meth:`immodel.sim.clients.ClientSide._connected`)
and is connected at the end when it still holds a connection. :class:`Reachability` keeps
each device's last connect time; :func:`messages_column` and :func:`trace_column` turn it
into the ``reachable_after_store`` column of ``messages`` and ``trace``, and the delivery
checker (:mod:`immodel.analysis.checker`) splits ``lost`` with the trace's column.

Lifecycle: built by the world, told of every connect during the run, read once when the
record frames are built. Times are simulated seconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from immodel.analysis.metrics import equals_str

#: The column name in ``messages`` and ``trace``.
COLUMN = "reachable_after_store"


class Reachability:
    """Each device's last connect time so far (endpoint id → seconds)."""

    __slots__ = ("last_connect_s",)

    def __init__(self) -> None:
        self.last_connect_s: dict[int, float] = {}

    def connected(self, eid: int, t_s: float) -> None:
        """Device ``eid`` connected (its login completed) at ``t_s``."""
        self.last_connect_s[eid] = t_s

    def reachable_until_s(self, clients) -> np.ndarray:
        """Per endpoint id, the latest store time for which the device counts as
        reachable: its last connect time, ``-inf`` for a device that never connected, and
        ``+inf`` for one still connected at the end of the run (reachable for every
        message)."""
        last = self.last_connect_s
        out = np.full(len(clients), -math.inf)
        for c in clients:
            if c.conn is not None:
                out[c.uid] = math.inf
            else:
                out[c.uid] = last.get(c.uid, -math.inf)
        return out


def _eid_of_user_kind(devices, users: np.ndarray, kinds: pd.Series) -> np.ndarray:
    """Endpoint ids of (user id, device kind) rows: a user has at most one device per kind."""
    index = {k: i for i, k in enumerate(devices.kinds)}
    table = np.full((len(devices.of), len(devices.kinds)), -1, dtype=np.int64)
    owner = np.asarray(devices.user, dtype=np.int64)
    kind_code = np.asarray([index[k] for k in devices.kind], dtype=np.int64)
    table[owner, kind_code] = np.arange(len(devices.user), dtype=np.int64)
    codes, uniques = pd.factorize(kinds.astype(str))
    kcode = np.asarray([index[k] for k in uniques], dtype=np.int64)[codes]
    return table[users, kcode]


def messages_column(world: Any, messages: pd.DataFrame) -> np.ndarray:
    """``reachable_after_store`` of each ``messages`` row: the message was stored and the
    row's recipient device connected at or after its first store, or was connected at
    the end of the run (False for a message never stored: nothing is owed)."""
    until = world.reach.reachable_until_s(world.clients)
    users = messages["recipient"].to_numpy(dtype=np.int64)
    if world.devices is None:
        eids = users
    else:
        eids = _eid_of_user_kind(world.devices, users, messages["device"])
    t_stored = messages["t_stored"].to_numpy(dtype=float)
    stored = messages["stored"].to_numpy(dtype=bool)
    # NaN t_stored (never stored) compares False
    return stored & (t_stored <= until[eids])


def trace_column(world: Any, trace: pd.DataFrame) -> pd.Series:
    """``reachable_after_store`` of each ``trace`` row: on a ``stored`` row, whether the
    row's recipient device connected at or after that row's time or was connected at the
    end of the run; missing (``<NA>``) on ``send`` and ``deliver`` rows.

    Only the stored rows' user labels are looked up, once per distinct label (not through
    a dict of every user's label: ~100 bytes per user), and the nullable column is made
    from its values and mask in one step."""
    until = world.reach.reachable_until_s(world.clients)
    stored = equals_str(trace["event"], "stored")
    rows = np.flatnonzero(stored)
    codes, labels = pd.factorize(trace["user"].iloc[rows])
    if world.devices is None:
        n_users = len(world.clients)
        eid_of_code = np.asarray([_user_eid(v, n_users) for v in labels], dtype=np.int64)
    else:
        label_eid = {label: eid for eid, label in enumerate(world.devices.label)}
        eid_of_code = np.asarray([label_eid.get(str(v), -1) for v in labels], dtype=np.int64)
    eids = eid_of_code[codes] if len(codes) else np.empty(0, dtype=np.int64)
    t = trace["t"].to_numpy(dtype=float)
    reachable = np.zeros(len(trace), dtype=bool)
    reachable[rows] = t[rows] <= until[eids]
    return pd.Series(pd.arrays.BooleanArray(reachable, ~stored), index=trace.index)


def _user_eid(label: Any, n_users: int) -> int:
    """The endpoint id whose label (``str(uid)``, one device per user) is ``str(label)``;
    -1 for none (the admin account -1 has no device)."""
    text = str(label)
    try:
        uid = int(text)
    except ValueError:
        return -1
    return uid if 0 <= uid < n_users and str(uid) == text else -1


__all__ = ["COLUMN", "Reachability", "messages_column", "trace_column"]

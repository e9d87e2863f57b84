"""The workload's choice of one message: who sends it, where, to whom, from which device.

The simulator's world (:meth:`immodel.sim.world.World._submit_one`) and the real
harness's plan (:func:`immodel.real.loadgen.make_plan`) draw every message with these
two functions, from the run's ``workload`` stream, on the online set of
:class:`immodel.sim.presence.OnlineSet`: the same draws in the same order on the same
online set give the same messages.
"""

from __future__ import annotations

from typing import Any

from immodel.sim.presence import OnlineSet


def draw_message(
    stream,
    group_share: float,
    groups: list[list[int]],
    online: OnlineSet,
    contacts: list[list[int]] | None,
    n_users: int,
) -> tuple[int, int, tuple[int, ...]]:
    """``(sender, group, recipients)`` of one message: with ``group_share`` a group
    message (``group`` its index; the sender a member online, up to 4 × size tries) to
    the group's other members, else a 1:1 message (``group`` -1) from a user online to a
    contact (or anyone). Users, not devices."""
    if group_share > 0 and stream.uniform() < group_share:
        g = stream.below(len(groups))
        members = groups[g]
        for _ in range(4 * len(members)):
            m = members[stream.below(len(members))]
            if m in online.pos:
                return m, g, tuple(x for x in members if x != m)
    users = online.users
    sender = users[stream.below(len(users))]
    if contacts is not None:
        cl = contacts[sender]
        other = cl[stream.below(len(cl))]
    else:
        other = stream.below(n_users - 1)
        other += other >= sender
    return sender, -1, (other,)


def draw_device(stream, devices: Any, online: OnlineSet, user: int) -> int:
    """The device ``user`` sends from: one of its devices online (a draw only when it has
    more than one)."""
    on = [e for e in devices.of[user] if e in online.device_pos]
    return on[0] if len(on) == 1 else on[stream.below(len(on))]


__all__ = ["draw_device", "draw_message"]

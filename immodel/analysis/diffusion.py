"""Read vs write diffusion: what each design costs the server, and where they cross.

The two designs differ in three places (``immodel/sim/logic.py``), everything else —
the send path's other stages, the fan-out to connected members, the poll's base cost
and its cost per message returned — is the same for both:

* **write** — the store stage writes one inbox copy per recipient: ``w``
  (``server.inbox_write_ms``) × (n − 1) for a group of n members (sender included);
  polls and syncs read the member's own inbox at their base cost.
* **read** — the store stage writes the group timeline once; every poll and every sync
  page reads the timeline of each group the user is in: ``r``
  (``server.timeline_read_ms``) × g for a user in g groups.

So, per second of operation, with group messages stored at rate ``λ`` (per s), reads
(polls + sync pages) at rate ``R`` (per s) by users in ``ḡ`` groups on average (every
user reads at the same rate, so the read-weighted mean is the plain mean number of
groups per user), the write design costs the server

    ΔD = D_write − D_read = λ (n − 1) w − R ḡ r      (ms of service per s)

more than the read design: write wins when ΔD < 0. For users who each send group
messages at rate ``s`` and poll every ``T`` seconds (``λ = U s``, ``R = U / T`` for U
online users) the crossing group size is

    n* = 1 + ḡ r / (s w T):

groups smaller than n* are cheaper with write diffusion, larger ones with read
diffusion; n* grows with the groups a user is in and with r / w, and falls as users send
more or poll less often. Units: rates per second, costs in ms, results in ms of service
per second of operation.
"""

from __future__ import annotations

import math
from itertools import pairwise


def diffusion_cost_difference_ms_per_s(
    *,
    group_msg_rate_per_s: float,
    group_size: int,
    reads_per_s: float,
    groups_per_user: float,
    inbox_write_ms: float,
    timeline_read_ms: float,
) -> float:
    """``D_write − D_read``: server service time (ms per second of operation) the write
    design spends beyond the read design (negative: write is cheaper)."""
    write_ms_per_s = group_msg_rate_per_s * (group_size - 1) * inbox_write_ms
    read_ms_per_s = reads_per_s * groups_per_user * timeline_read_ms
    return write_ms_per_s - read_ms_per_s


def crossing_group_size(
    *,
    send_rate_per_user: float,
    poll_interval_s: float,
    groups_per_user: float,
    inbox_write_ms: float,
    timeline_read_ms: float,
) -> float:
    """The group size n* at which both designs cost the same, for short-polling users who
    send only to groups: ``1 + ḡ r / (s w T)``. Below it write diffusion is cheaper,
    above it read diffusion (``inf`` when an inbox copy costs nothing)."""
    if inbox_write_ms <= 0 or send_rate_per_user <= 0:
        return math.inf
    return 1.0 + groups_per_user * timeline_read_ms / (
        send_rate_per_user * inbox_write_ms * poll_interval_s
    )


def mean_groups_per_user(groups: int, group_size: int, users: int) -> float:
    """Memberships per user when ``groups`` groups of ``group_size`` members are drawn
    from ``users`` users: ``groups × group_size / users``."""
    return groups * group_size / users


#: The stages whose cost the diffusion changes: store (inbox copies), poll and sync
#: (timeline reads).
DIFFUSION_STAGES = ("store", "poll", "sync")


def diffusion_busy_ms_per_s(summary: dict, workers: int) -> float:
    """Service time (ms per second of the sending period) of the stages the diffusion
    changes, from a run's summary (``utilization_<stage>`` of a one-node run) and
    ``server.workers``."""
    return 1000.0 * workers * sum(summary[f"utilization_{name}"] for name in DIFFUSION_STAGES)


def crossing_from_points(sizes, deltas) -> float:
    """The group size where a measured ``D_write − D_read`` changes sign, by linear
    interpolation between the two neighbouring sizes (ΔD is linear in the group size at
    a fixed number of groups per user); ``nan`` when it does not change sign."""
    pairs = sorted(zip(sizes, deltas, strict=True))
    for (n0, d0), (n1, d1) in pairwise(pairs):
        if d0 == 0:
            return float(n0)
        if (d0 < 0) != (d1 < 0):
            return n0 + (n1 - n0) * (-d0) / (d1 - d0)
    return math.nan


__all__ = [
    "DIFFUSION_STAGES",
    "crossing_from_points",
    "crossing_group_size",
    "diffusion_busy_ms_per_s",
    "diffusion_cost_difference_ms_per_s",
    "mean_groups_per_user",
]

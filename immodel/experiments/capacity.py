"""Capacity: how many users an access node and a logic node carry before p99 crosses an SLO.

Two views of one question, meant to be read together:

* **Extrapolated from measured demand** (:func:`saturation_users`). At light load every
  stage's busy fraction grows linearly with the number of users (each user brings the
  same requests), so one run at N users gives each stage's demand per user, and the
  users at which a stage would be busy all the time: ``N / utilization``. The smallest
  over the stages of a tier is that tier's saturation point and names its bottleneck.
* **Simulated** (``experiments/capacity.toml`` and :func:`capacity_table`). Users grow
  until the p99 latency crosses the SLO; queueing makes that happen somewhat before the
  bottleneck saturates (an M/G/c queue's wait grows like 1/(1 − ρ)).

The experiment runs one access node and one logic node with one worker (core) per stage
(``server.access_workers = server.workers = 1``), so capacities read as **users per
core**; a real node with c cores per stage carries about c times as many, slightly more
at the same SLO (pooling). The server costs are the scenario defaults (README,
"The deployment the model follows"): calibrate them before reading the figures as your
deployment's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from immodel.sim.logic import STAGE_NAMES

#: What the capacity experiment fixes on top of the baseline scenario.
CAPACITY_SET: dict[str, Any] = {
    "server.nodes": 1,
    "server.access_nodes": 1,
    "server.workers": 1,
    "server.access_workers": 1,
    "workload.send_rate_per_user": 0.01,
}


def saturation_users(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Users at which each stage would be busy all the time, extrapolated linearly from
    one run's ``users`` and per-stage utilisation; plus each tier's bottleneck.

    Returns ``{"access": users, "logic": users, "logic_bottleneck": stage,
    "per_stage": {stage: users}}``; a stage with no load is left out.
    """
    users = summary["users"]
    per_stage: dict[str, float] = {}
    for stage in STAGE_NAMES:
        u = summary.get(f"utilization_{stage}")
        if u:
            per_stage[stage] = users / u
    access_u = summary.get("utilization_access")
    access = users / access_u if access_u else float("inf")
    bottleneck = min(per_stage, key=per_stage.get) if per_stage else None
    return {
        "access": access,
        "logic": per_stage[bottleneck] if bottleneck else float("inf"),
        "logic_bottleneck": bottleneck,
        "per_stage": per_stage,
    }


def capacity_table(
    results: pd.DataFrame,
    slo_ms: float,
    by: Sequence[str] = ("transport.kind",),
    users_key: str = "workload.users",
) -> pd.DataFrame:
    """Per group of ``by``: the most users whose mean p99 (over replications) stays within
    ``slo_ms`` with nothing lost, the fewest that cross it, and the tier utilisations at
    the last point within the SLO."""
    rows = []
    metrics = ["latency_p99_ms", "lost", "utilization_access", "utilization_logic"]
    means = results.groupby([*by, users_key], as_index=False)[metrics].mean()
    for key, group in means.groupby(list(by)):
        group = group.sort_values(users_key)
        ok = (group["latency_p99_ms"] <= slo_ms) & (group["lost"] == 0)
        # the capacity is the last point before the first one that fails
        first_bad = group[~ok][users_key].min() if (~ok).any() else None
        within = group[ok] if first_bad is None else group[ok & (group[users_key] < first_bad)]
        last = within.iloc[-1] if len(within) else None
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "users_within_slo": int(last[users_key]) if last is not None else 0,
                "users_over_slo": int(first_bad) if first_bad is not None else None,
                "p99_ms_at_capacity": last["latency_p99_ms"] if last is not None else None,
                "utilization_access": last["utilization_access"] if last is not None else None,
                "utilization_logic": last["utilization_logic"] if last is not None else None,
            }
        )
    return pd.DataFrame(rows)


__all__ = ["CAPACITY_SET", "capacity_table", "saturation_users"]

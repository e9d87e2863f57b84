"""Summary metrics of live-broadcast rooms (``live_*`` in ``docs/metrics.md``).

Live traffic is kept apart from reliable delivery: it never counts in ``lost``,
``deliveries`` or ``latency_*``. Its records are the ``live_messages`` frame (one row per
speaker message: offered, accepted or dropped by the cap) and the ``live_trace`` frame
(``send`` and ``deliver`` rows; a deliver row stands for ``viewers`` viewers shown the
message at once, a cohort). What a viewer missed (left before it was shown, or it left
the room's recent buffer first, or the run ended) cannot be read from those rows, so the
simulator counts it and passes it in.

Percentiles are over viewer-deliveries (each deliver row weighs its ``viewers``): the
smallest latency ``L`` such that at least the fraction ``q`` of viewer-deliveries took at
most ``L`` (the inverted empirical CDF; for one viewer per row it is numpy's
``inverted_cdf`` quantile).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from immodel.protocol.live import PRIORITIES

#: The live summary keys, in the order the summary lists them.
LIVE_KEYS = (
    "live_rooms",
    "live_messages_offered",
    "live_messages_accepted",
    "live_messages_dropped",
    "live_offered_by_priority",
    "live_dropped_by_priority",
    "live_deliveries",
    "live_missed",
    "live_latency_p50_ms",
    "live_latency_p99_ms",
    "live_viewers_joined",
    "live_viewers_left",
)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    """The inverted-CDF ``q`` quantile of ``values`` where each counts ``weights`` times
    (None for an empty sample)."""
    if values.size == 0 or weights.sum() <= 0:
        return None
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order][min(idx, values.size - 1)])


def live_latencies_ms(messages: pd.DataFrame, trace: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(latency ms, viewers) of every deliver row: shown − the speaker's send time."""
    deliver = trace[trace["event"] == "deliver"]
    if deliver.empty:
        return np.empty(0), np.empty(0, dtype=np.int64)
    # by the categories of the deliver rows' ids: one lookup per message, not per row
    ids = pd.Categorical(deliver["msg_id"])
    t_send = messages.set_index("msg_id")["t_send"]
    sent = t_send.reindex(ids.categories).to_numpy(dtype=np.float64)[ids.codes]
    lat = (deliver["t"].to_numpy(dtype=np.float64) - sent) * 1000.0
    return lat, deliver["viewers"].to_numpy(dtype=np.int64)


def live_summary(
    messages: pd.DataFrame,
    trace: pd.DataFrame,
    *,
    rooms: int = 0,
    missed: int = 0,
    joined: int = 0,
    left: int = 0,
) -> dict[str, Any]:
    """The ``live_*`` summary keys from the live frames and the simulator's counts.

    A run without live rooms gives zeros, empty mappings of zeros and ``None`` latencies.
    """
    out: dict[str, Any] = {"live_rooms": int(rooms)}
    n = len(messages)
    decided = messages["t_decided"].notna() if n else pd.Series([], dtype=bool)
    accepted = messages["accepted"] if n else pd.Series([], dtype=bool)
    dropped = decided & ~accepted
    out["live_messages_offered"] = int(n)
    out["live_messages_accepted"] = int(accepted.sum())
    out["live_messages_dropped"] = int(dropped.sum())
    prio = messages["priority"].astype(str) if n else pd.Series([], dtype=str)
    out["live_offered_by_priority"] = {p: int((prio == p).sum()) for p in PRIORITIES}
    out["live_dropped_by_priority"] = {p: int((dropped & (prio == p)).sum()) for p in PRIORITIES}
    lat, viewers = live_latencies_ms(messages, trace) if n else (np.empty(0), np.empty(0))
    out["live_deliveries"] = int(viewers.sum())
    out["live_missed"] = int(missed)
    out["live_latency_p50_ms"] = weighted_quantile(lat, viewers, 0.5)
    out["live_latency_p99_ms"] = weighted_quantile(lat, viewers, 0.99)
    out["live_viewers_joined"] = int(joined)
    out["live_viewers_left"] = int(left)
    return out


def accepted_per_window(messages: pd.DataFrame) -> pd.DataFrame:
    """Per room and window: offered and accepted counts by priority (columns
    ``offered_{p}``, ``accepted_{p}`` and the totals ``offered``, ``accepted``)."""
    decided = messages[messages["window"] >= 0]
    rows = []
    for (room, window), grp in decided.groupby(["room", "window"], sort=True):
        row: dict[str, Any] = {"room": int(room), "window": int(window)}
        prio = grp["priority"].astype(str)
        for p in PRIORITIES:
            row[f"offered_{p}"] = int((prio == p).sum())
            row[f"accepted_{p}"] = int((grp["accepted"] & (prio == p)).sum())
        row["offered"] = len(grp)
        row["accepted"] = int(grp["accepted"].sum())
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = [
    "LIVE_KEYS",
    "accepted_per_window",
    "live_latencies_ms",
    "live_summary",
    "weighted_quantile",
]

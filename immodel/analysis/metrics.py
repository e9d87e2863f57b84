"""Summary metrics of a run, computed from its records (DESIGN.md, "Summary metrics").

Everything here reads the record DataFrames (``messages``, ``requests``, ``load``,
``trace``) plus a few counters the records cannot hold (stage busy time, heartbeats
counted from connected time). Loss, duplicates and order violations come from the same
code as ``immodel check`` (:mod:`immodel.analysis.checker`) run on the trace, so a
simulated run and a real system's log are judged alike.

Latency (``latency_*_ms``): app submit → first arrival at the recipient's app, over
expected (message, recipient) pairs whose recipient was connected when the message was
stored; catch-up after being offline is reported separately (``catchup_latency_*_ms``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from immodel.analysis.checker import check_trace

LATENCY_KEYS = ("mean", "p50", "p95", "p99", "max")


def latency_stats(values_ms: np.ndarray, prefix: str) -> dict[str, float | None]:
    """Mean, p50, p95, p99 and max of a latency sample (ms); None when it is empty."""
    values_ms = values_ms[~np.isnan(values_ms)]
    if values_ms.size == 0:
        return {f"{prefix}_{k}_ms": None for k in LATENCY_KEYS}
    q = np.quantile(values_ms, [0.5, 0.95, 0.99])
    return {
        f"{prefix}_mean_ms": float(values_ms.mean()),
        f"{prefix}_p50_ms": float(q[0]),
        f"{prefix}_p95_ms": float(q[1]),
        f"{prefix}_p99_ms": float(q[2]),
        f"{prefix}_max_ms": float(values_ms.max()),
    }


def summarize(
    messages: pd.DataFrame,
    requests: pd.DataFrame,
    trace: pd.DataFrame,
    *,
    horizon_s: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary dict of DESIGN.md from the records of one run."""
    out: dict[str, Any] = {}
    per_msg = messages.drop_duplicates("msg_id")
    out["messages_sent"] = len(per_msg)
    report = check_trace(trace)
    out["deliveries_expected"] = int(report.deliveries_expected)
    out["deliveries"] = int(report.deliveries)
    out["lost"] = int(report.lost)
    out["send_failures"] = int(per_msg["send_failed"].sum())
    out["duplicates"] = int(report.duplicates)
    out["order_violations"] = int(report.order_violations)

    expected = messages[messages["stored"]]
    online = expected[expected["online_at_store"]]
    out.update(latency_stats(online["latency_ms"].to_numpy(dtype=float), "latency"))
    catchup = expected[~expected["online_at_store"]]
    out.update(latency_stats(catchup["latency_ms"].to_numpy(dtype=float), "catchup_latency"))

    # Offline push: store → the vendor notification reaching the device (not the message).
    pushed = expected["t_offline_push"] - expected["t_stored"]
    out["offline_push_latency_mean_ms"] = (
        float(pushed.mean() * 1000.0) if pushed.notna().any() else None
    )

    kinds = requests["kind"].astype(str)
    heartbeats = int((extra or {}).get("heartbeats", 0))
    out["requests_total"] = len(requests) + heartbeats
    out["requests_per_s"] = out["requests_total"] / horizon_s if horizon_s > 0 else None
    for kind in ("send", "ack", "poll", "sync", "login"):
        out[f"requests_{kind}"] = int((kinds == kind).sum())
    out["requests_heartbeat"] = heartbeats
    polls = requests[kinds == "poll"]
    out["empty_poll_fraction"] = float((polls["messages"] == 0).mean()) if len(polls) else None
    out["retransmits_uplink"] = int((per_msg["attempts"] - 1).clip(lower=0).sum())
    out["sync_pulls"] = out["requests_sync"]
    out["messages_stored_twice"] = int((per_msg["stored_copies"] > 1).sum())
    out["delivery_ratio"] = (
        out["deliveries"] / out["deliveries_expected"] if out["deliveries_expected"] else None
    )
    if extra:
        for key, value in extra.items():
            out.setdefault(key, value)
    return {k: _plain(v) for k, v in out.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

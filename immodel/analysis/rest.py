"""Metrics of backend senders over the REST API, from the ``messages`` records.

A message's ``origin`` says which entry of the uplink it took: ``sdk`` (a user's app over
its long connection) or ``rest`` (the business backend's REST call, sent as the admin
account). Both count in the run's ``latency_*`` metrics; this module splits them, so the
effect of the backend's traffic on the users' own messages can be read apart:

``user_latency_p50_ms``, ``user_latency_p99_ms``
    latency percentiles of ``sdk`` messages (online recipients, delivered pairs);
``rest_latency_p50_ms``, ``rest_latency_p99_ms``
    the same for ``rest`` messages: from the backend starting the call (handshake,
    rate-limit waits and retries included) to the recipient's app.

:func:`latency_over_time` gives a percentile of latency per time bin of the send time,
for figures of user latency around a broadcast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _online_delivered(messages: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Expected pairs of ``origin`` whose recipient was online at store, delivered."""
    if "origin" not in messages.columns:
        mine = messages if origin == "sdk" else messages.iloc[0:0]
    else:
        mine = messages[messages["origin"] == origin]
    mine = mine[mine["stored"] & mine["online_at_store"]]
    return mine[mine["latency_ms"].notna()]


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if values.size else None


def rest_latency_metrics(messages: pd.DataFrame) -> dict[str, Any]:
    """``user_latency_p50/p99_ms`` and ``rest_latency_p50/p99_ms`` (module docstring);
    None where there is no pair."""
    out: dict[str, Any] = {}
    for origin, prefix in (("sdk", "user"), ("rest", "rest")):
        lat = _online_delivered(messages, origin)["latency_ms"].to_numpy(dtype=float)
        out[f"{prefix}_latency_p50_ms"] = _pct(lat, 0.5)
        out[f"{prefix}_latency_p99_ms"] = _pct(lat, 0.99)
    return out


def latency_over_time(
    messages: pd.DataFrame, bin_s: float, q: float = 0.99, origin: str = "sdk"
) -> pd.DataFrame:
    """Per bin of ``t_send`` (width ``bin_s`` seconds): the ``q`` quantile of latency (ms)
    of ``origin``'s delivered pairs with online recipients, and how many pairs it has.

    Columns ``t_s`` (bin start, s), ``latency_ms``, ``pairs``; bins without a pair are
    left out.
    """
    if bin_s <= 0:
        raise ValueError("bin_s must be > 0")
    pairs = _online_delivered(messages, origin)
    bins = np.floor(pairs["t_send"].to_numpy(dtype=float) / bin_s) * bin_s
    grouped = pairs.assign(t_s=bins).groupby("t_s")["latency_ms"]
    out = pd.DataFrame({"latency_ms": grouped.quantile(q), "pairs": grouped.size()})
    return out.reset_index()


__all__ = ["latency_over_time", "rest_latency_metrics"]

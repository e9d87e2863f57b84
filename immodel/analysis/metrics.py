"""Summary metrics of a run, computed from its records (defined in ``docs/metrics.md``).

Everything here reads the record DataFrames (``messages``, ``requests``, ``load``,
``trace``) plus a few counters the records cannot hold (stage busy time, heartbeats
counted from connected time). Loss, duplicates and order violations come from the same
code as ``immodel check`` (:mod:`immodel.analysis.checker`) run on the trace, so a
simulated run and a real system's log are judged alike.

Latency (``latency_*_ms``): app submit → first arrival at the recipient's app, over
expected (message, recipient) pairs whose recipient was connected when the message was
stored; catch-up after being offline is reported separately (``catchup_latency_*_ms``).

Order, beyond the per-recipient ``order_violations`` of ``docs/metrics.md`` (which the summary also
splits into ``order_violations_group`` and ``order_violations_1to1``): a recipient of a
1:1 conversation only receives the other party's messages, all stamped by one server
node, so a skewed node clock never shows up in its arrival order. It shows up between
the two directions of a conversation, in the order the app displays (by ``order_key``).
:func:`order_inversions` measures that on any trace:

``stored_order_inversions``
    messages whose ``order_key`` is smaller than the key of a message of the same
    conversation that the server had stored strictly earlier (first ``stored`` row of
    each message, by ``t``): the displayed order contradicts the order of acceptance.
``causal_order_violations``
    messages whose sender had already been shown (a ``deliver`` row for the sender,
    at or before its ``send`` row) a message of the same conversation with a larger
    ``order_key``: a reply displayed above the message it answers.

Both are zero for groups by construction (seq is assigned at store time by one
sequencer), whatever the clocks do.
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
    window_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary dict (``docs/metrics.md``) from the records of one run.

    Totals (``requests_total``, ``requests_<kind>``) cover the whole run. Rates and
    fractions that describe the deployment in operation — ``requests_per_s``,
    ``empty_poll_fraction`` — are measured over the sending window ``[0, window_s)``
    (default: the whole run), so a long drain, in which nothing is sent and every poll is
    empty, does not dilute them. ``extra["heartbeats_window"]`` gives the heartbeats in
    that window.
    """
    out: dict[str, Any] = {}
    # One row per message (its first), with only the per-message columns read below: a
    # whole-frame copy was the largest part of this function's memory after the trace.
    per_msg = messages.loc[
        ~messages["msg_id"].duplicated().to_numpy(), ["send_failed", "attempts", "stored_copies"]
    ]
    out["messages_sent"] = len(per_msg)
    report = check_trace(trace)
    out["deliveries_expected"] = int(report.deliveries_expected)
    out["deliveries"] = int(report.deliveries)
    out["lost"] = int(report.lost)
    # lost = awaiting login (recipient device never connected after the store) + the rest
    out["lost_awaiting_login"] = int(report.lost_awaiting_login)
    out["lost_while_reachable"] = int(report.lost_while_reachable)
    out["send_failures"] = int(per_msg["send_failed"].sum())
    out["duplicates"] = int(report.duplicates)
    out["order_violations"] = int(report.order_violations)
    # Violations are counted per (recipient, conversation), so the two kinds add up.
    groups = set(messages.loc[messages["is_group"], "conversation"].unique())
    if groups and out["order_violations"]:
        group_report = check_trace(trace[trace["conversation"].isin(groups)])
        out["order_violations_group"] = int(group_report.order_violations)
    else:
        out["order_violations_group"] = 0
    out["order_violations_1to1"] = out["order_violations"] - out["order_violations_group"]
    out.update(order_inversions(trace))

    expected = messages.loc[
        messages["stored"].to_numpy(dtype=bool),
        ["online_at_store", "latency_ms", "t_offline_push", "t_stored"],
    ]
    online = expected[expected["online_at_store"]]
    out.update(latency_stats(online["latency_ms"].to_numpy(dtype=float), "latency"))
    catchup = expected[~expected["online_at_store"]]
    out.update(latency_stats(catchup["latency_ms"].to_numpy(dtype=float), "catchup_latency"))

    # Offline push: store → the vendor notification reaching the device (not the message).
    pushed = expected["t_offline_push"] - expected["t_stored"]
    out["offline_push_latency_mean_ms"] = (
        float(pushed.mean() * 1000.0) if pushed.notna().any() else None
    )

    # Several devices per user, offline push end to end (see read_latency, by_device).
    out.update(read_latency(messages))
    out["delivery_by_device"] = by_device(messages, requests)

    kinds = requests["kind"]
    heartbeats = int((extra or {}).get("heartbeats", 0))
    # idle short pollers in cohorts (immodel.sim.idle_poll): empty polls counted, not listed
    idle_polls = int((extra or {}).get("idle_polls", 0))
    idle_polls_window = int((extra or {}).get("idle_polls_window", 0))
    out["requests_total"] = len(requests) + heartbeats + idle_polls
    for kind in ("send", "ack", "poll", "sync", "login"):
        out[f"requests_{kind}"] = int(np.count_nonzero(equals_str(kinds, kind)))
    out["requests_poll"] += idle_polls
    out["requests_heartbeat"] = heartbeats
    window = horizon_s if window_s is None else window_s
    in_window = (requests["t"] < window).to_numpy()
    heartbeats_window = int((extra or {}).get("heartbeats_window", heartbeats))
    out["window_s"] = window
    out["requests_per_s"] = (
        (int(in_window.sum()) + heartbeats_window + idle_polls_window) / window
        if window > 0
        else None
    )
    polls = requests.loc[in_window & equals_str(kinds, "poll"), ["messages"]]
    if idle_polls_window:
        empty = int((polls["messages"] == 0).sum()) + idle_polls_window
        out["empty_poll_fraction"] = empty / (len(polls) + idle_polls_window)
    else:
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


def read_latency(messages: pd.DataFrame) -> dict[str, float | None]:
    """``read_latency_p50_ms`` and ``read_latency_p99_ms``: send → the message shown on the
    first of the recipient's devices, over the expected (message, recipient user) pairs
    whose recipient had no device connected when the message was stored (the users an
    offline push is for; the sender's own other devices are not readers). A pair never
    shown is left out, as in ``latency_*``. With one device per user this is the
    ``catchup_latency`` population. Reads ``device``-less frames too (one device each)."""
    mask = messages["stored"] & (messages["recipient"] != messages["sender"])
    # only the columns read below (msg_id only with several devices, when present)
    wanted = ("msg_id", "recipient", "online_at_store", "t_first_show", "t_send", "device")
    cols = [c for c in wanted if c in messages.columns]
    rows = messages.loc[mask.to_numpy(dtype=bool), cols]
    if "device" not in rows.columns or rows["device"].nunique() <= 1:
        # one device per user: one row per (message, recipient), no grouping needed
        offline = rows[~rows["online_at_store"]]
        values = ((offline["t_first_show"] - offline["t_send"]) * 1000.0).to_numpy(dtype=float)
    else:
        g = rows.groupby(["msg_id", "recipient"], sort=False)
        offline = ~g["online_at_store"].any()
        first = g["t_first_show"].min() - g["t_send"].first()
        values = (first[offline] * 1000.0).to_numpy(dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"read_latency_p50_ms": None, "read_latency_p99_ms": None}
    p50, p99 = np.quantile(values, [0.5, 0.99])
    return {"read_latency_p50_ms": float(p50), "read_latency_p99_ms": float(p99)}


def by_device(messages: pd.DataFrame, requests: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``delivery_by_device``: per device kind, the expected (message, recipient device)
    pairs, those delivered and lost, the latency p50/p99 (ms) over pairs whose device was
    connected at store (the ``latency_*`` population), and the requests and sync-page
    items the devices of that kind caused. Empty for frames without a ``device`` column."""
    if "device" not in messages.columns:
        return {}
    out: dict[str, dict[str, Any]] = {}
    cols = ["device", "t_first_show", "online_at_store", "latency_ms"]
    expected = messages.loc[messages["stored"].to_numpy(dtype=bool), cols]
    req_device = requests["device"].astype(str) if "device" in requests.columns else None
    for kind in sorted(messages["device"].astype(str).unique()):
        rows = expected[expected["device"] == kind]
        shown = rows["t_first_show"].notna()
        lat = latency_stats(
            rows.loc[rows["online_at_store"], "latency_ms"].to_numpy(dtype=float), "latency"
        )
        entry: dict[str, Any] = {
            "deliveries_expected": len(rows),
            "deliveries": int(shown.sum()),
            "lost": int((~shown).sum()),
            "latency_p50_ms": lat["latency_p50_ms"],
            "latency_p99_ms": lat["latency_p99_ms"],
        }
        if req_device is not None:
            mine = requests.loc[(req_device == kind).to_numpy(), ["kind", "messages"]]
            entry["requests"] = len(mine)
            sync = mine[equals_str(mine["kind"], "sync")]
            entry["sync_items"] = int(sync["messages"].sum())
        out[kind] = entry
    return out


RECOVERY_KEYS = (
    "recovery_time_s",
    "reconnect_time_s",
    "recovery_pairs",
    "recovered_via_sync",
    "recovered_via_push",
    "recovery_undelivered",
)


def recovery_metrics(
    messages: pd.DataFrame, requests: pd.DataFrame, incidents: list[dict[str, Any]]
) -> dict[str, Any]:
    """How the deployment recovered from its crashes (server, gateway or app restart).

    ``incidents`` are the crash-type entries of the fault log (:mod:`immodel.sim.faults`):
    ``at_s`` (t0), ``end_s`` (when the fault stopped: the node is back), ``users`` (the
    users it cut off) and ``online`` (the users who were online at t0). A cut-off user is
    *back* at its first ``login`` request after t0 (never, if it did not log in again).
    An incident's *affected pairs* are the expected (message, recipient) pairs whose
    recipient was online at t0, which had not reached the recipient's app at t0, and
    which were stored before t0 (in flight or waiting for an ACK when it struck) or, for
    a cut-off recipient, before that recipient was back (they waited for the reconnect).

    Keys (None when there was no incident):

    ``recovery_time_s``
        from t0 until the last affected pair reached its recipient (max over incidents;
        None if an affected pair never arrived);
    ``reconnect_time_s``
        from t0 until the fault had ended and the last cut-off user was back (max over
        incidents): detection, backoff and login;
    ``recovery_pairs``
        affected pairs (a pair affected by two incidents counts once);
    ``recovered_via_sync``, ``recovered_via_push``
        affected pairs whose first copy came by a sync page, or by a pushed/polled copy
        (first push, retransmit, or the offline queue moved to the downlink at login);
    ``recovery_undelivered``
        affected pairs that never arrived (they are also in ``lost``). With presence
        churn, a cut-off user who goes offline before reconnecting leaves pairs here.
    """
    if not incidents:
        return dict.fromkeys(RECOVERY_KEYS)
    cols = ["t_stored", "t_first_show", "recipient", "first_via"]
    expected = messages.loc[messages["stored"].to_numpy(dtype=bool), cols]
    logins = requests.loc[equals_str(requests["kind"], "login"), ["t", "user"]]
    t_stored = expected["t_stored"].to_numpy(dtype=float)
    t_show = expected["t_first_show"].to_numpy(dtype=float)
    recipient = expected["recipient"].to_numpy(dtype=np.int64)
    affected = np.zeros(len(expected), dtype=bool)
    recovery_s: list[float] = []
    reconnect_s: list[float] = []
    incomplete = False
    for inc in incidents:
        t0 = float(inc["at_s"])
        cut = np.fromiter(inc.get("users", ()), dtype=np.int64)
        back = logins[(logins["t"] > t0) & logins["user"].isin(cut)].groupby("user")["t"].min()
        back_at = pd.Series(np.inf, index=cut).astype(float)
        back_at.update(back)
        t_back = back_at.reindex(recipient).to_numpy(dtype=float)  # NaN: not cut off
        last_back = float(back_at.max()) if len(back_at) else t0
        reconnect_s.append(max(float(inc["end_s"]), last_back) - t0)
        online = np.isin(recipient, np.fromiter(inc.get("online", ()), dtype=np.int64))
        # not yet shown at t0: a pair shown at t0 had reached the app; never shown (NaN) waits
        waiting = ~(t_show <= t0)
        mine = online & waiting & ((t_stored < t0) | (t_stored < t_back))
        affected |= mine
        shown = t_show[mine]
        if np.isnan(shown).any():
            incomplete = True
        else:
            recovery_s.append(float(shown.max()) - t0 if shown.size else 0.0)
    via = expected["first_via"].to_numpy()[affected]
    reconnect = max(reconnect_s)
    return {
        "recovery_time_s": None if incomplete else max(recovery_s),
        "reconnect_time_s": reconnect if math.isfinite(reconnect) else None,
        "recovery_pairs": int(affected.sum()),
        "recovered_via_sync": int((via == "sync").sum()),
        # a polled copy is the poller's push (docs/metrics.md): both count here
        "recovered_via_push": int(np.isin(via, ("push", "poll")).sum()),
        "recovery_undelivered": int(np.isnan(t_show[affected]).sum()),
    }


def order_inversions(trace: pd.DataFrame) -> dict[str, int]:
    """``stored_order_inversions`` and ``causal_order_violations`` of a trace (see above).

    Reads the trace columns (``docs/columns.md``) (``t``, ``event``, ``msg_id``, ``conversation``,
    ``user``, ``order_key``); rows keep their time order on ties; a row whose grouping
    value (conversation, user, ``t`` of a stored row) is missing is in no group.

    Vectorised on integer codes (``pd.factorize``) and row numbers: grouping, sorting and
    joining the string columns themselves cost ~90 MiB and ~2.5 s for 450 k rows
    (``tests/analysis/test_order_inversions.py`` checks this against that direct pandas
    formulation on random traces).
    """
    is_stored = equals_str(trace["event"], "stored")
    stored = np.flatnonzero(is_stored)
    if stored.size == 0:
        return {"stored_order_inversions": 0, "causal_order_violations": 0}
    t = trace["t"].to_numpy()
    # Message codes: a missing msg_id is one message, as drop_duplicates and map see it.
    msg, _ = pd.factorize(trace["msg_id"], use_na_sentinel=False)
    # A message stored twice (no server dedup) keeps its first copy's time and key:
    # stored rows by time (stable: file order on ties), the first row of each message.
    by_time = stored[np.argsort(t[stored], kind="stable")]
    first = by_time[~pd.Series(msg[by_time]).duplicated().to_numpy()]
    key = trace["order_key"].iloc[first].astype(float).to_numpy()
    conv, _ = pd.factorize(trace["conversation"].iloc[first])  # -1: missing
    stored_inv = _stored_inversions(conv, t[first], key)

    # The first stored key of each message, by message code (NaN: never stored).
    key_of = np.full(int(msg.max()) + 1, np.nan)
    key_of[msg[first]] = key
    del stored, by_time, first, key, conv  # (trace-long arrays: freed as soon as done)
    deliver = np.flatnonzero(equals_str(trace["event"], "deliver"))
    send = np.flatnonzero(equals_str(trace["event"], "send"))
    own = np.concatenate([np.full(deliver.size, np.nan), key_of[msg[send]]])
    del key_of, msg
    # Deliveries first, then sends, each in file order: the tie order of the sort below.
    rows = np.concatenate([deliver, send])
    seen = np.concatenate(
        [trace["order_key"].iloc[deliver].astype(float).to_numpy(), np.full(send.size, np.nan)]
    )
    rank = np.concatenate([np.zeros(deliver.size, np.int8), np.ones(send.size, np.int8)])
    del deliver, send
    # Grouped by the conversation and user as strings, as a displayed id is; a row
    # missing either is in no group (-1).
    conv_s = _str_codes(trace["conversation"])[rows]
    user_s = _str_codes(trace["user"])[rows]
    n_users = int(user_s.max()) + 1 if user_s.size else 1
    group = np.where((conv_s >= 0) & (user_s >= 0), conv_s * n_users + user_s, -1)
    del conv_s, user_s
    # At equal times a delivery counts as seen before the send (rank 0 before 1).
    order = np.lexsort((rank, trace["t"].to_numpy()[rows], group))
    del rows
    group, seen, own, rank = group[order], seen[order], own[order], rank[order]
    del order
    new_group = np.r_[True, group[1:] != group[:-1]]
    # The largest key shown to the sender in the conversation before each send.
    seen_max = _running_max(seen, np.cumsum(new_group) - 1)
    counted = (rank == 1) & (group >= 0) & (own < seen_max)
    causal = int(np.count_nonzero(counted))
    return {"stored_order_inversions": stored_inv, "causal_order_violations": causal}


def _stored_inversions(conv: np.ndarray, t: np.ndarray, key: np.ndarray) -> int:
    """Messages (``conv`` codes, first stored ``t`` and ``key``, in order of ``t``) whose
    key is below the largest key of their conversation stored at an earlier instant.

    "Stored strictly earlier": messages stored at the same instant are not before one
    another, so the running maximum is taken over earlier instants only — the largest
    key per (conversation, t), its running maximum, shifted by one instant. An instant
    whose keys are all NaN has no maximum, and the instant after it sees none either.
    """
    valid = (conv >= 0) & ~pd.isna(t)
    conv, t, key = conv[valid], t[valid], key[valid]
    if not conv.size:
        return 0
    order = np.lexsort((t, conv))  # stable: time order, file order on ties
    conv, t, key = conv[order], t[order], key[order]
    boundary = np.r_[True, (conv[1:] != conv[:-1]) | (t[1:] != t[:-1])]
    starts = np.flatnonzero(boundary)
    instant = np.cumsum(boundary) - 1
    known = ~np.isnan(key)
    at_instant = np.maximum.reduceat(np.where(known, key, -np.inf), starts)
    at_instant[~np.logical_or.reduceat(known, starts)] = np.nan
    inst_conv = conv[starts]
    conv_start = np.r_[True, inst_conv[1:] != inst_conv[:-1]]
    running = _running_max(at_instant, np.cumsum(conv_start) - 1)
    running[np.isnan(at_instant)] = np.nan  # as a cumulative max skipping NaN shows it
    before = np.r_[np.nan, running[:-1]]
    before[conv_start] = np.nan  # the first instant of a conversation has none before
    return int(np.count_nonzero(key < before[instant]))


def _running_max(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The maximum of the non-NaN ``values`` so far within each run of equal ``group``
    (non-decreasing ids); NaN before a group's first value. One ``maximum.accumulate``
    over dense ranks offset by the group id: an earlier group's ranks are all smaller."""
    known = ~np.isnan(values)
    distinct, rank = np.unique(values[known], return_inverse=True)
    n_ranks = max(distinct.size, 1)
    base = group.astype(np.int64) * n_ranks
    coded = np.full(values.size, -1, dtype=np.int64)
    coded[known] = base[known] + rank.reshape(-1)
    running = np.maximum.accumulate(coded) if coded.size else coded
    out = np.full(values.size, np.nan)
    has = running >= base
    out[has] = distinct[running[has] - base[has]]
    return out


def equals_str(col: pd.Series, name: str) -> np.ndarray:
    """``col.astype(str) == name`` as a bool array, on the categories when it has them."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        hit = np.append(np.asarray(col.cat.categories.astype(str) == name), False)
        return hit[col.cat.codes.to_numpy()]  # code -1 (missing): the appended False
    return (col.astype(str) == name).to_numpy(dtype=bool)


def _str_codes(col: pd.Series) -> np.ndarray:
    """Codes of ``col.astype(str)``: equal for equal strings, -1 where missing."""
    if not isinstance(col.dtype, pd.StringDtype):
        col = col.astype(str)
    codes, _ = pd.factorize(col)
    return codes


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Crash recovery: a logic node dies, the connections stay — which sync repairs what?
#
# *A logic node crashes for 20 s and its pending-ACK queue is gone, while every client
# stays connected to the access tier (the article's figure 4): which of the three sync
# triggers — on every 1:1 receipt, on a group seq gap, on reconnect — brings the lost
# messages back, and what stays lost for a user who receives nothing after the crash?*
# This notebook runs `experiments/crash_recovery.toml`, an ablation of the three
# triggers for push and long polling under 5 % downlink loss, then looks inside runs to
# see which mechanism delivered what (`repaired_by`).
#
# With `REPLICATIONS = None`, `SET = {}`, `GRID = {}` it is exactly the batch experiment
# (`OUT_DIR = "../experiments/crash_recovery-results"` reuses `immodel sweep` results).

# %% tags=["parameters"]
SWEEP_FILE = "../experiments/crash_recovery.toml"
REPLICATIONS = 5  # None: the file's value
SET = {"workload.users": 500}  # overrides of [set]
GRID = {}  # overrides of [grid]
TIMELINE_TRANSPORT = "push"  # the transport whose runs are drawn over time
OUT_DIR = None  # None: results/<sweep>-<hash of its settings>
WORKERS = None  # local worker processes (None: every core)

# %%
# %matplotlib inline

import pandas as pd
from IPython.display import Markdown, display

import immodel
from immodel.analysis import plots
from immodel.experiments import load_sweep_with, run_sweep
from immodel.experiments.report import (
    Column,
    explain_order_violations,
    format_markdown_table,
    headline_table,
)

# %% [markdown]
# ## The sweep

# %%
sweep, out = load_sweep_with(
    SWEEP_FILE, set_overrides=SET, grid_overrides=GRID, replications=REPLICATIONS, out=OUT_DIR
)
faults = sweep.tasks()[0].scenario["faults"]
print(sweep.description)
print("faults:", faults)
print(f"{len(sweep.points())} points × {sweep.replications} replications → {out}")
results = run_sweep(sweep, out, workers=WORKERS)

# %% [markdown]
# ## What the user sees
#
# Lost (never delivered by the end of the drain), duplicated and out-of-order
# deliveries per run, for each transport and each set of sync triggers. "Out of order"
# is the order of arrival at the app (the note below, printed when there are any,
# explains the 1:1 arrivals that remain with every mechanism on).

# %%
keys = [
    k
    for k in (
        "transport.kind",
        "reliability.sync_on_receipt",
        "reliability.sync_on_gap",
        "reliability.sync_on_reconnect",
    )
    if k in results.columns and results[k].nunique() > 1
]
display(plots.plot_outcomes(results, keys, title="Logic-node crash: delivery outcomes per run"))
note = explain_order_violations(results)
if note:
    display(Markdown(note))

# %% [markdown]
# ## How long recovery takes
#
# `recovery_time_s`: from the crash until the last message that was in flight or
# waiting for its ACK reached the app — empty when some never did; `recovered_via_sync`:
# how many of those messages came back by a sync page; `crash_pending_lost`: messages
# that were in the pending-ACK queue the crash wiped; `logins`: nobody needs to log in
# again, the connections live on the access tier.

# %%
columns = [
    Column("lost", "lost", 1),
    Column("order_violations", "out of order", 1),
    Column("recovery_time_s", "recovery (s)", 1),
    Column("recovered_via_sync", "via sync", 1),
    Column("crash_pending_lost", "pending ACKs wiped", 1),
    Column("logins", "logins", 1),
]
display(Markdown(format_markdown_table(headline_table(results, keys, columns), keys, columns)))

# %% [markdown]
# ## Which mechanism delivered what
#
# Replication 0 of `TIMELINE_TRANSPORT` with every trigger on, and with each one off —
# the same seed, so the same users send the same messages at the same times. For the
# deliveries stored from the crash on, `repaired_by` says what brought each one when the
# first push did not: a pending-ACK retransmission, the offline queue, or a sync started
# by a receipt, a gap or a reconnect. A pair still missing at the end belongs to a user
# who received nothing after the crash (the next receipt would have synced it).

# %%
TRIGGERS = ("sync_on_receipt", "sync_on_gap", "sync_on_reconnect")
chosen = {}
for task in sweep.tasks():
    values = task.values
    if task.replication != 0 or values.get("transport.kind", TIMELINE_TRANSPORT) != (
        TIMELINE_TRANSPORT
    ):
        continue
    off = [t for t in TRIGGERS if values.get(f"reliability.{t}", True) is False]
    if len(off) <= 1:
        chosen["all triggers" if not off else f"no {off[0]}"] = task.scenario
runs = {label: immodel.run(sc) for label, sc in chosen.items()}
crash_at = faults[0]["at_s"]
crash_end = crash_at + faults[0]["down_s"]
rows = {}
for label, run in runs.items():
    m = run.messages
    after = m[m["stored"] & (m["t_stored"] >= crash_at - 10.0)]
    counts = after["repaired_by"].replace("", "first push or poll").value_counts()
    missing = after[after["t_first_show"].isna()]
    late = m[m["t_first_show"] > crash_end]
    heard_again = set(late["recipient"])
    counts["still missing"] = len(missing)
    counts["… of users who received after the crash"] = int(
        missing["recipient"].isin(heard_again).sum()
    )
    rows[label] = counts
table = pd.DataFrame(rows).fillna(0).astype(int)
display(table)

# %%
window = plots.fault_window(faults, runs[next(iter(runs))].summary["horizon_s"])
for label, run in runs.items():
    display(
        plots.plot_recovery(
            run.messages,
            faults,
            recovery_time_s=run.summary["recovery_time_s"],
            window_s=window,
            title=f"Recovery, {TIMELINE_TRANSPORT}, {label}",
        )
    )

# %%
plots.plot_latency_ecdf(
    {label: run.messages for label, run in runs.items()},
    title=f"Latency around a logic-node crash ({TIMELINE_TRANSPORT})",
)

# %% [markdown]
# ## The review set

# %%
for path in plots.sweep_figures(results, out / "figures"):
    print(path)

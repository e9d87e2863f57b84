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
# # 04 · Crash recovery: a server crash with and without timestamp/seq sync
#
# *The server crashes for 20 s and its pending-ACK queue is gone: how many messages are
# lost without sync, how long does recovery take with it?* This notebook runs
# `experiments/crash_recovery.toml` — push, hybrid and long polling, sync on and off,
# under 5 % downlink loss so that messages are waiting for their ACK when the crash
# strikes — then looks inside one run of each to see the recovery happen.
#
# With `REPLICATIONS = None`, `SET = {}`, `GRID = {}` it is exactly the batch experiment
# (`OUT_DIR = "../experiments/crash_recovery-results"` reuses `immodel sweep` results).

# %% tags=["parameters"]
SWEEP_FILE = "../experiments/crash_recovery.toml"
REPLICATIONS = 5  # None: the file's value
SET = {"workload.users": 500}  # overrides of [set]
GRID = {}  # overrides of [grid]
TIMELINE_TRANSPORT = "long_poll"  # the transport whose runs are drawn over time
OUT_DIR = None  # None: results/<sweep>-<hash of its settings>
WORKERS = None  # local worker processes (None: every core)

# %%
# %matplotlib inline

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
# deliveries per run, for each transport with sync on and off. "Out of order" is the
# order of arrival at the app (the note below, printed when there are any, explains the
# 1:1 arrivals that remain with every mechanism on).

# %%
keys = ["transport.kind", "reliability.sync"]
display(plots.plot_outcomes(results, keys, title="Server crash: delivery outcomes per run"))
note = explain_order_violations(results)
if note:
    display(Markdown(note))

# %% [markdown]
# ## How long recovery takes
#
# `recovery_time_s`: from the crash until the last message that was in flight or
# waiting for its ACK (or for its recipient's reconnect) reached the app — empty when
# some never did; `reconnect_time_s`: until the last cut-off client was back;
# `recovered_via_sync`: how many of those messages came back by a sync page;
# `crash_pending_lost`: messages that were in the pending-ACK queues the crash wiped.

# %%
columns = [
    Column("lost", "lost", 1),
    Column("order_violations", "out of order", 1),
    Column("recovery_time_s", "recovery (s)", 1),
    Column("reconnect_time_s", "reconnect (s)", 1),
    Column("recovered_via_sync", "via sync", 1),
    Column("crash_pending_lost", "pending ACKs wiped", 1),
]
display(Markdown(format_markdown_table(headline_table(results, keys, columns), keys, columns)))

# %% [markdown]
# ## One run of each, over time
#
# Replication 0 of `TIMELINE_TRANSPORT` with sync on and off — the same seed, so the same
# users send the same messages at the same times. The shaded band is the crash:
# connections drop, the pending-ACK queue is emptied, clients reconnect with backoff.

# %%
runs = {}
for task in sweep.tasks():
    if task.replication == 0 and task.values["transport.kind"] == TIMELINE_TRANSPORT:
        label = plots.value_label("reliability.sync", task.values["reliability.sync"])
        runs[label] = immodel.run(task.scenario)
window = plots.fault_window(faults, runs[next(iter(runs))].summary["horizon_s"])
for label, run in runs.items():
    display(
        plots.plot_load_timeline(
            run.load, faults, window_s=window, title=f"{TIMELINE_TRANSPORT}, {label} (zoomed)"
        )
    )

# %% [markdown]
# Recovery: deliveries stored but not yet shown, over the same window; the dashed line
# is the summary's `recovery_time_s` after the crash.

# %%
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
    title=f"Latency around a server crash ({TIMELINE_TRANSPORT})",
)

# %% [markdown]
# ## The review set

# %%
for path in plots.sweep_figures(results, out / "figures"):
    print(path)

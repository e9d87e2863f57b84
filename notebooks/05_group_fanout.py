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
# # 05 · Group fan-out: write diffusion or read diffusion?
#
# *Group of 5 000 members: write-diffusion or read-diffusion?* With write diffusion the
# server stores one inbox copy per member when the message is stored, and every member's
# poll or sync reads its own inbox; with read diffusion it stores the message once on the
# group's timeline, keeps nothing per member, and every poll or sync page reads the
# timelines of all the user's groups. Which is cheaper depends on how often members
# read, how many groups they are in and what each operation costs — not on the model.
#
# 1. **The sweep** runs `experiments/group_fanout.toml` — push clients (who read only on
#    a sync), every message to a group, group sizes from 10 to 5 000, both diffusions —
#    and compares latency and server load. With `REPLICATIONS = None`, `SET = {}`,
#    `GRID = {}` it is exactly the batch experiment
#    (`OUT_DIR = "../experiments/group_fanout-results"` reuses `immodel sweep` results).
# 2. **Where the two cross**: short-polling users, group size × groups per user, the
#    measured cost difference against the formula of `immodel.analysis.diffusion`.
# 3. **The seq-gap sync storm**: one large group whose fan-out jobs finish out of order,
#    with and without `reliability.gap_wait_ms`.

# %% tags=["parameters"]
SWEEP_FILE = "../experiments/group_fanout.toml"
REPLICATIONS = 3  # None: the file's value
SET = {"workload.users": 2000, "duration_s": 30.0}  # overrides of [set]
GRID = {"workload.group_size": [10, 100, 500, 2000]}  # overrides of [grid] (≤ users)
OUT_DIR = None  # None: results/<sweep>-<hash of its settings>
WORKERS = None  # local worker processes (None: every core)
# Where the two cross: short polling every CROSS_POLL_S, constant service times
CROSS_USERS = 400
CROSS_SIZES = [5, 10, 20, 40, 80]  # members per group
CROSS_GROUPS_PER_USER = [1, 2, 4]  # the run has users * this / size groups
CROSS_SEND_RATE = 0.025  # group messages per user per second
CROSS_POLL_S = 2.0
CROSS_DURATION_S = 10.0
INBOX_WRITE_MS = 0.01  # server.inbox_write_ms
TIMELINE_READ_MS = 0.005  # server.timeline_read_ms
# The sync storm: one group of every user, fan-out on 8 workers (out of order)
STORM_MEMBERS = 2000
STORM_MSGS_PER_S = 20.0
STORM_DURATION_S = 10.0
STORM_WAITS_MS = [0.0, 20.0, 100.0, 200.0]

# %%
# %matplotlib inline

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import immodel
from immodel.analysis import plots
from immodel.analysis.diffusion import (
    crossing_from_points,
    crossing_group_size,
    diffusion_busy_ms_per_s,
    diffusion_cost_difference_ms_per_s,
)
from immodel.experiments import load_sweep_with, run_sweep
from immodel.experiments.report import Column, format_markdown_table, headline_table

# %% [markdown]
# ## The sweep

# %%
sweep, out = load_sweep_with(
    SWEEP_FILE, set_overrides=SET, grid_overrides=GRID, replications=REPLICATIONS, out=OUT_DIR
)
print(sweep.description)
print(dict(sweep.grid))
print(f"{len(sweep.points())} points × {sweep.replications} replications → {out}")
results = run_sweep(sweep, out, workers=WORKERS)

# %% [markdown]
# ## Latency
#
# Fan-out to every member happens in both cases; what differs is the cost of the store
# stage, which grows with the group under write diffusion.

# %%
plots.plot_latency(results, x="workload.group_size", series="server.diffusion")

# %% [markdown]
# ## Server load
#
# Busy fraction of all server stages and of the store stage alone. The mean wait of a
# job in the store stage's queue is drawn only when there is a wait to see: with the
# store far from saturation it is zero at every point, and its value is printed instead.

# %%
plots.plot_metric(results, "server_utilization", "workload.group_size", "server.diffusion")

# %%
plots.plot_metric(results, "utilization_store", "workload.group_size", "server.diffusion")

# %%
store_wait_ms = results["wait_mean_ms_store"].max()
if store_wait_ms > 0.01:
    display(
        plots.plot_metric(results, "wait_mean_ms_store", "workload.group_size", "server.diffusion")
    )
else:
    print(f"store queue wait: at most {store_wait_ms:.4f} ms at every point (nothing to draw)")

# %%
keys = ["workload.group_size", "server.diffusion"]
columns = [
    Column("deliveries", "deliveries"),
    Column("latency_p50_ms", "p50 latency (ms)"),
    Column("latency_p99_ms", "p99 latency (ms)"),
    Column("utilization_store", "store busy (%)", 2, 100.0),
    Column("server_utilization", "server busy (%)", 2, 100.0),
    Column("requests_per_s", "requests/s", 1),
]
display(Markdown(format_markdown_table(headline_table(results, keys, columns), keys, columns)))

# %% [markdown]
# ## Where the two designs cross
#
# Per second, write diffusion spends `λ (n − 1) w` on inbox copies (λ group messages per
# second, n members, `w` = `server.inbox_write_ms`); read diffusion spends `R ḡ r` on
# timeline reads (R polls and sync pages per second, ḡ groups per user, `r` =
# `server.timeline_read_ms`). For short-polling users who send at `s` and poll every `T`
# the two cost the same at the group size `n* = 1 + ḡ r / (s w T)` (docs/model.md). Each
# point below is one run per design with constant service times; the line is the formula.

# %%
rows = []
for g in CROSS_GROUPS_PER_USER:
    for size in CROSS_SIZES:
        groups = g * CROSS_USERS // size
        busy = {}
        for diffusion in ("write", "read"):
            scenario = immodel.Scenario.load(
                "short-poll",
                {
                    "workload.users": CROSS_USERS,
                    "workload.group_share": 1.0,
                    "workload.groups": groups,
                    "workload.group_size": size,
                    "workload.send_rate_per_user": CROSS_SEND_RATE,
                    "transport.poll_interval_s": CROSS_POLL_S,
                    "duration_s": CROSS_DURATION_S,
                    "server.service_dist": "constant",
                    "server.diffusion": diffusion,
                    "server.inbox_write_ms": INBOX_WRITE_MS,
                    "server.timeline_read_ms": TIMELINE_READ_MS,
                },
            )
            run = immodel.run(scenario)
            busy[diffusion] = diffusion_busy_ms_per_s(run.summary, scenario["server.workers"])
        g_real = groups * size / CROSS_USERS
        rows.append(
            {
                "groups_per_user": g,
                "group_size": size,
                "write_ms_per_s": busy["write"],
                "read_ms_per_s": busy["read"],
                "measured_delta": busy["write"] - busy["read"],
                "formula_delta": diffusion_cost_difference_ms_per_s(
                    group_msg_rate_per_s=CROSS_USERS * CROSS_SEND_RATE,
                    group_size=size,
                    reads_per_s=CROSS_USERS / CROSS_POLL_S,
                    groups_per_user=g_real,
                    inbox_write_ms=INBOX_WRITE_MS,
                    timeline_read_ms=TIMELINE_READ_MS,
                ),
            }
        )
crossing = pd.DataFrame(rows)
crossing.round(3)

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for g, part in crossing.groupby("groups_per_user"):
    line = ax.plot(part["group_size"], part["formula_delta"], label=f"formula, {g} group(s)/user")
    ax.plot(part["group_size"], part["measured_delta"], "o", color=line[0].get_color())
ax.axhline(0.0, color="grey", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel("members per group")
ax.set_ylabel("write − read (ms of service per s)")
ax.set_title("below 0: write diffusion is cheaper; above 0: read diffusion")
ax.legend()
plt.show()

# %%
crossings = pd.DataFrame(
    [
        {
            "groups_per_user": g,
            "measured n*": crossing_from_points(part["group_size"], part["measured_delta"]),
            "formula n*": crossing_group_size(
                send_rate_per_user=CROSS_SEND_RATE,
                poll_interval_s=CROSS_POLL_S,
                groups_per_user=g,
                inbox_write_ms=INBOX_WRITE_MS,
                timeline_read_ms=TIMELINE_READ_MS,
            ),
        }
        for g, part in crossing.groupby("groups_per_user")
    ]
)
crossings.round(1)

# %% [markdown]
# ## The seq-gap sync storm
#
# A message to a large group is fanned out by one job on one of the downlink stage's
# workers; with several workers, the job of seq n + 1 can finish before the job of seq n,
# and every member then sees a gap. Without a wait each of them syncs at once; with
# `reliability.gap_wait_ms` longer than the spread of the fan-out completions the gap
# fills by itself and the sync is cancelled.

# %%
storm_rows = []
for wait_ms in STORM_WAITS_MS:
    storm_run = immodel.run(
        immodel.Scenario.load(
            "baseline",
            {
                "workload.users": STORM_MEMBERS,
                "workload.group_share": 1.0,
                "workload.groups": 1,
                "workload.group_size": STORM_MEMBERS,
                "workload.send_rate_per_user": STORM_MSGS_PER_S / STORM_MEMBERS,
                "duration_s": STORM_DURATION_S,
                "reliability.gap_wait_ms": wait_ms,
            },
        )
    )
    s = storm_run.summary
    storm_rows.append(
        {
            "gap_wait_ms": wait_ms,
            "sync_pulls": s["sync_pulls"],
            "utilization_sync": s["utilization_sync"],
            "latency_p99_ms": s["latency_p99_ms"],
            "lost": s["lost"],
        }
    )
storm = pd.DataFrame(storm_rows)
storm

# %% [markdown]
# ## Conclusion
#
# Computed from the results above: what write diffusion costs over read diffusion as
# groups grow, where the two cross, and what the gap wait does to the sync storm.

# %%
means = results.groupby(keys, sort=True)[
    ["latency_p99_ms", "utilization_store", "server_utilization", "lost"]
].mean()
largest = results["workload.group_size"].max()
smallest = results["workload.group_size"].min()
lines = []
for size in (smallest, largest):
    row = means.loc[size]
    lines.append(
        f"- Groups of {size:,}: p99 "
        + ", ".join(
            f"{plots.value_label('server.diffusion', d)} {row.loc[d, 'latency_p99_ms']:,.0f} ms"
            for d in row.index
        )
        + "; store stage busy "
        + ", ".join(
            f"{plots.value_label('server.diffusion', d)} {row.loc[d, 'utilization_store']:.3%}"
            for d in row.index
        )
        + "."
    )
lines.append(f"- Deliveries lost over all {len(results)} runs: {int(results['lost'].sum()):,}.")
for _, row in crossings.iterrows():
    g, measured, formula = row["groups_per_user"], row["measured n*"], row["formula n*"]
    where = (
        f"write diffusion is cheaper below {measured:,.1f} members per group, read above"
        if measured == measured  # not nan: the sign changed inside the sizes run
        else f"one design is cheaper at every size run ({min(CROSS_SIZES)}–{max(CROSS_SIZES)})"
    )
    lines.append(
        f"- Short polling, {g:g} group(s) per user: {where} (formula: n* = {formula:,.1f})."
    )
first, last = storm.iloc[0], storm.iloc[-1]
lines.append(
    f"- One group of {STORM_MEMBERS:,} members: {int(first['sync_pulls']):,} sync pulls "
    f"without a gap wait, {int(last['sync_pulls']):,} with {last['gap_wait_ms']:g} ms; "
    f"lost {int(storm['lost'].sum())}."
)
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## The review set

# %%
for path in plots.sweep_figures(results, out / "figures"):
    print(path)

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
# server stores one inbox copy per member when the message is stored; with read
# diffusion it stores the message once on the group's timeline. This notebook runs
# `experiments/group_fanout.toml` — every message to a group, group sizes from 10 to
# 5 000, both diffusions — and compares latency and server load.
#
# With `REPLICATIONS = None`, `SET = {}`, `GRID = {}` it is exactly the batch experiment
# (`OUT_DIR = "../experiments/group_fanout-results"` reuses `immodel sweep` results).

# %% tags=["parameters"]
SWEEP_FILE = "../experiments/group_fanout.toml"
REPLICATIONS = 3  # None: the file's value
SET = {"workload.users": 2000, "duration_s": 30.0}  # overrides of [set]
GRID = {"workload.group_size": [10, 100, 500, 2000]}  # overrides of [grid] (≤ users)
OUT_DIR = None  # None: results/<sweep>-<hash of its settings>
WORKERS = None  # local worker processes (None: every core)

# %%
# %matplotlib inline

from IPython.display import Markdown, display

from immodel.analysis import plots
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
# ## Conclusion
#
# Computed from the results above: what write diffusion costs over read diffusion as
# groups grow.

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
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## The review set

# %%
for path in plots.sweep_figures(results, out / "figures"):
    print(path)

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
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
SET = {"workload.users": 2000, "duration_s": 30.0, "drain_s": 30.0}  # overrides of [set]
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
# Busy fraction of all server stages, of the store stage alone, and the mean wait of a
# job in the store stage's queue.

# %%
plots.plot_metric(results, "server_utilization", "workload.group_size", "server.diffusion")

# %%
plots.plot_metric(results, "utilization_store", "workload.group_size", "server.diffusion")

# %%
plots.plot_metric(results, "wait_mean_ms_store", "workload.group_size", "server.diffusion")

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
# ## The review set

# %%
for path in plots.sweep_figures(results, out / "figures"):
    print(path)

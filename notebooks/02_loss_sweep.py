# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # 02 · Loss sweep: latency and server load of the transports vs packet loss
#
# *If 5 % of downlink packets are lost, what happens to p99 latency, and what does the
# repair cost the servers?* This notebook runs `experiments/loss_sweep.toml` — short
# polling, long polling, push and the hybrid, across downlink loss rates, several
# replications each — and draws the answer with confidence intervals.
#
# The parameters below scale the sweep down to a few minutes. With `REPLICATIONS = None`,
# `SET = {}` and `GRID = {}` it is exactly the batch experiment, and with
# `OUT_DIR = "../experiments/loss_sweep-results"` it reuses the results of
# `immodel sweep experiments/loss_sweep.toml` (sweeps are resumable: finished runs are
# never recomputed).

# %% tags=["parameters"]
SWEEP_FILE = "../experiments/loss_sweep.toml"
REPLICATIONS = 3  # None: the file's value
# the file's 600 s drain is kept: at 30 % loss a long poll can need ~500 s to repair
SET = {"workload.users": 500, "duration_s": 120.0}  # overrides of [set]
GRID = {"network.downlink_loss": [0.0, 0.05, 0.1, 0.2, 0.3]}  # overrides of [grid]
OUT_DIR = None  # None: results/<sweep>-<hash of its settings>
WORKERS = None  # local worker processes (None: every core)

# %%
# %matplotlib inline

from IPython.display import Markdown, display

from immodel.analysis import plots, stats
from immodel.experiments import load_sweep_with, run_sweep
from immodel.experiments.report import format_markdown_table, headline_table

# %% [markdown]
# ## The sweep
#
# The sweep file with this notebook's overrides, validated up front (every grid point).

# %%
sweep, out = load_sweep_with(
    SWEEP_FILE, set_overrides=SET, grid_overrides=GRID, replications=REPLICATIONS, out=OUT_DIR
)
print(sweep.description)
print(dict(sweep.grid))
print(f"{len(sweep.points())} points × {sweep.replications} replications → {out}")

# %%
results = run_sweep(sweep, out, workers=WORKERS)
results.head()

# %% [markdown]
# ## Headline table
#
# Mean over replications ± the 95 % confidence half width (Student t, n − 1 degrees of
# freedom). Replication *r* uses the same seed at every point (common random numbers),
# so differences between strategies are less noisy than each value.

# %%
keys = ["network.downlink_loss", "transport.kind"]
display(Markdown(format_markdown_table(headline_table(results, keys), keys)))

# %% [markdown]
# ## Latency
#
# The median hardly moves with loss; the tail does, in steps set by the repair timers
# (the pending-ACK retransmit timeout for push, the hold plus request timeout before a
# long poller notices a lost response, the poll interval for short polling).

# %%
plots.plot_latency(results)

# %% [markdown]
# ## Server and access-layer load
#
# Requests per second at the access layer (polls, sends, ACKs, syncs, heartbeats), the
# busy fraction of the server stages, and what the repairs cost in retransmits.

# %%
plots.plot_requests(results, x="network.downlink_loss")

# %%
plots.plot_metric(results, "server_utilization", "network.downlink_loss", "transport.kind")

# %%
plots.plot_metric(results, "retransmits_downlink", "network.downlink_loss", "transport.kind")

# %%
plots.plot_empty_polls(results)

# %% [markdown]
# ## Did anything go wrong?
#
# Lost (not delivered by the end of the drain), duplicated and reordered deliveries per
# run. With every reliability mechanism on these should all be 0.

# %%
plots.plot_outcomes(results, "transport.kind", hue="network.downlink_loss")

# %%
stats.aggregate(results, metrics=["lost", "duplicates", "order_violations"]).query("mean > 0")

# %% [markdown]
# ## The review set
#
# The standard figures as PNG (150 dpi) and SVG, the same as `immodel plot` draws.

# %%
for path in plots.sweep_figures(results, out / "figures"):
    print(path)

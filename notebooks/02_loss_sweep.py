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
from immodel.experiments.report import (
    explain_order_violations,
    format_markdown_table,
    headline_table,
)

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
# Requests per second at the access layer (polls, sends, ACKs, syncs, heartbeats) and
# what the repairs cost in retransmits. The server stages' busy fraction is printed,
# not drawn: at this load it is a fraction of a percent everywhere, so its figure
# would show nothing (sweep the users, as notebook 03 does, to load the servers).

# %%
plots.plot_requests(results, x="network.downlink_loss")

# %%
busiest = stats.aggregate(results, metrics=["server_utilization"]).sort_values("mean").iloc[-1]
print(
    f"server utilization: at most {busiest['mean']:.3%} (mean over replications), at "
    f"{plots.value_label('network.downlink_loss', busiest['network.downlink_loss'])} loss "
    f"with {plots.value_label('transport.kind', busiest['transport.kind'])}"
)

# %%
plots.plot_metric(results, "retransmits_downlink", "network.downlink_loss", "transport.kind")

# %%
plots.plot_empty_polls(results)

# %% [markdown]
# ## Did anything go wrong?
#
# Lost (not delivered by the end of the drain), duplicated and out-of-order deliveries
# per run. "Out of order" is the order of *arrival* at the app; 1:1 messages repaired
# after a loss arrive late even with every mechanism on, while the conversation is
# still displayed in timestamp order — the note below (printed when there are any)
# says how many and why.

# %%
plots.plot_outcomes(results, "transport.kind", hue="network.downlink_loss")

# %%
note = explain_order_violations(results)
if note:
    display(Markdown(note))
stats.aggregate(results, metrics=["lost", "duplicates", "order_violations"]).query("mean > 0")

# %% [markdown]
# ## Conclusion
#
# What the figures show, computed from this notebook's results (so it holds for any
# parameters, including the full batch experiment).

# %%
agg = stats.aggregate(results, metrics=["latency_p50_ms", "latency_p99_ms", "lost"], by=keys)
wide = agg.pivot_table(index=keys, columns="metric", values="mean").reset_index()
lo, hi = wide["network.downlink_loss"].min(), wide["network.downlink_loss"].max()


def _at(loss, metric):
    rows = wide[wide["network.downlink_loss"] == loss].set_index("transport.kind")[metric]
    return {plots.value_label("transport.kind", k): v for k, v in rows.items()}


p50_lo, p50_hi = _at(lo, "latency_p50_ms"), _at(hi, "latency_p50_ms")
p99_lo, p99_hi = _at(lo, "latency_p99_ms"), _at(hi, "latency_p99_ms")
worst = max(p99_hi, key=p99_hi.get)
lost_total = int(results["lost"].sum())
display(
    Markdown(
        f"- From {plots.value_label('network.downlink_loss', lo)} to "
        f"{plots.value_label('network.downlink_loss', hi)} downlink loss the median latency "
        "moves from "
        + ", ".join(f"{k} {p50_lo[k]:,.0f}→{p50_hi[k]:,.0f} ms" for k in p50_lo)
        + ".\n- The p99 grows far more: "
        + ", ".join(f"{k} {p99_lo[k]:,.0f}→{p99_hi[k]:,.0f} ms" for k in p99_lo)
        + f"; the longest tail at {plots.value_label('network.downlink_loss', hi)} is "
        f"{worst}'s ({p99_hi[worst] / max(p99_lo[worst], 1e-9):,.1f}× its loss-free p99).\n"
        f"- Deliveries lost by the end of the drain over all {len(results)} runs: "
        f"{lost_total:,}."
    )
)

# %% [markdown]
# ## The review set
#
# The standard figures as PNG (150 dpi) and SVG, the same as `immodel plot` draws.

# %%
for path in plots.sweep_figures(results, out / "figures"):
    print(path)

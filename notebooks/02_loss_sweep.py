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
# replications each — and draws the answer with confidence intervals, on both network
# models: `stream` (a real long connection: the transport resends a lost segment, loss
# becomes delay) and `datagram` (every lost packet reaches the application, whose own
# ACKs, retries and syncs must repair it). The gap between the two is what the
# application's mechanisms buy on top of TCP — and what a model without a transport
# would wrongly charge to them.
#
# The parameters below scale the sweep down to a few minutes. With `REPLICATIONS = None`,
# `SET = {}` and `GRID = {}` it is exactly the batch experiment, and with
# `OUT_DIR = "../experiments/loss_sweep-results"` it reuses the results of
# `immodel sweep experiments/loss_sweep.toml` (sweeps are resumable: finished runs are
# never recomputed).

# %% tags=["parameters"]
SWEEP_FILE = "../experiments/loss_sweep.toml"
REPLICATIONS = 3  # None: the file's value
# the file's "auto" drain is kept: each point runs as long as its repairs need
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
MODEL = "network.model"
models = sorted(results[MODEL].unique()) if MODEL in results.columns else ["stream"]
if MODEL not in results.columns:
    results[MODEL] = "stream"
by_model = {m: results[results[MODEL] == m] for m in models}
results.head()

# %% [markdown]
# ## Headline table
#
# Mean over replications ± the 95 % confidence half width (Student t, n − 1 degrees of
# freedom). Replication *r* uses the same seed at every point (common random numbers),
# so differences between strategies are less noisy than each value.

# %%
keys = [MODEL, "network.downlink_loss", "transport.kind"]
display(Markdown(format_markdown_table(headline_table(results, keys), keys)))

# %% [markdown]
# ## Latency
#
# The median hardly moves with loss. On the datagram model the tail grows in steps set
# by the application's repair timers (the pending-ACK retransmit timeout for push, the
# hold plus request timeout before a long poller notices a lost response, the poll
# interval for short polling); on the stream model it grows with the transport's
# retransmission timeouts, which are a few hundred milliseconds.

# %%
for m, part in by_model.items():
    display(plots.plot_latency(part, title=f"Latency vs downlink loss — {m} model"))

# %% [markdown]
# ## Server and access-layer load
#
# Requests per second at the access layer (polls, sends, ACKs, syncs, heartbeats) and
# what the repairs cost in retransmits. The server stages' busy fraction is printed,
# not drawn: at this load it is a fraction of a percent everywhere, so its figure
# would show nothing (sweep the users, as notebook 03 does, to load the servers).

# %%
for m, part in by_model.items():
    display(plots.plot_requests(part, x="network.downlink_loss", title=f"Requests — {m} model"))

# %%
busiest = stats.aggregate(results, metrics=["server_utilization"]).sort_values("mean").iloc[-1]
print(
    f"server utilization: at most {busiest['mean']:.3%} (mean over replications), at "
    f"{plots.value_label('network.downlink_loss', busiest['network.downlink_loss'])} loss "
    f"with {plots.value_label('transport.kind', busiest['transport.kind'])}"
)

# %%
for m, part in by_model.items():
    display(
        plots.plot_metric(
            part,
            "retransmits_downlink",
            "network.downlink_loss",
            "transport.kind",
            title=f"Application retransmits — {m} model",
        )
    )

# %%
for m, part in by_model.items():
    display(plots.plot_empty_polls(part, title=f"Empty polls — {m} model"))

# %% [markdown]
# ## Did anything go wrong?
#
# Lost (not delivered by the end of the drain), duplicated and out-of-order deliveries
# per run. "Out of order" is the order of *arrival* at the app; 1:1 messages repaired
# after a loss arrive late even with every mechanism on, while the conversation is
# still displayed in timestamp order — the note below (printed when there are any)
# says how many and why.

# %%
for m, part in by_model.items():
    display(
        plots.plot_outcomes(
            part, "transport.kind", hue="network.downlink_loss", title=f"Outcomes — {m} model"
        )
    )

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


def _at(model, loss, metric):
    rows = wide[(wide[MODEL] == model) & (wide["network.downlink_loss"] == loss)]
    rows = rows.set_index("transport.kind")[metric]
    return {plots.value_label("transport.kind", k): v for k, v in rows.items()}


lines = []
for m in models:
    p50_lo, p50_hi = _at(m, lo, "latency_p50_ms"), _at(m, hi, "latency_p50_ms")
    p99_lo, p99_hi = _at(m, lo, "latency_p99_ms"), _at(m, hi, "latency_p99_ms")
    worst = max(p99_hi, key=p99_hi.get)
    lines.append(
        f"- **{m} model.** From {plots.value_label('network.downlink_loss', lo)} to "
        f"{plots.value_label('network.downlink_loss', hi)} downlink loss the median latency "
        "moves from "
        + ", ".join(f"{k} {p50_lo[k]:,.0f}→{p50_hi[k]:,.0f} ms" for k in p50_lo)
        + "; the p99 from "
        + ", ".join(f"{k} {p99_lo[k]:,.0f}→{p99_hi[k]:,.0f} ms" for k in p99_lo)
        + f"; the longest tail at {plots.value_label('network.downlink_loss', hi)} is "
        f"{worst}'s ({p99_hi[worst] / max(p99_lo[worst], 1e-9):,.1f}× its loss-free p99)."
    )
lost_total = int(results["lost"].sum())
lines.append(
    f"- Deliveries lost by the end of the drain over all {len(results)} runs: {lost_total:,}."
)
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## The review set
#
# The standard figures as PNG (150 dpi) and SVG, the same as `immodel plot` draws.

# %%
for path in plots.sweep_figures(results, out / "figures"):
    print(path)

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
# # 03 · Cost frontier: what each transport costs the access layer, and what it buys
#
# *If we move web clients from 2 s short polling to 30 s long polling, what happens to
# p99 latency and to requests per second at the access layer?* Two sweeps:
#
# 1. `experiments/transport_cost.toml` — the four transports as users grow: requests/s
#    at the access layer, and the latency each buys;
# 2. the tuning knobs at a fixed number of users — short-poll interval, long-poll hold —
#    next to push: each configuration is one point of latency vs cost, and the Pareto
#    frontier shows which are worth considering.
#
# With `REPLICATIONS = None`, `SET = {}`, `GRID = {}` the first sweep is exactly the
# batch experiment (`OUT_DIR = "../experiments/transport_cost-results"` reuses
# `immodel sweep` results).

# %% tags=["parameters"]
SWEEP_FILE = "../experiments/transport_cost.toml"
REPLICATIONS = 3  # None: the file's value
SET = {"duration_s": 120.0}  # overrides of [set] (the drain stays "auto")
GRID = {"workload.users": [100, 300, 1000, 3000]}  # overrides of [grid]
KNOB_USERS = 1000  # users for the tuning-knob frontier
POLL_INTERVALS_S = [0.5, 1.0, 2.0, 5.0, 10.0]
LONG_POLL_HOLDS_S = [10.0, 30.0, 60.0]
KNOB_LOSS = 0.02  # downlink loss for the knob sweep: a little, so that the tails differ
OUT_DIR = None  # None: results/<sweep>-<hash of its settings>
WORKERS = None  # local worker processes (None: every core)

# %%
# %matplotlib inline

import pandas as pd
from IPython.display import Markdown, display

from immodel.analysis import plots, stats
from immodel.experiments import load_sweep, load_sweep_with, run_sweep
from immodel.experiments.report import Column, format_markdown_table, headline_table

# %% [markdown]
# ## 1 · Transports × users

# %%
sweep, out = load_sweep_with(
    SWEEP_FILE, set_overrides=SET, grid_overrides=GRID, replications=REPLICATIONS, out=OUT_DIR
)
print(sweep.description)
print(f"{len(sweep.points())} points × {sweep.replications} replications → {out}")
# .copy(): one block per dtype, so adding columns below does not warn about fragmentation
results = run_sweep(sweep, out, workers=WORKERS).copy()

# %% [markdown]
# Requests per second grow linearly with users for every transport; the slope is the
# cost per user (polls every interval for short polling, one held request per hold for
# long polling, heartbeats for push, plus the sends and ACKs everyone makes).

# %%
plots.plot_requests(results, x="workload.users")

# %%
per_user = results.assign(requests_per_user_s=results["requests_per_s"] / results["users"])
keys = ["workload.users", "transport.kind"]
columns = [
    Column("requests_per_s", "requests/s", 1),
    Column("requests_per_user_s", "requests/s per user", 3),
    Column("latency_p50_ms", "p50 latency (ms)"),
    Column("latency_p99_ms", "p99 latency (ms)"),
]
display(Markdown(format_markdown_table(headline_table(per_user, keys, columns), keys, columns)))

# %% [markdown]
# One point per users × transport; the filled markers are the configurations no other
# beats on both cost and p99 latency *for the same number of users*.

# %%
plots.plot_cost_frontier(results, within="workload.users")

# %% [markdown]
# ## 2 · The tuning knobs at a fixed number of users
#
# Short polling at several intervals, long polling at several holds, and push, on the
# same seeds (common random numbers), with a little downlink loss so that the repair
# tails show. Each is a small sweep; the frames are stacked into one table with a
# `configuration` label.

# %%
base = {
    "scenario": sweep.scenario,
    "replications": sweep.replications,
    "seed": sweep.seed,
    "set": {
        **sweep.set,
        "workload.users": KNOB_USERS,
        "network.downlink_loss": KNOB_LOSS,
    },
}
knobs = {
    "short_poll": ("transport.poll_interval_s", POLL_INTERVALS_S),
    "long_poll": ("transport.long_poll_hold_s", LONG_POLL_HOLDS_S),
    "push": ("transport.heartbeat_s", [30.0]),
}
frames = []
for kind, (key, values) in knobs.items():
    knob_sweep = load_sweep(
        {**base, "set": {**base["set"], "transport.kind": kind}, "grid": {key: values}}
    )
    knob_out = out.parent / f"{out.name}-knobs-{knob_sweep.identity_hash()[:10]}"
    frame = run_sweep(knob_sweep, knob_out, workers=WORKERS).copy()
    label = plots.key_label(key).split(" (")[0]
    frames.append(
        frame.assign(
            **{"transport.kind": kind, "configuration": [f"{label} {v:g} s" for v in frame[key]]}
        )
    )
knob_results = pd.concat(frames, ignore_index=True)
# The layout aggregate() and the plots expect: point, the configuration keys, replication…
knob_results["point"] = knob_results.groupby(
    ["transport.kind", "configuration"], sort=False
).ngroup()
metrics = stats.metric_columns(knob_results.drop(columns=[k for k, _ in knobs.values()]))
knob_results = knob_results[
    ["point", "transport.kind", "configuration", "replication", "seed", *metrics]
]
knob_results.groupby(["transport.kind", "configuration"], sort=False)[
    ["requests_per_s", "latency_p50_ms", "latency_p99_ms"]
].mean()

# %%
plots.plot_cost_frontier(
    knob_results,
    title=f"Tuning knobs, {KNOB_USERS:,} users, {KNOB_LOSS:.0%} downlink loss",
)

# %% [markdown]
# ## Conclusion
#
# Computed from the results above: the cost per user of each transport, and which
# configurations are on the frontier (lowest p99 for their cost, no loss).

# %%
users_max = results["workload.users"].max()
at_max = (
    per_user[per_user["workload.users"] == users_max]
    .groupby("transport.kind", sort=False)[["requests_per_user_s", "latency_p99_ms", "lost"]]
    .mean()
)
cheapest = at_max["requests_per_user_s"].idxmin()
knob_means = knob_results.groupby("configuration", sort=False)[
    ["requests_per_s", "latency_p99_ms", "lost"]
].mean()
clean = knob_means[knob_means["lost"] == 0]
front = clean.index[plots.pareto_optimal(clean["requests_per_s"], clean["latency_p99_ms"])]
lossy = knob_means.index[knob_means["lost"] > 0]
display(
    Markdown(
        f"- At {users_max:,} users each user costs "
        + ", ".join(
            f"{plots.value_label('transport.kind', k)} {v:.3f}"
            for k, v in at_max["requests_per_user_s"].items()
        )
        + f" requests/s; the cheapest is {plots.value_label('transport.kind', cheapest)}, "
        f"with a p99 of {at_max.loc[cheapest, 'latency_p99_ms']:,.0f} ms.\n"
        f"- Of the tuning knobs at {KNOB_USERS:,} users, the loss-free frontier is: "
        + "; ".join(
            f"{c} ({knob_means.loc[c, 'requests_per_s']:,.1f} req/s, p99 "
            f"{knob_means.loc[c, 'latency_p99_ms']:,.0f} ms)"
            for c in front
        )
        + ".\n"
        + (
            f"- Left off the frontier because they lose messages: {', '.join(lossy)}."
            if len(lossy)
            else "- No knob setting lost a message."
        )
    )
)

# %% [markdown]
# ## The review set

# %%
files = plots.sweep_figures(results, out / "figures")
fig = plots.plot_cost_frontier(knob_results, title=f"Tuning knobs, {KNOB_USERS:,} users")
files += plots.save_figure(fig, out / "figures", "cost_frontier_knobs")
for path in files:
    print(path)

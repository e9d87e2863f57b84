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
# # 01 · Quickstart: one scenario, its records, its summary
#
# `immodel.run(scenario)` simulates one scenario and returns a `Result`: the **summary**
# (the metrics of `summary.json`), and the **records** it was computed from, as pandas
# DataFrames — one row per message × recipient (`messages`), per request reaching the
# access layer (`requests`), per load sample and server node (`load`), and the delivery
# checker's event log (`trace`). Everything below reads those frames; nothing here
# simulates anything itself.
#
# The last section is an interactive explorer: pick a transport, a poll interval, a loss
# rate and a number of users, and a small scenario is re-run and redrawn.

# %% tags=["parameters"]
SCENARIO = "baseline"  # a built-in name (`immodel scenarios` lists them) or a TOML file
USERS = 1000
DURATION_S = 60.0  # sending period (s); the scenario's drain follows it
SEED = 1
INTERACTIVE = True  # False: draw the explorer once, without widgets (headless runs)
EXPLORER_USERS = 200  # small enough to re-run in about a second
EXPLORER_DURATION_S = 30.0

# %%
# %matplotlib inline
import pandas as pd
from IPython.display import Markdown, display

import immodel
from immodel import Scenario
from immodel.analysis import plots, stats
from immodel.experiments.report import explain_order_violations

# %% [markdown]
# ## One run
#
# `Scenario.load` takes a built-in name or a file, plus overrides by dotted key (the same
# names as `immodel run --set KEY=VALUE`); every key not given keeps its default, which
# describes a plain deployment.

# %%
scenario = Scenario.load(SCENARIO, {"workload.users": USERS, "duration_s": DURATION_S}, seed=SEED)
result = immodel.run(scenario)
s = result.summary
print(
    f"{scenario['name']}: {s['messages_sent']:,} messages, {s['deliveries']:,} deliveries, "
    f"{s['sim_events']:,} simulation events in {s['wall_s']:.1f} s"
)

# %% [markdown]
# ## The summary
#
# The headline metrics (all of them are in `result.summary`; `docs/metrics.md` defines
# each). Latency is send → first arrival at the recipient's app, over recipients that
# were online when the message was stored (`immodel check` on the trace summarises every
# first delivery, catch-up included, so its p50 can differ). `lost`, `duplicates` and
# `order_violations` come from the delivery checker; `order_violations` counts arrival
# order, so 1:1 messages repaired after a loss show up there even with every mechanism
# on (see the note printed below the table when there are any).

# %%
HEADLINE = [
    "messages_sent",
    "deliveries_expected",
    "deliveries",
    "lost",
    "duplicates",
    "order_violations",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "requests_per_s",
    "empty_poll_fraction",
    "server_utilization",
    "retransmits_uplink",
    "retransmits_downlink",
    "sync_pulls",
]
# object dtype: counts stay integers next to the float metrics
display(pd.Series({k: s.get(k) for k in HEADLINE}, name=scenario["name"], dtype=object).to_frame())
note = explain_order_violations(pd.DataFrame([s]))
if note:
    display(Markdown(note))

# %% [markdown]
# ## The records
#
# One row per message × recipient: when it was sent, stored and first shown, how many
# copies arrived, and by which path the first one came (`push`, `poll` or `sync`).

# %%
result.messages.head()

# %% [markdown]
# Requests reaching the access layer, by kind (heartbeats are counted in the summary
# from connected time, not recorded one by one):

# %%
result.requests.groupby("kind", observed=True).agg(
    requests=("t", "size"), messages=("messages", "sum"), bytes=("bytes", "sum")
)

# %% [markdown]
# Load samples, one per second and server node: open connections, held long polls,
# messages waiting for an ACK, and jobs waiting or in service at each server stage.

# %%
result.load.head()

# %% [markdown]
# ## Latency, by the path of the first copy
#
# Same estimator as the summary, so the overall p99 equals `latency_p99_ms`.

# %%
display(stats.latency_percentiles(result.messages, (50, 90, 99)))
stats.latency_percentiles(result.messages, (50, 90, 99), by="first_via")

# %%
plots.plot_latency_ecdf(result.messages, by="first_via")

# %%
plots.plot_load_timeline(result.load, scenario["faults"])

# %% [markdown]
# ## Explorer
#
# Each change re-runs a small scenario (`EXPLORER_USERS` users for
# `EXPLORER_DURATION_S` s) and redraws its latency distribution and load. The poll
# interval matters for short polling only; the loss is downlink packet loss.


# %%
def _ms(value):
    return "–" if value is None else f"{value:,.0f} ms"


def explore(transport="push", poll_interval_s=2.0, downlink_loss=0.0, users=EXPLORER_USERS):
    """Run a small variant of SCENARIO and draw its latency ECDF and load timeline."""
    variant = Scenario.load(
        SCENARIO,
        {
            "transport.kind": transport,
            "transport.poll_interval_s": poll_interval_s,
            "network.downlink_loss": downlink_loss,
            "workload.users": users,
            "duration_s": EXPLORER_DURATION_S,
        },
        seed=SEED,
    )
    run = immodel.run(variant)
    v = run.summary
    print(
        f"p50 {_ms(v['latency_p50_ms'])} · p99 {_ms(v['latency_p99_ms'])} · "
        f"{v['requests_per_s']:,.1f} requests/s · lost {v['lost']} · "
        f"duplicates {v['duplicates']} · out of order {v['order_violations']}"
    )
    label = f"{transport}, {downlink_loss:.0%} loss, {users} users"
    display(plots.plot_latency_ecdf(run.messages, title=f"Latency — {label}"))
    display(plots.plot_load_timeline(run.load, variant["faults"], title=f"Load — {label}"))


if INTERACTIVE:
    import ipywidgets as widgets

    widgets.interact(
        explore,
        transport=widgets.Dropdown(
            options=["short_poll", "long_poll", "push", "hybrid"], value="push"
        ),
        poll_interval_s=widgets.FloatSlider(
            value=2.0, min=0.5, max=10.0, step=0.5, continuous_update=False
        ),
        downlink_loss=widgets.FloatSlider(
            value=0.0, min=0.0, max=0.3, step=0.01, readout_format=".0%", continuous_update=False
        ),
        users=widgets.IntSlider(
            value=EXPLORER_USERS, min=10, max=2000, step=10, continuous_update=False
        ),
    )
else:
    explore()

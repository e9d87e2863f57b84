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
# # 08 · Live-broadcast rooms: what a capped room delivers, and which messages survive
#
# *A live room is not a big group chat: its audience comes and goes, nobody acknowledges
# anything, nothing is stored offline, and the server caps what a room accepts (40
# messages per second by default), dropping low priority first. This notebook asks:*
#
# 1. When a room of 100,000 viewers is offered 200 messages per second, how many reach
#    the viewers, of which priority, and how late?
# 2. Does the cap behave as its rule says — per window, min(offered, cap), high first —
#    and as Poisson theory predicts on average?
#
# The room is the built-in `live` scenario with its audience, offered rate and priority
# mix set by the parameters below. The batch version (offered rate × priority mix ×
# audience) is `experiments/live_room.toml`.

# %% tags=["parameters"]
AUDIENCE = 100_000  # viewers in the room
OFFERED_PER_S = 200.0  # messages per second the speakers offer
PRIORITY = {"high": 0.1, "normal": 0.4, "low": 0.5}  # shares of the offered messages
CAP_PER_S = 40.0  # server.live_max_msgs_per_s
MEAN_STAY_S = 300.0  # how long a viewer stays on average
DURATION_S = 60.0  # sending period (s)
COHORTS = 1000  # poll-phase cohorts (viewers are simulated as exact cohorts)

# %%
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import immodel
from immodel.analysis.live import accepted_per_window, live_latencies_ms
from immodel.analysis.theory_live import expected_accepted
from immodel.scenario import Scenario

PRIORITIES = ("high", "normal", "low")
scenario = Scenario.load(
    "live",
    {
        "duration_s": DURATION_S,
        "workload.live_audience": float(AUDIENCE),
        "workload.live_send_rate": OFFERED_PER_S,
        "workload.live_priority": PRIORITY,
        "workload.live_mean_stay_s": MEAN_STAY_S,
        "workload.live_cohorts": COHORTS,
        "server.live_max_msgs_per_s": CAP_PER_S,
    },
)
result = immodel.run(scenario)
s = result.summary

# %% [markdown]
# ## 1 · What the room delivers
#
# Offered, accepted and dropped per priority; the delivered fraction is accepted /
# offered (every accepted message reaches every viewer who stays long enough to be
# shown it: `live_missed` counts those who did not).

# %%
offered = s["live_offered_by_priority"]
dropped = s["live_dropped_by_priority"]
table = pd.DataFrame(
    {
        "offered": [offered[p] for p in PRIORITIES],
        "dropped": [dropped[p] for p in PRIORITIES],
    },
    index=list(PRIORITIES),
)
table["accepted"] = table["offered"] - table["dropped"]
table["delivered fraction"] = (
    table["accepted"] / table["offered"].where(table["offered"] > 0)
).round(3)
display(table)
viewer_messages = s["live_deliveries"] + s["live_missed"]
display(
    pd.Series(
        {
            "accepted per second": s["live_messages_accepted"] / DURATION_S,
            "viewer-deliveries": s["live_deliveries"],
            "missed (viewer-deliveries)": s["live_missed"],
            "missed share": s["live_missed"] / viewer_messages if viewer_messages else np.nan,
            "viewers joined / left": f"{s['live_viewers_joined']} / {s['live_viewers_left']}",
            "live latency p50 (ms)": s["live_latency_p50_ms"],
            "live latency p99 (ms)": s["live_latency_p99_ms"],
            "reliable messages lost": s["lost"],
        },
        name="value",
    ).to_frame()
)

# %%
lat_ms, viewers = live_latencies_ms(result.live_messages, result.live_trace)
order = np.argsort(lat_ms)
cdf = np.cumsum(viewers[order]) / viewers.sum()
fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
ax[0].plot(lat_ms[order], cdf)
ax[0].set_xlabel("speaker send → shown to a viewer (ms)")
ax[0].set_ylabel("share of viewer-deliveries")
ax[0].set_title("Live latency (ECDF over viewer-deliveries)")
per_window = accepted_per_window(result.live_messages)
steady = per_window[(per_window["window"] >= 1) & (per_window["window"] < DURATION_S - 1)]
means = steady[[f"accepted_{p}" for p in PRIORITIES]].mean()
offered_means = steady[[f"offered_{p}" for p in PRIORITIES]].mean()
x = np.arange(len(PRIORITIES))
ax[1].bar(x - 0.2, offered_means.to_numpy(), width=0.4, label="offered")
ax[1].bar(x + 0.2, means.to_numpy(), width=0.4, label="accepted")
ax[1].set_xticks(x, PRIORITIES)
ax[1].set_ylabel("messages per window (mean)")
ax[1].set_title(f"Per window, cap {CAP_PER_S:g}")
ax[1].legend()
fig.tight_layout()

# %% [markdown]
# The latency is dominated by the cap's window: a message waits for the end of its
# one-second window (half a window on average) before it is published, then one
# downlink latency to a held poll — plus the access tier's burst: every publish answers
# all held polls at once, so a large audience's responses queue on the access cores
# (the `live` scenario has 2 access nodes of 8 cores; a poll and its response cost
# 0.04 ms of access CPU per viewer). Below the cap every message is accepted; above it
# the window keeps high priority first, then normal, and low gets what is left.
#
# ## 2 · The cap against its rule and against theory
#
# Per window the rule is exact: accepted = min(offered, cap), high = min(H, cap), and so
# on. On average, with Poisson speakers, the accepted count per priority is
# `immodel.analysis.theory_live.expected_accepted` — note that E[min(H, cap)] is below
# min(E[H], cap): quiet windows cannot lend their spare slots to busy ones.

# %%
cap = int(CAP_PER_S)
rule_holds = bool((per_window["accepted"] == per_window["offered"].clip(upper=cap)).all())
theory = expected_accepted({p: OFFERED_PER_S * PRIORITY.get(p, 0.0) for p in PRIORITIES}, cap)
n = len(steady)
compare = pd.DataFrame(
    {
        "theory": [theory[p] for p in PRIORITIES],
        "measured mean": [means[f"accepted_{p}"] for p in PRIORITIES],
        "± 2 s.e.": [
            2 * steady[f"accepted_{p}"].std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
            for p in PRIORITIES
        ],
    },
    index=list(PRIORITIES),
)
display(compare.round(2))

# %%
high_frac = table.loc["high", "delivered fraction"]
low_frac = table.loc["low", "delivered fraction"]
display(
    Markdown(
        f"**Result.** Offered {OFFERED_PER_S:g} msg/s against a cap of {CAP_PER_S:g}, the "
        f"room accepted {s['live_messages_accepted'] / DURATION_S:.1f} msg/s. High priority "
        f"kept {high_frac:.1%} of its messages, low priority {low_frac:.1%}. "
        f"Every window followed the rule: {'yes' if rule_holds else 'NO'}. "
        f"{s['live_deliveries']:,} viewer-deliveries reached {AUDIENCE:,} viewers "
        f"(p50 {s['live_latency_p50_ms']:.0f} ms, p99 {s['live_latency_p99_ms']:.0f} ms); "
        f"{s['live_missed']:,} were missed by viewers who left first, none of it counted "
        f"as lost."
    )
)

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
# # 11 · Simulated vs real: does the model do what real servers do?
#
# *`immodel real` runs a scenario on this machine with real processes and sockets: logic
# servers running the protocol over a SQLite store, access servers holding TLS
# connections and HTTP polls, real crashes by SIGKILL. The simulator runs the same
# scenario, same seed — the same plan of sends — with its service times measured on
# those servers and the loopback stack's own latency added to the network's. Where do
# the two agree, and by how much?*
#
# What should agree: nothing lost or duplicated in either; the requests per delivered
# message (the protocol's own traffic); median and p99 latency within 20 %; recovery
# after a logic crash and after a connection-reset storm (an access node dies). Each
# figure is one run of each kind: on a small shared machine the real run's tail moves
# between runs.

# %% tags=["parameters"]
USERS = 40  # users of every run (immodel real holds at most 2000)
DURATION_S = 5.0  # sending period (s, wall-clock for the real runs)
DRAIN_S = 3.0  # after sending (s): on loopback nothing waits for a retransmission timeout
RATE = 0.5  # messages per second per user
LATENCY_MS = 20.0  # one-way network latency the clients add (s of the scenario)
TRANSPORTS = ["push", "long_poll", "short_poll"]  # matched runs per transport
CRASH = True  # also a logic-node crash (push, two logic nodes)
RESET_STORM = True  # also an access-node crash: its connections reset (push, two nodes)
SEED = 1

# %%
# %matplotlib inline

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from immodel.experiments.sim_vs_real import calibrate, compare, matched_runs
from immodel.scenario import Scenario

# explicit short drains are the point here (loopback, no loss): no warning about them
warnings.filterwarnings("ignore", message="drain_s")
base = {
    "workload.users": USERS,
    "workload.send_rate_per_user": RATE,
    "duration_s": DURATION_S,
    "drain_s": DRAIN_S,
    "seed": SEED,
}

# %% [markdown]
# ## Calibration on this machine
#
# The logic servers' operations timed in-process plus their own I/O per frame (the logic
# processes' CPU in a real run, less those operations, over the frames they exchanged with
# the access tier), the access servers' CPU per frame, and
# the loopback's one-way time from a real run at the comparison's latency, net of it: the
# fault proxy releases delayed bytes from its event loop's timers, and how late those fire
# belongs to the one-way time (`immodel.real.calibrate`; `benchmarks/calibrate_loopback.py`
# writes the same keys, at 0 ms, as the `calibrated-loopback` preset).

# %%
calibration = calibrate(Scenario.load("baseline", base), latency_ms=LATENCY_MS)
loopback = calibration["network.latency_ms"]["samples"]
costs = pd.Series({k: v for k, v in calibration.items() if k.endswith("_ms")}, name="ms")
display(costs.to_frame())
print(f"loopback one-way: median {loopback[len(loopback) // 2]:.2f} ms, p99 {loopback[-1]:.2f} ms")

# %% [markdown]
# ## Matched runs

# %%
pairs = {}
for kind in TRANSPORTS:
    overrides = {**base, "transport.kind": kind, "network.latency_ms": LATENCY_MS}
    if kind == "short_poll":
        overrides["transport.poll_interval_s"] = 1.0
    if kind == "long_poll":
        overrides["transport.long_poll_hold_s"] = 2.0
    pairs[kind] = matched_runs(Scenario.load("baseline", overrides), calibration)
if CRASH:
    crash = {
        **base,
        "network.latency_ms": LATENCY_MS,
        "server.nodes": 2,
        "faults": [{"kind": "server_crash", "at_s": DURATION_S / 3, "down_s": 1.0, "node": 0}],
    }
    pairs["push, logic crash"] = matched_runs(Scenario.load("baseline", crash), calibration)
if RESET_STORM:  # an access node dies: every connection it held is reset
    storm = {
        **base,
        "network.latency_ms": LATENCY_MS,
        "server.access_nodes": 2,
        "faults": [{"kind": "gateway_crash", "at_s": DURATION_S / 3, "down_s": 1.0, "node": 1}],
    }
    pairs["push, reset storm"] = matched_runs(Scenario.load("baseline", storm), calibration)
table = compare(pairs)
display(table.pivot(index="metric", columns="scenario", values="sim / real").round(3))
display(table.round(3))

# %% [markdown]
# Latency distributions, send → first shown (online recipients): the simulator's against
# the real run's, per matched scenario.

# %%
fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.2), squeeze=False)
for ax, (label, runs) in zip(axes[0], pairs.items(), strict=True):
    for name, result in zip(("simulated", "real"), runs, strict=True):
        lat = np.sort(result.messages["latency_ms"].dropna().to_numpy())
        ax.plot(lat, np.arange(1, len(lat) + 1) / max(1, len(lat)), label=name)
    ax.set_title(label)
    ax.set_xlabel("latency (ms)")
axes[0][0].set_ylabel("fraction of deliveries")
axes[0][0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Conclusion

# %%
ratios = table.set_index(["scenario", "metric"])["sim / real"]
lines = []
for label in pairs:
    clean = all(r.summary["lost"] == 0 and r.summary["duplicates"] == 0 for r in pairs[label])
    p50, p99 = ratios[(label, "latency_p50_ms")], ratios[(label, "latency_p99_ms")]
    rpd = ratios[(label, "requests_per_delivery")]
    within = abs(p50 - 1) <= 0.2 and abs(p99 - 1) <= 0.2
    verdict = "no loss and no duplicates in either" if clean else "LOSS OR DUPLICATES"
    lines.append(
        f"- **{label}**: {verdict}; requests per delivery sim/real {rpd:.3f}; "
        f"latency p50 sim/real {p50:.2f}, "
        f"p99 {p99:.2f} — {'within' if within else 'outside'} the 20 % target."
    )
display(Markdown("\n".join(lines)))

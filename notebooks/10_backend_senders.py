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
# # 10 · Backend senders: admin broadcasts and the REST rate limit
#
# *The uplink has a second entry: a business backend calls the server's REST API over
# HTTPS, signed with the admin account's UserSig, for system notices, batch sends and
# broadcasts to every user. Its messages go through the same stages, dedup and fan-out
# as the users' own. Two questions:*
#
# 1. An admin broadcasts to every user during peak user traffic: what happens to the
#    users' own p99 latency, and when?
# 2. The server admits at most `server.rest_max_calls_per_s` calls per second per app
#    (the vendor's default is 200) and refuses the rest with a retry-after. Does the
#    limit hold, and where do the refused calls go?
#
# Question 1 starts from the built-in `admin-broadcast` scenario (`immodel run
# admin-broadcast` is the same run at full scale).

# %% tags=["parameters"]
USERS = 10000  # users of the broadcast run (question 1)
DURATION_S = 40.0  # sending period of each run (s); the broadcast is half-way through
BIN_S = 0.5  # width of the time bins of the p99-over-time figure (s)
AFTER_S = 2.0  # users' p99 is compared over the messages sent this long after the broadcast
LIMIT = 50  # question 2: server.rest_max_calls_per_s
OFFERED_X = [0.5, 1.0, 1.5, 2.0]  # question 2: offered REST call rates, × LIMIT
RATE_USERS = 200  # question 2: users the REST calls are sent to
SEED = 1

# %%
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import immodel
from immodel.analysis.rest import latency_over_time
from immodel.scenario import Scenario

# %% [markdown]
# ## 1 · An admin broadcast during peak user traffic
#
# The same scenario and seed twice: with the broadcast, and without it. The users'
# workload draws from its own random stream, so both runs send the same user messages at
# the same times; what differs is the broadcast's work on the two tiers (one store job
# with an inbox copy per user, one fan-out job, a push frame and an ACK per user).

# %%
broadcast_at_s = DURATION_S / 2
base = {"workload.users": USERS, "duration_s": DURATION_S}
with_bc = immodel.run(
    Scenario.load(
        "admin-broadcast", {**base, "workload.rest_broadcasts": [broadcast_at_s]}, seed=SEED
    )
)
without_bc = immodel.run(
    Scenario.load("admin-broadcast", {**base, "workload.rest_broadcasts": []}, seed=SEED)
)

keys = [
    "user_latency_p50_ms",
    "user_latency_p99_ms",
    "rest_latency_p50_ms",
    "rest_latency_p99_ms",
    "rest_calls",
    "rest_messages",
    "deliveries",
    "lost",
    "utilization_access",
    "utilization_logic",
]
display(pd.DataFrame({"with broadcast": with_bc.summary, "without": without_bc.summary}).loc[keys])

# %%
bc = with_bc.messages[with_bc.messages["conversation"] == "broadcast"]
display(
    Markdown(
        f"The broadcast reached {bc['t_first_show'].notna().sum()} of {len(bc)} users; "
        f"its latency (the backend's call → the user's app) was "
        f"{bc['latency_ms'].min():.0f}–{bc['latency_ms'].max():.0f} ms "
        f"(median {bc['latency_ms'].median():.0f} ms)."
    )
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for result, label in ((without_bc, "without broadcast"), (with_bc, "with broadcast")):
    p99 = latency_over_time(result.messages, BIN_S, q=0.99, origin="sdk")
    axes[0].step(p99["t_s"], p99["latency_ms"], where="post", label=label)
axes[0].axvline(broadcast_at_s, color="grey", linestyle=":", label="broadcast call")
axes[0].set_xlabel("send time of the users' messages (s)")
axes[0].set_ylabel(f"p99 latency per {BIN_S:g} s bin (ms)")
axes[0].set_title("Users' own messages (online recipients)")
axes[0].legend()
axes[1].hist(bc["latency_ms"].dropna(), bins=40)
axes[1].set_xlabel("latency of the broadcast per user (ms)")
axes[1].set_ylabel("users")
axes[1].set_title(f"The broadcast to {USERS} users")
fig.tight_layout()
plt.show()


# %%
def p99_after(result):
    """Users' p99 (ms) over their messages sent in [broadcast, broadcast + AFTER_S)."""
    shifted = result.messages.assign(t_send=result.messages["t_send"] - broadcast_at_s)
    window = latency_over_time(shifted, AFTER_S, q=0.99, origin="sdk")
    row = window[window["t_s"] == 0.0]
    return float(row["latency_ms"].iloc[0]) if len(row) else float("nan")


after_with = p99_after(with_bc)
after_without = p99_after(without_bc)
display(
    Markdown(
        f"Users' p99 over the messages sent in the {AFTER_S:g} s after the broadcast call: "
        f"{after_with:.1f} ms with it, {after_without:.1f} ms without; over the whole run "
        f"{with_bc.summary['user_latency_p99_ms']:.1f} vs "
        f"{without_bc.summary['user_latency_p99_ms']:.1f} ms."
    )
)

# %% [markdown]
# ## 2 · The REST rate limit
#
# Single sends at an offered rate `r` against a limit `L`. Theory: no whole second
# admits more than `L` calls; the accepted rate is `min(r, L)` while calls are offered;
# every refused call is retried after its retry-after, so
# `offered + retries = accepted + refused`; above the limit a backlog of `(r − L)` calls
# per second builds up and the REST messages' latency grows with it. The default
# `drain_s = "auto"` lasts until that backlog is admitted (`rest_backlog_s` in
# `immodel/sim/backend.py`), so no REST message is lost to the end of the run.

# %%
rows = []
per_second = {}
for x in OFFERED_X:
    rate = x * LIMIT
    sc = Scenario.load(
        "baseline",
        {
            "workload.users": RATE_USERS,
            "workload.send_rate_per_user": 0.0,
            "duration_s": DURATION_S,
            "workload.rest_rate_per_s": rate,
            "server.rest_max_calls_per_s": LIMIT,
        },
        seed=SEED,
    )
    r = immodel.run(sc)
    s = r.summary
    req = r.requests[r.requests["kind"].astype(str) == "rest"]
    counts = np.bincount(np.floor(req["t"].to_numpy()).astype(int))
    per_second[x] = counts
    in_window = counts[: int(DURATION_S)]
    rows.append(
        {
            "offered r (calls/s)": rate,
            "theory min(r, L)": min(rate, LIMIT),
            "accepted/s while sending": in_window.mean(),
            "max accepted in a second": s["rest_calls_max_per_s"],
            "offered": s["rest_calls_offered"],
            "accepted": s["rest_calls"],
            "refused": s["rest_refused"],
            "retries": s["rest_retries"],
            "offered + retries − accepted − refused": s["rest_calls_offered"]
            + s["rest_retries"]
            - s["rest_calls"]
            - s["rest_refused"],
            "REST p50 (ms)": s["rest_latency_p50_ms"],
            "REST p99 (ms)": s["rest_latency_p99_ms"],
        }
    )
limits = pd.DataFrame(rows)
display(limits)

# %%
fig, ax = plt.subplots(figsize=(8, 4))
for x, counts in per_second.items():
    ax.step(np.arange(len(counts)), counts, where="post", label=f"offered {x:g} × L")
ax.axhline(LIMIT, color="black", linestyle="--", label=f"limit L = {LIMIT}/s")
ax.axvline(DURATION_S, color="grey", linestyle=":", label="end of sending")
ax.set_xlabel("time (s)")
ax.set_ylabel("REST calls accepted in the second")
ax.set_title("Accepted calls per second never exceed the limit")
ax.legend()
fig.tight_layout()
plt.show()
assert limits["max accepted in a second"].max() <= LIMIT

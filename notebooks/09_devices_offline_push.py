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
# # 09 · Several devices per user, and offline push end to end
#
# Two paths of a real deployment that a one-device, timestamp-only model leaves out:
#
# 1. **Devices.** A user has a phone and often a web client at the same time; each has its
#    own connection, cursors and dedup, and a message reaches every device of every
#    recipient and the sender's other devices. How much fan-out, ACK traffic and sync load
#    does a web client add?
# 2. **Offline push.** A message for an offline device leads to a vendor notification; the
#    user opens the app, logs in and catches up. A group message to a large, mostly
#    offline group makes a burst of notifications and, a little later, a spike of logins
#    at the access tier. And at login the backlog should cross the network once, not
#    twice (`server.login_catchup`).
#
# Everything here is `immodel.run` on scenarios; the model lives in `immodel`.

# %% tags=["parameters"]
USERS = 2000
DURATION_S = 60.0
WEB_SHARES = [0.0, 0.3, 0.6]
OPEN_DELAY_S = 20.0  # mean delay from a notification to opening the app

# %%
# %matplotlib inline

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from immodel import Scenario, run


def devices(web_share: float) -> dict:
    table = {"phone": {"share": 1.0, "transport": "push"}}
    if web_share > 0:
        table["web"] = {"share": web_share, "transport": "long_poll"}
    return table


# %% [markdown]
# ## 1 · Devices: what a web client adds
#
# The same users and the same messages (same seed, 20 % to groups), with no web client, or
# one for 30 % / 60 % of the users on long polling. Each web client is a device of its
# own: it gets every message its user gets, and the messages its user sends from the
# phone.

# %%
rows = []
for share in WEB_SHARES:
    sc = Scenario.load(
        "baseline",
        {
            "workload.users": USERS,
            "duration_s": DURATION_S,
            "workload.group_share": 0.2,
            "workload.groups": 10,
            "workload.group_size": min(20, USERS),
            "workload.devices": devices(share),
        },
    )
    r = run(sc)
    s = r.summary
    kinds = r.requests["kind"].astype(str)
    rows.append(
        {
            "web share": share,
            "messages": s["messages_sent"],
            "device copies per message": s["deliveries_expected"] / max(1, s["messages_sent"]),
            "requests/s": s["requests_per_s"],
            "acks": int((kinds == "ack").sum()),
            "polls": int((kinds == "poll").sum()),
            "sync requests": int((kinds == "sync").sum()),
            "lost": s["lost"],
            "duplicates": s["duplicates"],
            "latency p99 phone (ms)": s["delivery_by_device"]["phone"]["latency_p99_ms"],
            "latency p99 web (ms)": s["delivery_by_device"].get("web", {}).get("latency_p99_ms"),
        }
    )
by_share = pd.DataFrame(rows).set_index("web share")
by_share

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
by_share["device copies per message"].plot.bar(ax=axes[0], color="tab:blue")
axes[0].set_ylabel("device copies per message")
axes[0].set_title("fan-out: recipient devices + the sender's other devices")
by_share[["acks", "polls", "sync requests"]].plot.bar(ax=axes[1])
axes[1].set_ylabel("requests in the run")
axes[1].set_title("ACK, poll and sync traffic")
fig.tight_layout()

# %% [markdown]
# A 1:1 message goes to `1 + 2s` devices on average for a web share `s` (the recipient's
# phone, its web client with probability `s`, the sender's other device with probability
# `s`); group messages add `s` per member. Each web client on long polling adds its polls
# (held and answered) on top; its ACKs ride on the polls.

# %% [markdown]
# ## 2 · Offline push: the notification burst and the login spike
#
# 70 % of the devices are offline at the start and there is no churn: a device comes back
# only when its user opens the app on a notification (half of them do, after an
# exponential delay of mean `OPEN_DELAY_S`). Every message goes to one group of all the
# users. The vendor limits the app to 200 notifications per second, and a device with an
# unread notification is not notified again (collapsing).

# %%
def offline_group(catchup: str):
    return Scenario.load(
        "baseline",
        {
            "workload.users": USERS,
            "duration_s": DURATION_S,
            "drain_s": 8 * OPEN_DELAY_S,
            "workload.send_rate_per_user": 0.0005,
            "workload.group_share": 1.0,
            "workload.groups": 1,
            "workload.group_size": USERS,
            "workload.online_fraction": 0.3,
            "workload.push_open_prob": 0.5,
            "workload.push_open_delay_s": OPEN_DELAY_S,
            "workload.devices": devices(0.3),
            "server.offline_push_dist": "exponential",
            "server.offline_push_rate_per_s": 200.0,
            "server.offline_push_collapse": True,
            "server.login_catchup": catchup,
        },
    )


push = run(offline_group("one_transfer"))
s = push.summary
print(
    f"messages {s['messages_sent']}, notifications sent {s['offline_push_sent']}, "
    f"dropped {s['offline_push_dropped']} (over the rate limit {s['offline_push_refused']}), "
    f"collapsed {s['offline_push_collapsed']}, apps opened {s['push_opens']}"
)
print(
    f"read latency p50 {s['read_latency_p50_ms'] or float('nan'):.0f} ms, "
    f"p99 {s['read_latency_p99_ms'] or float('nan'):.0f} ms "
    f"(online recipients: p99 {s['latency_p99_ms'] or float('nan'):.0f} ms)"
)

# %%
horizon = s["horizon_s"]
bins = np.arange(0.0, horizon + 1.0, 1.0)
notified = push.messages["t_offline_push"].dropna().to_numpy()
logins = push.requests.loc[push.requests["kind"].astype(str) == "login", "t"].to_numpy()
fig, ax = plt.subplots(figsize=(10, 3.5))
ax.hist(notified, bins=bins, alpha=0.6, label="notifications reaching devices")
ax.hist(logins, bins=bins, alpha=0.6, label="logins at the access tier")
ax.set_xlabel("time (s)")
ax.set_ylabel("per second")
ax.set_title("a group message to a mostly offline group: notification burst, then logins")
ax.legend()
fig.tight_layout()

# %% [markdown]
# The notifications arrive together (capped by the vendor's limit), the logins follow
# spread by the users' delay in opening the app: the access tier sees the spike a few
# tens of seconds later, flattened by that delay.
#
# ### Catch-up in one transfer
#
# At login the server used to push the offline queue **and** answer the reconnect sync
# with stale cursors, so the backlog crossed the network twice. With
# `server.login_catchup = "one_transfer"` the reconnect sync page alone carries it.

# %%
both = run(offline_group("queue_and_sync"))
catchup = pd.DataFrame(
    {
        catch: {
            "backlog at logins": r.summary["login_backlog"],
            "pushed from the queue": r.summary["login_queue_pushed"],
            "carried by sync pages": sum(
                v["sync_items"] for v in r.summary["delivery_by_device"].values()
            ),
            "bytes down": r.summary["bytes_down"],
            "lost": r.summary["lost"],
            "duplicates": r.summary["duplicates"],
        }
        for catch, r in (("queue_and_sync", both), ("one_transfer", push))
    }
).T
catchup

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
catchup[["backlog at logins", "pushed from the queue", "carried by sync pages"]].plot.bar(ax=ax)
ax.set_ylabel("messages")
ax.set_title("what crosses the network at login")
fig.tight_layout()

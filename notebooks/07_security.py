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
# # 07 · Security: what a hostile network costs, and what the defences buy
#
# *The deployment promises that messages are not stolen: HTTPDNS against DNS hijacking,
# an encrypted channel against interception and tampering, and a UserSig (HMAC-SHA256)
# for every login. Three questions, each answered with numbers from runs:*
#
# 1. How many messages does a plaintext channel expose at a given tamper rate, and what
#    does the encrypted channel turn them into?
# 2. What does HTTPDNS cost and save in connect latency against local DNS, with and
#    without hijacking?
# 3. How many logins per hour does a UserSig lifetime of 1 h, 1 d or 180 d cause for a
#    given user population, and what does a short lifetime buy against a replayed token?
#
# Every run starts from the built-in `hostile-network` scenario and switches on only
# what the question studies. The batch version of the grid is `experiments/security.toml`.

# %% tags=["parameters"]
USERS = 300  # users per run
DURATION_S = 120.0  # sending period of each run (s)
REPLICATIONS = 2  # seeds per configuration
TAMPER_RATES = [0.001, 0.01, 0.05]  # question 1
HIJACK_PROB = 0.1  # question 2: share of local DNS answers hijacked
TTLS_S = [3600, 86400, 15552000]  # question 3: 1 h, 1 d, 180 d
POPULATION = 1_000_000  # question 3: the user population to scale logins per hour to
REPLAY_AFTER_S = 7200.0  # question 3: a captured token is replayed this long after

# %%
# %matplotlib inline

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import immodel
from immodel.analysis.stats import aggregate
from immodel.scenario import Scenario

# Everything the hostile-network scenario switches on, off: each question turns on its own.
QUIET = {
    "workload.users": USERS,
    "duration_s": DURATION_S,
    "security.dns": "none",
    "security.dns_hijack_prob": 0.0,
    "security.tamper_prob": 0.0,
    "security.forged_per_s": 0.0,
    "security.attack_logins_per_s": 0.0,
    "security.usersig_ttl_s": 15552000,
    "security.usersig_issued": "run_start",
}


def runs(configs, metrics):
    """One row per configuration × replication: the configuration's keys and metrics."""
    rows = []
    for config in configs:
        for rep in range(REPLICATIONS):
            summary = immodel.run(
                Scenario.load("hostile-network", {**QUIET, **config}, seed=1 + rep)
            ).summary
            rows.append({**config, "replication": rep, **{m: summary[m] for m in metrics}})
    return pd.DataFrame(rows)


def table(frame, by, metrics):
    """Mean and 95 % interval over replications, one row per configuration."""
    agg = aggregate(frame, metrics, by=by)
    return agg.pivot_table(index=by, columns="metric", values="mean").reset_index()


# %% [markdown]
# ## 1 · Tampering: plaintext shows it, the encrypted channel repairs it
#
# An on-path attacker alters each message pushed or polled down with probability *p*.
# On plaintext the app shows the altered message (`tampered_deliveries`; the trace's
# `digest` column lets `immodel check` flag each one); theory says about
# `deliveries × p`. On the encrypted channel the record MAC fails, the connection is
# reset and the message comes again by the normal repairs: `tamper_detected` counts the
# resets, and nothing altered is shown, nothing lost, nothing doubled.

# %%
m1 = ["deliveries", "tampered_deliveries", "tamper_detected", "lost", "duplicates", "logins"]
t1 = runs(
    [
        # no churn here: every recipient stays online, so any loss would be the attacker's
        {
            "security.channel": ch,
            "security.tamper_prob": p,
            "workload.mean_online_s": 0.0,
            "workload.mean_offline_s": 0.0,
        }
        for ch in ("plaintext", "encrypted")
        for p in TAMPER_RATES
    ],
    m1,
)
q1 = table(t1, ["security.channel", "security.tamper_prob"], m1)
q1["deliveries × p"] = q1["deliveries"] * q1["security.tamper_prob"]
display(q1)
plain = q1[q1["security.channel"] == "plaintext"]
enc = q1[q1["security.channel"] == "encrypted"]
display(
    Markdown(
        "Plaintext: "
        + ", ".join(
            f"at p = {r['security.tamper_prob']:g}, {r['tampered_deliveries']:.1f} altered "
            f"messages shown of {r['deliveries']:.0f} (theory {r['deliveries × p']:.1f})"
            for _, r in plain.iterrows()
        )
        + f". Encrypted: {enc['tampered_deliveries'].sum():.0f} altered messages shown, "
        f"{enc['tamper_detected'].sum():.1f} tampered frames detected and repaired "
        f"(lost {enc['lost'].max():.1f} at most, duplicates {enc['duplicates'].max():.1f})."
    )
)

# %% [markdown]
# ## 2 · HTTPDNS against local DNS
#
# Local DNS answers from a cache (`security.dns_cache_ttl_s`) or with a lookup; a
# hijacked answer sends the client to an attacker, the TLS handshake fails there and the
# SDK resolves again through HTTPDNS: a whole extra handshake on the connect path.
# HTTPDNS is a slower request (`security.httpdns_latency_ms`) but is never hijacked.
# Connect latency is from the SDK's decision to connect to the login reply.

# %%
m2 = [
    "connect_latency_p50_ms",
    "connect_latency_p99_ms",
    "hijacked_connections",
    "dns_lookups",
    "httpdns_requests",
]
t2 = runs(
    [
        {"security.dns": dns, "security.dns_hijack_prob": h}
        for dns in ("none", "local", "httpdns")
        for h in (0.0, HIJACK_PROB)
    ],
    m2,
)
q2 = table(t2, ["security.dns", "security.dns_hijack_prob"], m2)
display(q2)


def _p(dns, h, col):
    row = q2[(q2["security.dns"] == dns) & (q2["security.dns_hijack_prob"] == h)]
    return float(row[col].iloc[0])


cost_p50 = _p("httpdns", 0.0, "connect_latency_p50_ms") - _p("local", 0.0, "connect_latency_p50_ms")
cost_p99 = _p("httpdns", 0.0, "connect_latency_p99_ms") - _p("local", 0.0, "connect_latency_p99_ms")
display(
    Markdown(
        f"Without an attacker, HTTPDNS costs {cost_p50:+.0f} ms at the median connect "
        f"against local DNS (p99 {cost_p99:+.0f} ms). With {HIJACK_PROB:.0%} of local "
        f"answers hijacked, local DNS led to "
        f"{_p('local', HIJACK_PROB, 'hijacked_connections'):.1f} failed handshakes per run and "
        f"its p99 connect became {_p('local', HIJACK_PROB, 'connect_latency_p99_ms'):.0f} ms; "
        f"HTTPDNS had {_p('httpdns', HIJACK_PROB, 'hijacked_connections'):.0f} and "
        f"{_p('httpdns', HIJACK_PROB, 'connect_latency_p99_ms'):.0f} ms."
    )
)

# %% [markdown]
# ## 3 · UserSig lifetime: logins per hour, and replays
#
# Tokens are issued uniformly over the last lifetime (a population that has run for a
# while). Each expiry costs a token fetch and a login (`relogins`), whether it comes at
# login (`auth_expired`, then a fetch) or mid-session (the server ends the session). In
# steady state a user relogs every lifetime: `POPULATION × 3600 / ttl` per hour. An
# attacker who captured a token replays it `REPLAY_AFTER_S` later: a UserSig is a bearer
# token, accepted from any device until it expires — only the lifetime limits it.

# %%
m3 = ["relogins", "horizon_s", "replays_accepted", "hostile_logins_accepted", "logins_rejected"]
t3 = runs(
    [
        {
            "security.usersig_ttl_s": ttl,
            "security.usersig_issued": "steady_state",
            "security.attack_logins_per_s": 1.0,
            "security.replay_after_s": REPLAY_AFTER_S,
        }
        for ttl in TTLS_S
    ],
    m3,
)
q3 = table(t3, ["security.usersig_ttl_s"], m3)
q3["relogins per user-hour (run)"] = q3["relogins"] / USERS / (q3["horizon_s"] / 3600.0)
q3["relogins per user-hour (theory)"] = 3600.0 / q3["security.usersig_ttl_s"]
q3[f"logins per hour for {POPULATION:,} users"] = q3["relogins per user-hour (run)"] * POPULATION
q3["replays accepted"] = q3["replays_accepted"] > 0
display(q3)
display(
    Markdown(
        "; ".join(
            f"lifetime {int(r['security.usersig_ttl_s'])} s: "
            f"{r[f'logins per hour for {POPULATION:,} users']:,.0f} logins per hour for "
            f"{POPULATION:,} users (theory "
            f"{POPULATION * r['relogins per user-hour (theory)']:,.0f}), "
            f"a token replayed {REPLAY_AFTER_S:g} s after capture "
            + ("accepted" if r["replays accepted"] else "refused")
            for _, r in q3.iterrows()
        )
        + ". With 180-day tokens the simulated window is too short to see an expiry; the "
        "theory column is the rate."
    )
)

# %% [markdown]
# ## The three answers in one figure

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
ax = axes[0]
for ch, marker in (("plaintext", "o"), ("encrypted", "s")):
    rows = q1[q1["security.channel"] == ch]
    ax.plot(rows["security.tamper_prob"], rows["tampered_deliveries"], marker, label=ch)
ax.plot(plain["security.tamper_prob"], plain["deliveries × p"], "k--", label="deliveries × p")
ax.set(
    xlabel="tamper probability per message",
    ylabel="altered messages shown per run",
    title="1 · what the channel lets through",
)
ax.legend()
ax = axes[1]
for dns in ("local", "httpdns"):
    rows = q2[q2["security.dns"] == dns]
    ax.plot(rows["security.dns_hijack_prob"], rows["connect_latency_p99_ms"], "o-", label=dns)
ax.set(
    xlabel="DNS hijack probability",
    ylabel="connect latency p99 (ms)",
    title="2 · HTTPDNS vs local DNS",
)
ax.legend()
ax = axes[2]
ax.loglog(
    q3["security.usersig_ttl_s"],
    POPULATION * q3["relogins per user-hour (theory)"],
    "k--",
    label="theory: population × 3600 / ttl",
)
ax.loglog(
    q3["security.usersig_ttl_s"],
    q3[f"logins per hour for {POPULATION:,} users"].where(lambda v: v > 0),
    "o",
    label="simulated",
)
ax.set(
    xlabel="UserSig lifetime (s)",
    ylabel=f"logins per hour, {POPULATION:,} users",
    title="3 · the cost of a short lifetime",
)
ax.legend()
fig.tight_layout()
plt.show()

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
# # 06 · Validation: the simulator against queueing and protocol theory
#
# Design reviewers can trust immodel's numbers where it provably agrees with theory. This
# notebook puts, side by side, for each mechanism of the model:
#
# * the **analytic value**, derived for the model *as built* (which stages a message
#   passes, when a poll is answered, when a timer starts — see `immodel/sim/world.py`),
#   from `immodel.analysis.theory`;
# * the **simulated value**, the mean over independent replications (seeds) with its
#   95 % Student-t confidence interval (`immodel.analysis.stats.mean_ci`),
#
# over a range of parameters. Lines are theory, dots with error bars are simulation.
# The pass/fail versions of these comparisons, with fixed seeds and 99.9 % bands, are
# `tests/validation/` (`python -m pytest tests/validation -q`).
#
# Notation: `d` one-way delay, `S` the server time of a message's path, `T` the poll
# interval, `H` the long-poll hold, `λ` the rate at which one user *receives* messages,
# `p_up`/`p_down` the loss of each direction. Client sync is switched off wherever it
# would mix a second delivery mechanism into the one being checked (a 1:1 receipt
# triggers a sync that can fetch messages the transport has not delivered yet).

# %% tags=["parameters"]
replications = 3  # independent seeds per point
scale = "small"  # "small": a minute in all; "full": longer runs, tighter intervals
first_seed = 1

# %%
# %matplotlib inline
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import immodel
from immodel import Scenario
from immodel.analysis import plots, stats
from immodel.analysis import theory as th
from immodel.analysis import theory_stream as ts

plots.use_style()  # the figures below look like every other immodel figure
# The drains below are chosen per check (a queue check measures over the run as it
# stands; a latency check needs only the next poll or hold), shorter than the generic
# bound that immodel.sim.faults.required_drain_s gives: its warning is expected here.
warnings.filterwarnings("ignore", category=immodel.DrainWarning)

FULL = scale == "full"
USERS = 200 if FULL else 40
DURATION_S = 120.0 if FULL else 30.0
SEEDS = list(range(first_seed, first_seed + replications))
BASE = {
    "workload.users": USERS,
    "workload.send_rate_per_user": 0.2,
    "duration_s": DURATION_S,
    "drain_s": 15.0,
    "network.latency_ms": 50.0,
    # sections 1-6 check the per-packet theory: the datagram model, and the logic
    # stages' time alone (the access tier's per-request and per-frame work left out)
    "network.model": "datagram",
    "reliability.sync": False,
    "server.access_request_ms": 0.0,
    "server.access_frame_ms": 0.0,
    "server.tls_handshake_ms": 0.0,
    "server.heartbeat_ms": 0.0,
    "server.hold_ms": 0.0,
    # a poll's or a sync page's service time is its base cost alone in the formulas
    "server.poll_ms_per_message": 0.0,
    "server.ack_ms": 0.0,
    "server.sync_ms_per_conversation": 0.0,
    "server.sync_ms_per_item": 0.0,
}
ZERO_STAGES = {
    f"server.{k}": 0.0
    for k in (
        "auth_ms",
        "checks_ms",
        "recent_contacts_ms",
        "store_ms",
        "status_ms",
        "fanout_ms_per_recipient",
        "poll_ms",
        "poll_ms_per_message",
        "sync_ms",
        "sync_ms_per_conversation",
        "sync_ms_per_item",
        "ack_ms",
        "retransmit_ms",
    )
}


def scenario(**overrides) -> Scenario:
    values = dict(BASE)
    values.update(overrides)
    return Scenario.load("baseline", values)


def replicate(sc: Scenario, measure) -> stats.MeanCI:
    """Run ``sc`` once per seed; ``measure(result)`` → one number; mean and 95 % CI."""
    return stats.mean_ci([measure(immodel.run(Scenario.load(sc, seed=s))) for s in SEEDS])


def table(rows) -> pd.DataFrame:
    """Rows of (x, analytic, MeanCI) → a frame with the simulated mean and its CI."""
    return pd.DataFrame(
        [{"x": x, "analytic": a, "simulated": ci.mean, "ci95": ci.half_width} for x, a, ci in rows]
    )


def plot(ax, frame, label, color, x_fine=None, theory=None):
    """Simulated points with 95 % error bars; the analytic curve (fine grid if given)."""
    if x_fine is not None:
        ax.plot(x_fine, [theory(x) for x in x_fine], color=color, lw=1.2)
    else:
        ax.plot(frame["x"], frame["analytic"], color=color, lw=1.2)
    ax.errorbar(
        frame["x"],
        frame["simulated"],
        yerr=frame["ci95"].fillna(0),
        fmt="o",
        ms=4,
        color=color,
        capsize=3,
        label=label,
    )


def latency_s(result) -> float:
    return result.summary["latency_mean_ms"] / 1000.0


def polls(result) -> pd.DataFrame:
    req = result.requests
    return req[req["kind"].astype(str) == "poll"]


CHECKS: list[dict] = []  # one row per comparison, for the summary table at the end


def record(section, point, analytic, ci):
    CHECKS.append(
        {
            "check": section,
            "point": point,
            "analytic": analytic,
            "simulated": ci.mean,
            "ci95": ci.half_width,
        }
    )


# %% [markdown]
# ## 1 · Push: latency = 2d + S
#
# A message goes app → uplink (d) → auth → checks → recent contacts → store → downlink
# stage (status lookup + fan-out) → push (d) → app. At light load the stages do not
# queue, so the mean latency is **2d + S** with S the sum of the stages' mean service
# times, `theory.message_path_service_s` (2.02 ms with the defaults). The sender's reply
# travels in parallel and does not delay delivery. The mean holds for any delay
# distribution (the two delays add), so the lognormal point uses its mean
# m·e^{σ²/2}.

# %%
rows = []
for d_ms in (10.0, 50.0, 100.0, 200.0):
    sc = scenario(**{"transport.kind": "push", "network.latency_ms": d_ms})
    analytic = th.push_mean_latency_s(d_ms / 1000, th.message_path_service_s(sc))
    ci = replicate(sc, latency_s)
    rows.append((d_ms, analytic, ci))
    record("push latency (s)", f"d={d_ms:g} ms", analytic, ci)
push = table(rows)
lognormal = {"dist": "lognormal", "median": 40.0, "p99": 300.0}
sc = scenario(**{"transport.kind": "push", "network.latency_ms": lognormal})
ln_analytic = th.push_mean_latency_s(
    th.one_way_delay_mean_s(lognormal), th.message_path_service_s(sc)
)
ln_ci = replicate(sc, latency_s)
record("push latency (s)", "lognormal 40/300 ms", ln_analytic, ln_ci)

fig, ax = plt.subplots(figsize=(5, 3.2))
plot(ax, push, "constant d", "C0")
ax.errorbar(
    [th.one_way_delay_mean_s(lognormal) * 1000],
    [ln_ci.mean],
    yerr=[ln_ci.half_width or 0],
    fmt="s",
    color="C1",
    capsize=3,
    label="lognormal d (at its mean)",
)
ax.plot([th.one_way_delay_mean_s(lognormal) * 1000], [ln_analytic], "x", color="C1")
ax.set(xlabel="one-way delay d (ms)", ylabel="mean latency (s)", title="Push: 2d + S")
ax.legend()
push

# %% [markdown]
# ## 2 · Short polling
#
# **Fixed rate** (`transport.poll_schedule = "fixed_rate"`, the default). Client *i*
# sends polls at φᵢT + kT (φᵢ uniform, set once). A poll reaches the server d later, is
# served by the poll stage (s_poll), takes everything in the recipient's outbox, and the
# response reaches the app d later. A message enters the outbox at t₀ + d + S. It leaves
# with the first poll whose service completes after that; the completions are a
# stationary process with gaps G = T + s_{k+1} − s_k, independent of the Poisson
# messages, so the wait is the forward recurrence time E[G²]/(2E[G]) = T/2 (+Var(s)/T,
# negligible). Then
#
# $$L = \tfrac{T}{2} + 2d + S,$$
#
# the poll's own service time cancelling (it delays the snapshot and the response
# alike). **Fixed delay** (`"fixed_delay"`): the next poll leaves T after a response
# arrives, and a response arrives 2d + s_poll after its poll left, so the period is
# P = T + 2d + s_poll and
#
# $$L = \tfrac{P}{2} + 2d + S = \tfrac{T}{2} + 3d + S + \tfrac{s_{poll}}{2}.$$
#
# **Polls per second**: N/T (fixed rate: any window of k periods holds exactly kN
# polls), N/(T + 2d + s_poll) (fixed delay).
#
# **Empty polls.** A poll is empty iff no message entered the outbox during the period
# before it (the ACKs of the previous response ride on it and are applied first). What is
# λ here? The workload is one Poisson stream of rate N·r; each message has one recipient,
# uniform among the N − 1 *other* users, so a user receives at λ = r(N − 1)/(N − 1) = r
# (with N_on online: r(N_on − 1)/(N − 1)). Hence the empty fraction **e^{−λP}**, counted
# over polls inside the sending period (during the drain every poll is empty).
#
# Fixed-delay clients all start polling at t = 0 and stay in lockstep (their period is
# the same constant); to keep poll-stage queueing out of the period the fixed-delay
# points use `server.poll_ms = 0`.

# %%
intervals = [0.5, 1.0, 2.0, 4.0, 8.0]
rows_rate, rows_delay, rows_count = [], [], []
for T in intervals:
    sc = scenario(
        **{"transport.kind": "short_poll", "transport.poll_interval_s": T, "drain_s": T + 10.0}
    )
    path = th.message_path_service_s(sc)
    a = th.short_poll_mean_latency_s(T, 0.05, path)
    ci = replicate(sc, latency_s)
    rows_rate.append((T, a, ci))
    record("short poll latency (s), fixed rate", f"T={T:g}", a, ci)
    sc = sc.with_overrides({"transport.poll_schedule": "fixed_delay", "server.poll_ms": 0.0})
    a = th.short_poll_mean_latency_s(T, 0.05, path, schedule="fixed_delay")
    ci = replicate(sc, latency_s)
    rows_delay.append((T, a, ci))
    record("short poll latency (s), fixed delay", f"T={T:g}", a, ci)

fixed_rate, fixed_delay = table(rows_rate), table(rows_delay)
fig, ax = plt.subplots(figsize=(5, 3.2))
plot(ax, fixed_rate, "fixed rate: T/2 + 2d + S", "C0")
plot(ax, fixed_delay, "fixed delay: T/2 + 3d + S", "C3")
ax.set(xlabel="poll interval T (s)", ylabel="mean latency (s)", title="Short polling, d = 50 ms")
ax.legend()
pd.concat({"fixed rate": fixed_rate, "fixed delay": fixed_delay})

# %%
rates = [0.05, 0.1, 0.25, 0.5, 1.0]
rows = []
T = 2.0
for r in rates:
    sc = scenario(
        **{
            "transport.kind": "short_poll",
            "transport.poll_interval_s": T,
            "workload.send_rate_per_user": r,
        }
    )
    lam = th.receive_rate_per_user(r, sc["workload.users"])

    def empty_share(result, start=T + 1.0, end=sc["duration_s"]):
        p = polls(result)
        p = p[(p["t"] >= start) & (p["t"] < end)]
        return float((p["messages"] == 0).mean())

    a = th.short_poll_empty_fraction(lam, T)
    ci = replicate(sc, empty_share)
    rows.append((lam * T, a, ci))
    record("empty poll fraction, T = 2 s", f"λT={lam * T:g}", a, ci)
empty = table(rows)

n_rate = []
for T in intervals:
    sc = scenario(**{"transport.kind": "short_poll", "transport.poll_interval_s": T})
    window = T * max(1, math.floor((sc["duration_s"] - 5.0) / T))  # whole periods only

    def poll_rate(result, window=window):
        t = polls(result)["t"]
        return ((t >= 5.0) & (t < 5.0 + window)).sum() / window

    n_rate.append((T, th.short_poll_rate_per_s(sc["workload.users"], T), replicate(sc, poll_rate)))
poll_rate = table(n_rate)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
fine = np.linspace(0.02, 2.2, 100)
plot(ax1, empty, "simulated", "C0", fine, lambda x: math.exp(-x))
ax1.set(xlabel="λT", ylabel="empty polls", title="Empty polls: e^{−λT}")
plot(ax2, poll_rate, f"N = {USERS}", "C0")
ax2.set(
    xlabel="poll interval T (s)",
    ylabel="polls per second",
    title="Poll rate: N / T",
    xscale="log",
    yscale="log",
)
ax2.set_xticks(intervals, [f"{T:g}" for T in intervals])
ax2.minorticks_off()
for a in (ax1, ax2):
    a.legend()
empty

# %% [markdown]
# ## 3 · Long polling
#
# What the model does (`_poll_served`, `_fan_out`, `_poll_response_arrives`): the poll
# is served by the poll stage; if the recipient's outbox is empty the server holds it for
# H — **the hold timer starts after the poll stage's service**; a message fanned out to
# a held poll is answered at once; the client re-polls **as soon as** any response
# arrives. So after each response comes a *blind window* b = 2d + s_poll (response down,
# new poll up, poll served) in which arriving messages wait in the outbox.
#
# **Cycle** (response to response). If a message arrived during the blind window
# (probability 1 − e^{−λb}) the poll is answered when served; otherwise it is held until
# the first arrival or H:
#
# $$C = b + e^{-\lambda b}\,\frac{1 - e^{-\lambda H}}{\lambda},$$
#
# the textbook C = e^{−2λd}(1 − e^{−λH})/λ + 2d with s_poll = 0. One poll per cycle:
# **N/C polls per second**; an idle client polls every H + b.
#
# **Latency.** A message that finds a poll held is answered at once: 2d + S. One that
# arrives in a blind window waits for its end, b/2 on average; by PASTA a Poisson arrival
# finds a blind window with probability b/C, so
#
# $$L = 2d + S + \frac{b^2}{2C} \quad (= 2d + S + 2d^2/C \text{ with } b = 2d).$$
#
# **Empty polls**: nothing in the blind window nor in the hold, e^{−λ(b + H)}.
#
# All long-poll clients send their first poll at t = 0, in lockstep; the cycle has atoms
# (at b and at b + H), so the poll *count* per second needs a warm-up of several cycles
# before it is stationary. The mean gap between a client's successive polls does not.

# %%
d_lp, H = 0.2, 2.0
rows_c, rows_l, rows_e = [], [], []
for lam in (0.1, 0.25, 0.5, 1.0, 2.0):
    sc = scenario(
        **{
            "transport.kind": "long_poll",
            "transport.long_poll_hold_s": H,
            "network.latency_ms": d_lp * 1000,
            "workload.send_rate_per_user": lam,
            "drain_s": H + 10.0,
        }
    )
    s_poll = sc["server.poll_ms"] / 1000
    start, end = H + 1.0, sc["duration_s"] - H - 2 * d_lp

    def mean_gap(result, start=start, end=end):
        p = polls(result).sort_values(["user", "t"], kind="stable")
        t = p["t"].to_numpy()
        nxt = p.groupby("user", sort=False)["t"].shift(-1).to_numpy()
        keep = (t >= start) & (t < end) & ~np.isnan(nxt)
        return float((nxt[keep] - t[keep]).mean())

    def empty_share(result, start=start, end=end):
        p = polls(result)
        p = p[(p["t"] >= start) & (p["t"] < end)]
        return float((p["messages"] == 0).mean())

    runs = [immodel.run(Scenario.load(sc, seed=s)) for s in SEEDS]
    c = th.long_poll_cycle_s(lam, H, d_lp, s_poll)
    ci = stats.mean_ci([mean_gap(r) for r in runs])
    rows_c.append((lam, c, ci))
    record("long poll cycle C (s), H = 2 s, d = 200 ms", f"λ={lam:g}", c, ci)
    a = th.long_poll_mean_latency_s(lam, H, d_lp, th.message_path_service_s(sc), s_poll)
    ci = stats.mean_ci([latency_s(r) for r in runs])
    rows_l.append((lam, a, ci))
    record("long poll latency (s), H = 2 s, d = 200 ms", f"λ={lam:g}", a, ci)
    a = th.long_poll_empty_fraction(lam, H, d_lp, s_poll)
    ci = stats.mean_ci([empty_share(r) for r in runs])
    rows_e.append((lam, a, ci))
    record("long poll empty fraction", f"λ={lam:g}", a, ci)

cycle, lp_latency, lp_empty = table(rows_c), table(rows_l), table(rows_e)
fine = np.linspace(0.05, 2.2, 80)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
plot(axes[0], cycle, "simulated", "C0", fine, lambda x: th.long_poll_cycle_s(x, H, d_lp, 2e-4))
axes[0].set(xlabel="λ (1/s)", ylabel="cycle C (s)", title="Cycle = 1 / (polls per s per client)")
plot(
    axes[1],
    lp_latency,
    "simulated",
    "C2",
    fine,
    lambda x: th.long_poll_mean_latency_s(x, H, d_lp, 0.00202, 2e-4),
)
axes[1].axhline(2 * d_lp + 0.00202, color="grey", ls=":", label="2d + S")
axes[1].set(xlabel="λ (1/s)", ylabel="mean latency (s)", title="Latency: 2d + S + b²/2C")
plot(
    axes[2],
    lp_empty,
    "simulated",
    "C3",
    fine,
    lambda x: th.long_poll_empty_fraction(x, H, d_lp, 2e-4),
)
axes[2].set(xlabel="λ (1/s)", ylabel="empty polls", title="Empty: e^{−λ(b+H)}")
for a in axes:
    a.legend()
pd.concat({"cycle": cycle, "latency": lp_latency, "empty": lp_empty})

# %% [markdown]
# ## 4 · Loss and the reliability mechanisms
#
# Every packet is lost independently, p_up client → server, p_down server → client.
#
# * **Sender retries** until a reply arrives: an attempt ends the retries only if the
#   send *and* its reply survive, q = (1 − p_up)(1 − p_down) (a retry of a stored message
#   is answered from the server's dedup window). Transmissions per message:
#   (1 − (1 − q)^M)/q with at most M attempts, **1/q = 1/(1 − p)²** for p each way and
#   M = ∞.
# * The **pending-ACK queue** re-pushes until an ACK (uplink) arrives: 1/q pushes per
#   recipient, no limit.
# * **Copies reaching the client**: the last push arrives; an earlier attempt arrived iff
#   its push survived and its ACK was lost: 1 + (1 − p_down)p_up/q = **1/(1 − p_up)** —
#   downlink loss cancels (1/(1 − p) for p each way). Client dedup suppresses the
#   p_up/(1 − p_up) extra copies; with `reliability.client_dedup = false` the app shows them.
# * **Latency penalty.** For *delivery* only the send must get through (the reply's fate
#   does not matter), and only the push must (the ACK's does not). After f failures the
#   copy that gets through left τ(1 + b + … + b^{f−1}) late (backoff b); with
#   P(F = f) = (1 − p)p^f, conditioned on success within M attempts:
#   E = Σ_{f<M}(1 − p)p^f τ(f)/(1 − p^M) → **τp/(1 − p)** (constant) and
#   **τ₀p/(1 − 2p)** (doubling) as M → ∞; the downlink term is τ_ack·p_down/(1 − p_down).
# * **Give up vs never stored**: the sender is told "failed" with (1 − q)^M, but the
#   message is never stored only with p_up^M: the difference, (1 − q)^M − p_up^M, was
#   stored and is delivered although the sender was told it failed — the article's
#   failure 3.
# * **Short polling under loss**: a waiting message leaves with a poll only if the poll
#   and its response both survive (a lost response leaves it un-ACKed in the outbox), so
#   it waits T(1 − q)/q longer, plus the sender's retry penalty.
# * **Every mechanism off**: one send, one push: delivered (1 − p_up)(1 − p_down), per
#   member in groups.

# %%
LOSSY = {
    "transport.kind": "push",
    "workload.send_rate_per_user": 0.4,
    "reliability.uplink_timeout_s": 1.0,
    "reliability.ack_timeout_s": 1.0,
    "drain_s": 30.0,
}


def lossy(**extra) -> Scenario:
    return scenario(**{**LOSSY, **extra})


ps = [0.05, 0.15, 0.3, 0.45]
rows_tx, rows_push, rows_copies, rows_lat, rows_lat2 = [], [], [], [], []
for p in ps:
    sc = lossy(
        **{
            "network.uplink_loss": p,
            "network.downlink_loss": p,
            "reliability.client_dedup": False,
            "reliability.uplink_max_attempts": 50,
            "reliability.uplink_timeout_s": 0.5,
            "reliability.ack_timeout_s": 0.5,
        }
    )
    runs = [immodel.run(Scenario.load(sc, seed=s)) for s in SEEDS]

    def pairs(r):
        m = r.messages
        return m[m["stored"] & m["online_at_store"]]

    for rows, name, analytic, measure in (
        (
            rows_tx,
            "sender transmissions",
            th.mean_uplink_transmissions(p, p, 50),
            lambda r: r.messages.drop_duplicates("msg_id")["attempts"].mean(),
        ),
        (
            rows_push,
            "pushes per recipient",
            th.mean_push_transmissions(p, p),
            lambda r: 1 + r.summary["retransmits_downlink"] / len(pairs(r)),
        ),
        (
            rows_copies,
            "copies at client (dedup off)",
            th.mean_copies_at_client(p, p),
            lambda r: pairs(r)["copies"].mean(),
        ),
    ):
        ci = stats.mean_ci([measure(r) for r in runs])
        rows.append((p, analytic, ci))
        record(name, f"p={p:g} each way", analytic, ci)
    for backoff, rows in ((1.0, rows_lat), (2.0, rows_lat2)):
        if backoff * p >= 0.5:
            continue
        sc2 = lossy(
            **{
                "network.uplink_loss": p,
                "reliability.uplink_backoff": backoff,
                "reliability.uplink_max_attempts": 8,
                "reliability.uplink_timeout_s": 0.25 if backoff > 1 else 1.0,
                "drain_s": 70.0,
            }
        )
        tau = sc2["reliability.uplink_timeout_s"]
        analytic = th.retry_penalty_s(p, tau, backoff, 8)
        base = th.push_mean_latency_s(0.05, th.message_path_service_s(sc2))
        ci = replicate(sc2, lambda r, base=base: latency_s(r) - base)
        rows.append((p, analytic, ci))
        record(f"uplink retry penalty (s), backoff {backoff:g}", f"p_up={p:g}", analytic, ci)

fine = np.linspace(0.01, 0.47, 60)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
plot(
    axes[0],
    table(rows_tx),
    "sender transmissions",
    "C0",
    fine,
    lambda x: th.mean_uplink_transmissions(x, x, 50),
)
plot(
    axes[0],
    table(rows_push),
    "pushes per recipient",
    "C1",
    fine,
    lambda x: th.mean_push_transmissions(x, x),
)
axes[0].set(xlabel="loss p (each way)", ylabel="per message", title="Transmissions: 1/(1 − p)²")
plot(
    axes[1],
    table(rows_copies),
    "copies reaching the client",
    "C2",
    fine,
    lambda x: th.mean_copies_at_client(x, x),
)
axes[1].set(xlabel="loss p (each way)", ylabel="copies", title="Copies: 1/(1 − p_up)")
plot(
    axes[2],
    table(rows_lat),
    "constant τ = 1 s",
    "C0",
    fine,
    lambda x: th.retry_penalty_s(x, 1.0, 1.0, 8),
)
plot(
    axes[2],
    table(rows_lat2),
    "doubling τ₀ = 0.25 s",
    "C3",
    np.linspace(0.01, 0.2, 40),
    lambda x: th.retry_penalty_s(x, 0.25, 2.0, 8),
)
axes[2].set(xlabel="uplink loss p_up", ylabel="extra latency (s)", title="Retry penalty")
for a in axes:
    a.legend()

# %%
rows_fail, rows_never = [], []
p_fail = 0.3
for m in (1, 2, 3, 4):
    sc = lossy(
        **{
            "network.uplink_loss": p_fail,
            "network.downlink_loss": p_fail,
            "reliability.uplink_max_attempts": m,
        }
    )
    runs = [immodel.run(Scenario.load(sc, seed=s)) for s in SEEDS]
    per_msg = [r.messages.drop_duplicates("msg_id") for r in runs]
    a = th.send_failure_probability(p_fail, p_fail, m)
    ci = stats.mean_ci([pm["send_failed"].mean() for pm in per_msg])
    rows_fail.append((m, a, ci))
    record("sender told 'failed'", f"p=0.3, M={m}", a, ci)
    a = th.never_stored_probability(p_fail, m)
    ci = stats.mean_ci([(~pm["stored"]).mean() for pm in per_msg])
    rows_never.append((m, a, ci))
    record("never stored", f"p=0.3, M={m}", a, ci)

rows_off = []
ALL_OFF = {
    "reliability.uplink_retry": False,
    "reliability.server_dedup": False,
    "reliability.downlink_ack": False,
    "reliability.client_dedup": False,
}
for p in (0.1, 0.3, 0.5):
    for groups, label in ((0.0, "1:1"), (1.0, "group of 10")):
        sc = lossy(
            **ALL_OFF,
            **{
                "network.uplink_loss": p,
                "network.downlink_loss": p,
                "workload.group_share": groups,
                "workload.group_size": 10,
            },
        )
        a = th.unprotected_delivered_fraction(p, p)
        ci = replicate(sc, lambda r: r.messages["t_first_show"].notna().mean())
        rows_off.append((f"{label}, p={p:g}", a, ci))
        record("delivered, every mechanism off", f"{label}, p={p:g}", a, ci)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ms = np.arange(1, 5)
plot(
    ax1,
    table(rows_fail),
    "told 'failed': (1 − q)^M",
    "C3",
    ms,
    lambda m: th.send_failure_probability(p_fail, p_fail, m),
)
plot(
    ax1,
    table(rows_never),
    "never stored: p_up^M",
    "C0",
    ms,
    lambda m: th.never_stored_probability(p_fail, m),
)
ax1.set(xlabel="max attempts M", ylabel="share of messages", title="p = 0.3 each way", yscale="log")
off = table(rows_off)
ax2.errorbar(
    range(len(off)),
    off["simulated"],
    yerr=off["ci95"].fillna(0),
    fmt="o",
    capsize=3,
    label="simulated",
)
ax2.plot(range(len(off)), off["analytic"], "_", ms=18, color="k", label="(1 − p)²")
ax2.set_xticks(range(len(off)), off["x"], rotation=30, ha="right")
ax2.set(ylabel="delivered share", title="Every mechanism off")
for a in (ax1, ax2):
    a.legend()
off

# %% [markdown]
# ## 5 · Server stages as queues
#
# Each stage is `server.workers` identical servers with one FIFO queue. To load one
# stage, every other stage's mean is set to 0 (a 0 ms stage takes no time), so the send
# path's Poisson stream reaches the store stage unchanged:
#
# * exponential service → **M/M/c**: W_q = C(c, a)·S/(c − a), Erlang C, a = λS;
# * constant service → **M/D/1**: ρS/(2(1 − ρ)), half of M/M/1;
# * lognormal (CV = 1 in the model) → M/G/1 by **Pollaczek–Khinchine**,
#   ρS(1 + CV²)/(2(1 − ρ)), the M/M/1 mean.
#
# Utilisation is λS/c while the sending period feeds the stage. **Little's law**,
# L = λW, holds on every stage as a sample-path identity (the summary's
# `queue_mean_<stage>` = `arrival_rate_<stage>` × `wait_mean_ms_<stage>`), checked below.
#
# Mean waits at utilisation ≥ 0.7 converge slowly (successive waits are strongly
# correlated): at `scale = "small"` the error bars are wide.

# %%
S = 0.010
customers = 8000 if FULL else 1500
rows_q = {}
for servers, dist in ((1, "exponential"), (2, "exponential"), (1, "constant")):
    rows_q[(servers, dist)] = []
    for rho in (0.3, 0.5, 0.7):
        lam = rho * servers / S
        sc = Scenario.load(
            "baseline",
            {
                **BASE,
                **ZERO_STAGES,
                "server.store_ms": S * 1000,
                "server.workers": servers,
                "server.service_dist": dist,
                "workload.users": 100,
                "workload.send_rate_per_user": lam / 100,
                "duration_s": customers / lam,
                "drain_s": 1.0,
            },
        )
        a = th.mean_stage_wait_s(lam, S, servers, dist)
        ci = replicate(sc, lambda r: r.summary["wait_mean_ms_store"] / 1000)
        rows_q[(servers, dist)].append((rho, a, ci))
        record(f"store-stage wait (s), {dist}, c={servers}", f"ρ={rho:g}", a, ci)

fine = np.linspace(0.05, 0.75, 60)
fig, ax = plt.subplots(figsize=(5.5, 3.4))
for (servers, dist), color in zip(rows_q, ("C0", "C1", "C2"), strict=True):
    name = {"exponential": f"M/M/{servers}", "constant": "M/D/1"}[dist]
    plot(
        ax,
        table(rows_q[(servers, dist)]),
        name,
        color,
        fine,
        lambda x, c=servers, dd=dist: th.mean_stage_wait_s(x * c / S, S, c, dd),
    )
ax.set(xlabel="utilisation ρ", ylabel="mean wait (s)", title="Store stage, S = 10 ms")
ax.legend()

# %%
busy = Scenario.load(
    "baseline",
    {
        **BASE,
        "workload.users": 200,
        "workload.send_rate_per_user": 0.5,
        "workload.group_share": 0.3,
        "workload.groups": 10,
        "workload.group_size": 10,
        "network.uplink_loss": 0.05,
        "network.downlink_loss": 0.05,
        "reliability.sync": True,
        "transport.kind": "hybrid",
        "server.workers": 1,
        "server.screening_enabled": True,
        "server.auth_ms": 2.0,
        "server.checks_ms": 2.0,
        "server.screening_ms": 3.0,
        "server.recent_contacts_ms": 2.0,
        "server.store_ms": 4.0,
        "server.status_ms": 1.0,
        "server.poll_ms": 1.0,
        "server.sync_ms": 2.0,
        "duration_s": 30.0,
        "drain_s": 20.0,
    },
)
s = immodel.run(busy).summary
little = pd.DataFrame(
    {
        stage: {
            "λ (1/s)": s[f"arrival_rate_{stage}"],
            "W (ms)": s[f"wait_mean_ms_{stage}"],
            "λW": s[f"arrival_rate_{stage}"] * s[f"wait_mean_ms_{stage}"] / 1000,
            "L (time-average queue)": s[f"queue_mean_{stage}"],
        }
        for stage in [k.removeprefix("arrival_rate_") for k in s if k.startswith("arrival_rate_")]
    }
).T
little["L − λW"] = little["L (time-average queue)"] - little["λW"]
little

# %% [markdown]
# ### The poll stage under many short-polling clients is *not* a Poisson stream
#
# It is tempting to say that the empty polls of many clients with random phases load the
# poll stage like a Poisson stream. The model's fixed-rate clients poll at φᵢT + kT: the
# poll stage sees **N periodic streams** with uniform phases — exactly N arrivals per
# period, far less variable than Poisson. That is the N·D/D/1 queue (constant service).
# Its unfinished work at a random time has the closed form of Roberts & Virtamo (1991),
#
# $$P(V > x) = \sum_{x < k \le N} \binom{N}{k} u^k (1-u)^{N-k} \frac{D - N + x}{D - k + x},
# \quad u = \frac{k - x}{D},$$
#
# in service units, with D = T/S. An arriving poll finds the work of the *other* N − 1
# sources at a time uniform in their cycle, so its mean wait is E[V] of the
# (N − 1)·D/D/1 queue (checked against a Lindley recursion in the tests). It is below
# M/D/1 at the same utilisation and reaches it only like 1/N (at ρ = 0.8: −45 % with 20
# clients, −17 % with 100, −0.5 % with 10⁴). With exponential poll service the same
# structure holds; only the service variability is added.

# %%
rho_p = 0.8
rows_p = []
poll_reps = max(4 * replications, 8)
for n in (5, 10, 20, 50, 100):
    sc = Scenario.load(
        "baseline",
        {
            **BASE,
            **ZERO_STAGES,
            "transport.kind": "short_poll",
            "transport.poll_interval_s": 1.0,
            "workload.users": n,
            "workload.send_rate_per_user": 0.0,
            "server.poll_ms": 1000.0 * rho_p / n,
            "server.workers": 1,
            "server.service_dist": "constant",
            "duration_s": 30.0,
            "drain_s": 0.5,
        },
    )
    service = rho_p / n
    waits = [
        immodel.run(Scenario.load(sc, seed=first_seed + k)).summary["wait_mean_ms_poll"]
        / 1000
        / service
        for k in range(poll_reps)
    ]
    a = th.periodic_sources_mean_wait_s(n, 1.0, service) / service
    ci = stats.mean_ci(waits)
    rows_p.append((n, a, ci))
    record("poll-stage wait / service, ρ = 0.8", f"N={n}", a, ci)

poll_stage = table(rows_p)
ns = np.unique(np.geomspace(2, 2000, 40).astype(int))
fig, ax = plt.subplots(figsize=(5.5, 3.4))
plot(
    ax,
    poll_stage,
    "simulated poll stage",
    "C0",
    ns,
    lambda n: th.periodic_sources_mean_wait_s(int(n), 1.0, rho_p / n) / (rho_p / n),
)
ax.axhline(th.md1_mean_wait_s(rho_p, 1.0), color="C3", ls="--", label="M/D/1 (Poisson)")
ax.set(
    xscale="log",
    xlabel="clients N",
    ylabel="mean wait / service",
    title="Poll stage at ρ = 0.8: N·D/D/1, not M/D/1",
)
ax.legend()
poll_stage

# %% [markdown]
# ## 6 · Pull versus push freshness (Bozdag et al. 2007)
#
# Bozdag, Mesbah & van Deursen compared push and pull for AJAX: pull matches push's data
# coherence only when the pull interval is at most the publish interval, and pays with
# traffic that grows as the interval shrinks. In the model, a *publish* is a message sent
# to the user (Poisson, rate λ, publish interval P = 1/λ), and a message is **fresh** if
# it is shown before the next message to the same user is sent. With a latency L
# independent of the next Exp(λ) gap, P(fresh) = E[e^{−λL}]:
#
# * push, L ≈ 2d + S: e^{−λ(2d+S)};
# * fixed-rate pull, L = 2d + S + U·T: e^{−λ(2d+S)}·(1 − e^{−λT})/(λT).
#
# With Bozdag's *periodic* publishing (every P), pull is fully coherent as soon as
# T ≤ P − (2d + S) — the sharp threshold of their paper (dashed). The model's Poisson
# publishing smooths it: pull keeps 95 % of push's freshness only for T ≲ P/10, and has
# 63 % of it at T = P.
#
# **Traffic**: a polling client sends N/T polls (its ACKs ride on them), a push client an
# ACK per message plus a heartbeat every 30 s. The request curves cross at
# T* = 1/(λ + 1/heartbeat) ≈ P: below it pull costs more than push, above it pull is
# cheaper but already much staler. Pull never gets push's freshness for less traffic.

# %%
LAM, HB = 0.5, 30.0
ratios = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0]


def fresh_share(result, longest):
    fresh, counted = th.fresh_fraction(result.messages, result.scenario["duration_s"] - longest)
    return fresh / counted


def control_requests(result):
    """Polls, or ACKs + heartbeats, per second per user, inside the sending period."""
    sc, s = result.scenario, result.summary
    req = result.requests
    kind = req["kind"].astype(str)
    inside = (req["t"] >= 5) & (req["t"] < sc["duration_s"] - 5) & kind.isin(["poll", "ack"])
    heartbeats = s["requests_heartbeat"] / s["horizon_s"] / sc["workload.users"]
    return inside.sum() / (sc["duration_s"] - 10) / sc["workload.users"] + heartbeats


common = {"workload.send_rate_per_user": LAM, "transport.heartbeat_s": HB}
sc_push = scenario(**common, **{"transport.kind": "push"})
base = th.push_mean_latency_s(0.05, th.message_path_service_s(sc_push))
push_runs = [immodel.run(Scenario.load(sc_push, seed=s)) for s in SEEDS]
push_fresh = stats.mean_ci([fresh_share(r, 1.0) for r in push_runs])
push_traffic = stats.mean_ci([control_requests(r) for r in push_runs])
record("freshness, push", f"λ={LAM:g}", th.fresh_fraction_push(LAM, base), push_fresh)

rows_f, rows_t = [], []
for ratio in ratios:
    T = ratio / LAM
    sc = scenario(
        **common,
        **{"transport.kind": "short_poll", "transport.poll_interval_s": T, "drain_s": T + 10},
    )
    runs = [immodel.run(Scenario.load(sc, seed=s)) for s in SEEDS]
    a = th.fresh_fraction_short_poll(LAM, T, base)
    ci = stats.mean_ci([fresh_share(r, T + 1.0) for r in runs])
    rows_f.append((ratio, a, ci))
    record("freshness, short poll", f"T={ratio:g}·P", a, ci)
    rows_t.append((ratio, 1 / T, stats.mean_ci([control_requests(r) for r in runs])))

fresh, traffic = table(rows_f), table(rows_t)
crossing = th.polls_matching_push_traffic_interval_s(LAM, HB) * LAM
fine = np.geomspace(0.05, 5, 80)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
plot(
    ax1,
    fresh,
    "pull (simulated, Poisson publishing)",
    "C0",
    fine,
    lambda x: th.fresh_fraction_short_poll(LAM, x / LAM, base),
)
ax1.axhline(th.fresh_fraction_push(LAM, base), color="C3", label="push (theory)")
ax1.errorbar(
    [0.06],
    [push_fresh.mean],
    yerr=[push_fresh.half_width or 0],
    fmt="s",
    color="C3",
    capsize=3,
    label="push (simulated)",
)
ax1.plot(
    fine,
    [th.fresh_fraction_periodic_publish(1 / LAM, x / LAM, base) for x in fine],
    "k--",
    lw=0.8,
    label="pull, periodic publishing",
)
ax1.set(
    xscale="log",
    xlabel="poll interval / publish interval  (T/P)",
    ylabel="fresh share",
    title="Freshness",
)
plot(ax2, traffic, "pull: polls", "C0", fine, lambda x: LAM / x)
ax2.axhline(push_traffic.mean, color="C3", label="push: ACKs + heartbeats")
ax2.axvline(crossing, color="grey", ls=":", label=f"crossing T*/P = {crossing:.2f}")
ax2.set(
    xscale="log",
    yscale="log",
    xlabel="T/P",
    ylabel="requests / s / user",
    title="Traffic to stay informed",
)
for a in (ax1, ax2):
    a.legend(fontsize=7)
fresh

# %% [markdown]
# ## 7 · The stream model: loss becomes delay
#
# On a long connection (`network.model = "stream"`, the default) the transport resends a
# lost segment after its retransmission timeout, doubling it on each repeated loss
# (RFC 6298). Theory (`immodel.analysis.theory_stream`): a push sent on a connection
# whose RTO has settled at its floor (`network.rto_min_ms` = 200 ms on a 100 ms
# round trip) arrives after D + S_K, S_k = RTO·(2^k − 1), with K the losses before the
# first success — P(K = k) = (1 − p)p^k, mean D + RTO·p/(1 − 2p), and
# P(delay ≤ D + S_k) = 1 − p^(k+1). Below, the store → first-show time of pushes at
# downlink segment loss p, every server step at 0 ms, after each connection has had
# time to settle its RTO (the handshake seeds it; a few more round trips bring it to the
# floor): ten times the users of the sections above at a quarter of the message rate,
# over three times as long, and only messages stored after the first third. A push can
# also wait behind an earlier frame of the same connection that is being resent
# (head-of-line blocking), which the formula leaves out; sparse traffic per connection
# keeps that rare. The exact check, with no other traffic on the connection, is
# `tests/validation/test_stream_theory.py`.

# %%
STREAM = {
    **ZERO_STAGES,
    "network.model": "stream",
    "workload.users": 10 * USERS,
    "workload.send_rate_per_user": 0.05,
    "duration_s": 3 * DURATION_S,
}
RTO_S = ts.converged_rto_s(0.1, 0.2)


def push_delay_s(result) -> pd.Series:
    m = result.messages
    settled = m["stored"] & (m["t_stored"] > DURATION_S)
    return (m.loc[settled, "t_first_show"] - m.loc[settled, "t_stored"]).dropna()


stream_rows, stream_cdf = [], []
for p in (0.0, 0.05, 0.1, 0.2):
    sc = scenario(**STREAM, **{"network.downlink_loss": p})
    runs = [immodel.run(Scenario.load(sc, seed=s)) for s in SEEDS]
    ci = stats.mean_ci([push_delay_s(r).mean() for r in runs])
    mean = ts.segment_delay_mean_s(0.05, p, RTO_S)
    stream_rows.append((p, mean, ci))
    record("7 stream: push delay mean (s)", f"p = {p}", mean, ci)
    delays = pd.concat([push_delay_s(r) for r in runs])
    for k in range(3):
        edge = 0.05 + ts.retransmission_wait_s(k, RTO_S) + 1e-6
        stream_cdf.append(
            {
                "p": p,
                "k": k,
                "theory P(delay ≤ D + S_k)": 1.0 - p ** (k + 1),
                "simulated": float((delays <= edge).mean()),
                "n": len(delays),
            }
        )
stream = table(stream_rows)
fig, ax = plt.subplots(figsize=(5, 3.2))
fine = np.linspace(0.0, 0.2, 50)
plot(ax, stream, "stream push delay", "C0", fine, lambda p: ts.segment_delay_mean_s(0.05, p, RTO_S))
ax.set(xlabel="downlink segment loss p", ylabel="store → show (s)", title="Loss becomes delay")
ax.legend(fontsize=7)
pd.DataFrame(stream_cdf).round(4)

# %% [markdown]
# ## Summary
#
# Every comparison above: the analytic value, the simulated mean over the replications
# and its 95 % half-width, and how many half-widths apart they are (≲ 2 is what agreement
# looks like; with two or three replications the intervals are wide). The test-suite
# version uses fixed seeds, more replications and 99.9 % bands.
#
# A caveat on reading this column with few replications. The workload's Poisson count
# moves a run's receive rate by ~1/√(messages) (1 % at 10⁴ messages), and the empty-poll,
# long-poll cycle and freshness figures move with it. Seeds 1–5 happen to draw counts
# with much less spread than that (and slightly above nominal), so with
# `first_seed = 1` their intervals for those rows come out too narrow and a few rows sit
# 2–3 half-widths from theory at `scale = "full"`; over 24 other seeds the long-poll
# cycle, its empty share and the freshness at T = P/10 agree within 1.5 standard errors.
# The tests compare each replication with the formula at the rate that run realized, and
# pass on other seed sets as well
# (`IMMODEL_VALIDATION_SEED_OFFSET`); here, try `first_seed = 101`.

# %%
summary = pd.DataFrame(CHECKS)
summary["gap / ci95"] = (summary["simulated"] - summary["analytic"]).abs() / summary["ci95"]
pd.set_option("display.max_rows", 200)
summary.round(5)

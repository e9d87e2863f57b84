"""Analytic values for the simulator as built: the formulas its validation checks.

Each function is a closed form (or an exact finite sum) from queueing or protocol theory,
derived for immodel's event order — which stages a message passes, when a poll is
answered, when a timer starts — not for a textbook's idealisation. The validation tests
(``tests/validation``) and ``notebooks/06_validation.py`` compare simulated values
(with confidence intervals over replications) against these; neither defines a formula
of its own.

Units: times in **seconds**, rates in **per second**, probabilities in [0, 1]; a name
ending in ``_ms`` is in milliseconds. ``d`` is the mean one-way network delay, ``λ`` the
rate at which one user *receives* messages, ``S`` the mean server time of a message's
path (:func:`message_path_service_s`).

The model facts the formulas rest on (``immodel/sim/world.py``):

* **Send path.** app submit → uplink ``d`` → auth → checks → [callback] → [screening]
  → recent contacts → store (commit: *stored*) → downlink stage (status lookup +
  fan-out) → per recipient: push (downlink ``d``), or the recipient's poll outbox. The
  sender's reply goes down in parallel and does not delay delivery. Latency is app
  submit → first show at the recipient's app.
* **Workload.** One Poisson stream of rate ``N_on · r`` (``r`` =
  ``workload.send_rate_per_user``); the sender is uniform over online users and a 1:1
  recipient uniform over the *other* users, so an online user receives at
  ``λ = r (N_on − 1)/(N − 1)`` (:func:`receive_rate_per_user`), as a Poisson stream.
* **Short polling, fixed rate.** Client ``i`` sends polls at ``φ_i T + kT``
  (``φ_i`` uniform); a poll reaches the server ``d`` later, is served by the poll
  stage, takes the outbox and the response travels ``d`` back. ACKs ride on the next
  poll and are applied before it is served.
* **Short polling, fixed delay.** The next poll is sent ``T`` after a response arrives.
* **Long polling.** A poll is served by the poll stage; an empty outbox makes the server
  hold it for ``H`` (the hold timer starts after the poll stage's service); a message
  fanned out to a held poll is answered at once; the client re-polls as soon as any
  response arrives.
* **Loss.** Every packet is lost independently (``p_up`` client → server, ``p_down``
  server → client). The sender retries after ``timeout · backoff^k`` until a reply
  arrives or ``max_attempts`` are spent; the pending-ACK queue re-pushes every
  ``ack_timeout`` until an ACK (an uplink packet) arrives, without limit.
* **Server stages.** Each stage is ``workers`` identical servers with one FIFO queue;
  service times are exponential, constant or lognormal (coefficient of variation 1)
  with the configured mean; a stage with mean 0 takes no time.

References: Erlang C and the Pollaczek–Khinchine formula (Kleinrock, *Queueing
Systems I*, 1975); the N·D/D/1 queue (Roberts & Virtamo, "The superposition of periodic
cell arrival streams in an ATM multiplexer", IEEE Trans. Commun. 39(2), 1991); pull
versus push freshness (Bozdag, Mesbah & van Deursen, "A comparison of push and pull
techniques for AJAX", WSE 2007).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

Z_99 = NormalDist().inv_cdf(0.99)

#: Coefficient of variation of each ``server.service_dist`` (see ``immodel.sim.stage``:
#: the lognormal's σ² = ln 2 gives CV² = e^{σ²} − 1 = 1).
SERVICE_CV = {"exponential": 1.0, "constant": 0.0, "lognormal": 1.0}


# --------------------------------------------------------------------------------------
# The model's parameters, read from a scenario
# --------------------------------------------------------------------------------------
def one_way_delay_mean_s(spec: Any) -> float:
    """Mean one-way delay (s) of a ``network.latency_ms`` value (ms).

    A number is a constant; ``lognormal`` with ``median`` m and ``p99`` has
    σ = ln(p99/m)/z₀.₉₉ and mean m·e^{σ²/2}; ``exponential`` its ``mean``;
    ``empirical`` the mean of its ``samples``; ``constant`` its ``value``.
    """
    if isinstance(spec, int | float):
        return float(spec) / 1000.0
    dist = spec["dist"]
    if dist == "constant":
        return spec["value"] / 1000.0
    if dist == "exponential":
        return spec["mean"] / 1000.0
    if dist == "lognormal":
        sigma = math.log(spec["p99"] / spec["median"]) / Z_99
        return spec["median"] / 1000.0 * math.exp(sigma * sigma / 2.0)
    return float(np.mean(spec["samples"])) / 1000.0


def callback_mean_s(mean_s: float, timeout_s: float) -> float:
    """Mean time of the before-send callback: an exponential latency of mean ``mean_s``
    cut at ``timeout_s`` (a timeout ends the wait), E[min(X, τ)] = m(1 − e^{−τ/m})."""
    if mean_s <= 0:
        return 0.0
    return mean_s * (1.0 - math.exp(-timeout_s / mean_s))


def message_path_service_s(scenario: Mapping[str, Any], recipients: int = 1) -> float:
    """Mean server time (s) of one message at light load (no queueing), submit → fan-out.

    The sum of the mean service times of the stages a message passes in
    ``immodel.sim.world``: auth + checks + [callback, if enabled] + [screening, if
    enabled] + recent contacts + store (+ one inbox copy per recipient for a group under
    write diffusion) + status lookup + fan-out per recipient. Add queueing waits
    separately when the load is not light. ``scenario`` is a
    :class:`~immodel.scenario.Scenario` (or any mapping of its dotted keys).
    """
    ms = (
        scenario["server.auth_ms"]
        + scenario["server.checks_ms"]
        + scenario["server.recent_contacts_ms"]
        + scenario["server.store_ms"]
        + scenario["server.status_ms"]
        + scenario["server.fanout_ms_per_recipient"] * recipients
    )
    if scenario["server.screening_enabled"]:
        ms += scenario["server.screening_ms"]
    s = ms / 1000.0
    if scenario["server.callback_enabled"]:
        s += callback_mean_s(
            scenario["server.callback_ms"] / 1000.0, scenario["server.callback_timeout_s"]
        )
    return s


def receive_rate_per_user(
    send_rate_per_user: float, users: int, online: int | None = None
) -> float:
    """λ (1/s): the rate at which one online user receives 1:1 messages.

    All ``online`` users (default: all ``users``) send at ``send_rate_per_user``; each
    message goes to one of the ``users − 1`` others, uniformly. So an online user is
    picked by each of the other ``online − 1`` senders with probability 1/(users − 1):
    λ = r (N_on − 1)/(N − 1), which is ``r`` when everyone is online. The stream of
    messages to one user is a thinning of a Poisson stream, hence Poisson.
    """
    online = users if online is None else online
    return send_rate_per_user * (online - 1) / (users - 1)


# --------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------
def push_mean_latency_s(delay_s: float, service_s: float) -> float:
    """Mean push latency: uplink + server path + downlink, L = 2d + S.

    Holds for any delay distribution with mean ``delay_s`` (the two delays add), at light
    load and without loss.
    """
    return 2.0 * delay_s + service_s


# --------------------------------------------------------------------------------------
# Short polling
# --------------------------------------------------------------------------------------
def short_poll_period_s(
    interval_s: float,
    delay_s: float = 0.0,
    poll_service_s: float = 0.0,
    schedule: str = "fixed_rate",
) -> float:
    """Time between one client's polls.

    ``fixed_rate``: P = T. ``fixed_delay``: the next poll leaves T after the response
    arrives, and a response arrives 2d + s_poll after its poll left: P = T + 2d + s_poll.
    """
    if schedule == "fixed_rate":
        return interval_s
    return interval_s + 2.0 * delay_s + poll_service_s


def short_poll_rate_per_s(
    clients: int,
    interval_s: float,
    delay_s: float = 0.0,
    poll_service_s: float = 0.0,
    schedule: str = "fixed_rate",
) -> float:
    """Polls per second reaching the access layer from ``clients`` clients: N / P."""
    return clients / short_poll_period_s(interval_s, delay_s, poll_service_s, schedule)


def short_poll_mean_latency_s(
    interval_s: float,
    delay_s: float,
    service_s: float,
    schedule: str = "fixed_rate",
    poll_service_s: float = 0.0,
) -> float:
    """Mean latency with short polling, no loss, client sync off.

    A message enters the recipient's outbox at t₀ + d + S. It leaves with the first poll
    whose service *completes* after that instant, and reaches the app d later. The poll
    completions form a stationary renewal process independent of the Poisson messages,
    so the wait from the outbox to the next completion is the forward recurrence time
    E[G²]/(2E[G]) of the gap G between completions:

    * ``fixed_rate``: completions at φT + kT + d + s_k, G = T + s_{k+1} − s_k, so the wait
      is T/2 (+ Var(s_poll)/T, negligible) and **L = T/2 + 2d + S** — the poll's own
      service time cancels (it delays the snapshot and the response alike).
    * ``fixed_delay``: G = T + 2d + s_poll, so **L = 2d + S + (T + 2d + s_poll)/2
      = T/2 + 3d + S + s_poll/2**: the round trip of every poll stretches the period.

    With client sync on (the default), a 1:1 receipt triggers a sync that can fetch a
    message stored since the last poll, so latency is *lower* than this; the checks
    switch sync off to isolate the transport.
    """
    period = short_poll_period_s(interval_s, delay_s, poll_service_s, schedule)
    return 2.0 * delay_s + service_s + period / 2.0


def short_poll_empty_fraction(
    receive_rate: float,
    interval_s: float,
    delay_s: float = 0.0,
    poll_service_s: float = 0.0,
    schedule: str = "fixed_rate",
) -> float:
    """Fraction of empty polls in steady state (no loss): e^{−λP}.

    A poll carries something iff a message entered the outbox since the previous poll
    took it (ACKs of the previous response ride on this poll and are applied first), an
    interval of one period P; the receive stream is Poisson with rate λ.
    Messages stop at ``duration_s``: polls during the drain are all empty, so compare
    with polls inside the sending period only.
    """
    period = short_poll_period_s(interval_s, delay_s, poll_service_s, schedule)
    return math.exp(-receive_rate * period)


def short_poll_loss_penalty_s(interval_s: float, p_up: float, p_down: float) -> float:
    """Extra mean latency of fixed-rate short polling under loss: T(1 − q)/q.

    A message waiting in the outbox is delivered by a poll only if the poll (uplink) and
    its response (downlink) both survive, q = (1 − p_up)(1 − p_down); a lost response
    leaves the message in the outbox (it was not ACKed). Each failure costs one period:
    T · E[failures] = T(1 − q)/q. The sender's own retries add
    :func:`retry_penalty_s` on top.
    """
    q = attempt_success_probability(p_up, p_down)
    return interval_s * (1.0 - q) / q


# --------------------------------------------------------------------------------------
# Long polling
# --------------------------------------------------------------------------------------
def long_poll_blind_window_s(delay_s: float, poll_service_s: float = 0.0) -> float:
    """b = 2d + s_poll: from the server's response until the next poll is served.

    The response travels d, the client re-polls at once, the poll travels d and is
    served by the poll stage; messages arriving meanwhile wait in the outbox.
    """
    return 2.0 * delay_s + poll_service_s


def long_poll_cycle_s(
    receive_rate: float, hold_s: float, delay_s: float, poll_service_s: float = 0.0
) -> float:
    """Mean time between one client's polls, C = b + e^{−λb}(1 − e^{−λH})/λ.

    One cycle = response → (blind window b) → poll served. If a message arrived during
    the window (probability 1 − e^{−λb}) the poll is answered at once; otherwise it is
    held until the first arrival or for H, whichever is first: E[min(Exp(λ), H)] =
    (1 − e^{−λH})/λ. With b = 2d this is the textbook C = e^{−2λd}(1 − e^{−λH})/λ + 2d.
    As λ → 0, C → H + b (an idle client).
    """
    b = long_poll_blind_window_s(delay_s, poll_service_s)
    lam = receive_rate
    if lam <= 0:
        return hold_s + b
    return b + math.exp(-lam * b) * (-math.expm1(-lam * hold_s)) / lam


def long_poll_rate_per_s(
    clients: int,
    receive_rate: float,
    hold_s: float,
    delay_s: float,
    poll_service_s: float = 0.0,
) -> float:
    """Polls per second from ``clients`` long-polling clients: N / C (one poll per cycle).

    With ``receive_rate = 0`` this is the idle rate N / (H + 2d + s_poll).
    """
    return clients / long_poll_cycle_s(receive_rate, hold_s, delay_s, poll_service_s)


def long_poll_mean_latency_s(
    receive_rate: float,
    hold_s: float,
    delay_s: float,
    service_s: float,
    poll_service_s: float = 0.0,
) -> float:
    """Mean latency with long polling, no loss: L = 2d + S + b²/(2C).

    A message fanned out while a poll is held is answered at once: L = 2d + S. One that
    arrives in a blind window waits for its end, on average b/2. By PASTA a Poisson
    arrival finds a blind window with probability b/C (one window of length b per
    cycle), so the mean extra wait is (b/C)(b/2). With b = 2d: 2d + 2d²/C + S.
    """
    b = long_poll_blind_window_s(delay_s, poll_service_s)
    cycle = long_poll_cycle_s(receive_rate, hold_s, delay_s, poll_service_s)
    return 2.0 * delay_s + service_s + b * b / (2.0 * cycle)


def long_poll_empty_fraction(
    receive_rate: float, hold_s: float, delay_s: float, poll_service_s: float = 0.0
) -> float:
    """Fraction of long polls answered empty: e^{−λ(b + H)}.

    A poll is empty iff nothing arrived in its blind window nor during its hold.
    """
    b = long_poll_blind_window_s(delay_s, poll_service_s)
    return math.exp(-receive_rate * (b + hold_s))


# --------------------------------------------------------------------------------------
# Loss and the reliability mechanisms
# --------------------------------------------------------------------------------------
def attempt_success_probability(p_up: float, p_down: float) -> float:
    """q = (1 − p_up)(1 − p_down): a request and its answer both survive."""
    return (1.0 - p_up) * (1.0 - p_down)


def _geometric_truncated_mean(q: float, max_attempts: float) -> float:
    """E[min(K, M)] for K ~ Geometric(q) on {1, 2, …}: (1 − (1 − q)^M)/q."""
    if math.isinf(max_attempts):
        return 1.0 / q
    return (1.0 - (1.0 - q) ** max_attempts) / q


def mean_uplink_transmissions(p_up: float, p_down: float, max_attempts: float = math.inf) -> float:
    """Mean transmissions of one message by its sender: (1 − (1 − q)^M)/q.

    An attempt ends the retries only when the send reaches the server *and* the reply
    reaches the sender (a retry of a stored message is answered from the dedup window),
    q = (1 − p_up)(1 − p_down); at most M attempts. M = ∞ gives 1/q, which is
    1/(1 − p)² for equal loss p each way.
    """
    return _geometric_truncated_mean(attempt_success_probability(p_up, p_down), max_attempts)


def mean_push_transmissions(p_up: float, p_down: float) -> float:
    """Mean pushes of one (message, recipient) by the pending-ACK queue: 1/q.

    The server re-pushes until an ACK arrives: a push (downlink) and its ACK (uplink) must
    both survive, q = (1 − p_down)(1 − p_up); there is no attempt limit.
    """
    return 1.0 / attempt_success_probability(p_up, p_down)


def mean_copies_at_client(p_up: float, p_down: float = 0.0) -> float:
    """Mean copies of a pushed message that reach the client: 1 + p_up/(1 − p_up).

    Pushes continue until one round trip succeeds; the last push arrives, and each failed
    attempt before it arrived iff its push survived and its ACK was lost:
    E[copies] = 1 + E[failures]·P(arrived | failed) = 1 + (1 − p_down)p_up/q
    = 1/(1 − p_up). Downlink loss cancels; for p each way this is 1/(1 − p).
    """
    del p_down  # cancels, see above
    return 1.0 / (1.0 - p_up)


def duplicates_per_message(p_up: float) -> float:
    """Extra copies per pushed message (what client dedup suppresses): p_up/(1 − p_up)."""
    return p_up / (1.0 - p_up)


def send_failure_probability(p_up: float, p_down: float, max_attempts: int) -> float:
    """P(the sender is told "failed"): all M round trips fail, (1 − q)^M."""
    return (1.0 - attempt_success_probability(p_up, p_down)) ** max_attempts


def never_stored_probability(p_up: float, max_attempts: int) -> float:
    """P(no attempt reached the server): p_up^M (without retry M = 1)."""
    return p_up**max_attempts


def failed_but_stored_probability(p_up: float, p_down: float, max_attempts: int) -> float:
    """The article's failure 3: stored (and delivered) although the sender gave up.

    (1 − q)^M − p_up^M: every round trip failed, but at least one send got through and
    only its replies were lost.
    """
    return send_failure_probability(p_up, p_down, max_attempts) - never_stored_probability(
        p_up, max_attempts
    )


def retry_penalty_s(
    loss: float, timeout_s: float, backoff: float = 1.0, max_attempts: float = math.inf
) -> float:
    """Mean extra latency from retransmissions until the first copy gets through.

    The k-th timeout is timeout·backoff^{k−1}; after f failures the copy that gets
    through left τ(f) = timeout·(1 + b + … + b^{f−1}) late. With F ~ failures before
    the first success (P(F = f) = (1 − p)p^f), conditioned on success within M attempts
    (only delivered messages have a latency):

        E[τ(F) | F < M] = Σ_{f<M} (1 − p)p^f τ(f) / (1 − p^M).

    For M = ∞ this is timeout·p/(1 − b·p) (needs b·p < 1): **timeout·p/(1 − p)** with
    a constant timeout, **timeout·p/(1 − 2p)** with doubling. Used for the sender's
    retries (``loss`` = p_up: only the send must get through for the message to be
    stored; the reply does not matter for delivery) and for the pending-ACK queue
    (``loss`` = p_down, constant ``ack_timeout``, M = ∞).
    """
    p = loss
    if p <= 0:
        return 0.0
    if math.isinf(max_attempts):
        if backoff * p >= 1:
            return math.inf
        return timeout_s * p / (1.0 - backoff * p)
    total = 0.0
    tau = 0.0
    step = timeout_s
    for f in range(int(max_attempts)):
        total += (1.0 - p) * p**f * tau
        tau += step
        step *= backoff
    return total / (1.0 - p**max_attempts)


def unprotected_delivered_fraction(p_up: float, p_down: float) -> float:
    """With every reliability mechanism off, the share of (message, recipient) pairs
    delivered: (1 − p_up)(1 − p_down) — one send, one push, no repair. In a group the
    uplink is shared but each member's push is lost independently, so the mean over
    members is the same."""
    return (1.0 - p_up) * (1.0 - p_down)


# --------------------------------------------------------------------------------------
# Server stages as queues
# --------------------------------------------------------------------------------------
def utilization(arrival_rate: float, mean_service_s: float, servers: int = 1) -> float:
    """ρ = λS/c."""
    return arrival_rate * mean_service_s / servers


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c, with a = λS < c.

    C(c, a) = [aᶜ/c! · c/(c − a)] / [Σ_{k<c} aᵏ/k! + aᶜ/c! · c/(c − a)], computed with
    the stable Erlang-B recursion B_k = a·B_{k−1}/(k + a·B_{k−1}), C = cB/(c − a(1 − B)).
    """
    c, a = servers, offered_load
    if a >= c:
        return 1.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def mmc_mean_wait_s(arrival_rate: float, mean_service_s: float, servers: int) -> float:
    """Mean wait in queue of M/M/c: W_q = C(c, a)·S/(c − a), a = λS."""
    a = arrival_rate * mean_service_s
    if a >= servers:
        return math.inf
    return erlang_c(servers, a) * mean_service_s / (servers - a)


def mg1_mean_wait_s(arrival_rate: float, mean_service_s: float, service_cv: float) -> float:
    """Pollaczek–Khinchine: M/G/1 mean wait W_q = ρS(1 + CV²)/(2(1 − ρ)).

    CV = 1 gives M/M/1 (ρS/(1 − ρ)); CV = 0 gives M/D/1, half of it.
    """
    rho = arrival_rate * mean_service_s
    if rho >= 1:
        return math.inf
    return rho * mean_service_s * (1.0 + service_cv**2) / (2.0 * (1.0 - rho))


def md1_mean_wait_s(arrival_rate: float, mean_service_s: float) -> float:
    """M/D/1 mean wait: ρS/(2(1 − ρ))."""
    return mg1_mean_wait_s(arrival_rate, mean_service_s, 0.0)


def mean_stage_wait_s(arrival_rate: float, mean_service_s: float, servers: int, dist: str) -> float:
    """Mean wait of one stage fed by a Poisson stream, for ``server.service_dist``.

    Exact for exponential service with any c (Erlang C) and for any distribution with
    c = 1 (Pollaczek–Khinchine); for c > 1 and non-exponential service it falls back to
    the Allen–Cunneen approximation W_q ≈ (1 + CV²)/2 · W_q(M/M/c).
    """
    cv = SERVICE_CV[dist]
    if servers == 1:
        return mg1_mean_wait_s(arrival_rate, mean_service_s, cv)
    return (1.0 + cv * cv) / 2.0 * mmc_mean_wait_s(arrival_rate, mean_service_s, servers)


def _periodic_virtual_wait_units(n: int, period: float) -> float:
    """E[V] (in service units) of the N·D/D/1 queue at an arbitrary time.

    n sources, each sending one unit of work every ``period`` units at a uniformly random
    phase. Roberts & Virtamo (1991), via Beneš:

        P(V > x) = Σ_{x < k ≤ n} C(n, k) u^k (1 − u)^{n−k} (D − n + x)/(D − k + x),
        u = (k − x)/D,

    integrated over x (smooth between integers: Gauss–Legendre per unit interval).
    """
    if n <= 0:
        return 0.0
    d = float(period)
    nodes, weights = np.polynomial.legendre.leggauss(24)
    ks = np.arange(1, n + 1, dtype=float)
    log_binom = np.array(
        [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in ks]
    )
    total = 0.0
    for j in range(n):
        x = j + (nodes + 1.0) / 2.0  # points in (j, j + 1)
        k = ks[None, :]
        u = (k - x[:, None]) / d
        valid = (k > x[:, None]) & (u < 1.0)
        u_safe = np.where(valid, u, 0.5)
        log_term = (
            log_binom[None, :]
            + k * np.log(u_safe)
            + (n - k) * np.log1p(-u_safe)
            + np.log((d - n + x[:, None]) / (d - k + x[:, None]))
        )
        q = np.where(valid, np.exp(log_term), 0.0).sum(axis=1)
        piece = float(np.dot(weights, q) / 2.0)
        total += piece
        if piece < 1e-13 * max(total, 1e-300):
            break
    return total


def periodic_sources_mean_wait_s(sources: int, period_s: float, service_s: float) -> float:
    """Mean wait of a job in a one-server stage fed by ``sources`` periodic streams.

    This is what N fixed-rate short-polling clients do to the poll stage: client i's
    polls arrive at φ_i T + kT + d, the phases φ_i uniform — the N·D/D/1 queue with
    constant service S, not a Poisson stream. A job of one source finds the work left
    by the *other* N − 1 sources at a time uniform in their cycle, so its mean wait is
    the time-stationary mean unfinished work of the (N − 1)·D/D/1 queue
    (:func:`_periodic_virtual_wait_units`, Roberts & Virtamo 1991), times S. It is below
    the M/D/1 wait at the same load ρ = NS/T and tends to it as N → ∞ with ρ fixed.
    """
    if sources * service_s >= period_s:
        return math.inf
    return service_s * _periodic_virtual_wait_units(sources - 1, period_s / service_s)


# --------------------------------------------------------------------------------------
# Freshness: pull versus push (Bozdag et al. 2007)
# --------------------------------------------------------------------------------------
def fresh_fraction_push(receive_rate: float, latency_s: float) -> float:
    """P(a message is shown before the next message to that user is sent) with a
    latency fixed at ``latency_s``: e^{−λL} (the next send is Exp(λ) away)."""
    return math.exp(-receive_rate * latency_s)


def fresh_fraction_short_poll(
    receive_rate: float, interval_s: float, base_latency_s: float
) -> float:
    """The same for fixed-rate short polling, L = base + U·T with U uniform on [0, 1):

    E[e^{−λL}] = e^{−λ·base} · (1 − e^{−λT})/(λT).

    ``base_latency_s`` is 2d + S. Bozdag et al.'s "coherence": the share of updates the
    client sees before they are superseded. With *periodic* publishing (every P) pull is
    fully coherent as soon as T ≤ P − base; with the model's Poisson publishing the
    ratio to push, (1 − e^{−λT})/(λT), falls smoothly: 0.63 at T = 1/λ.
    """
    lam_t = receive_rate * interval_s
    ratio = -math.expm1(-lam_t) / lam_t if lam_t > 0 else 1.0
    return math.exp(-receive_rate * base_latency_s) * ratio


def fresh_fraction_periodic_publish(
    publish_interval_s: float, interval_s: float, base_latency_s: float
) -> float:
    """Reference curve for Bozdag et al.'s set-up: one update every P (not Poisson).

    A message is fresh iff base + U·T < P: the fraction is 1 for T ≤ P − base, then
    (P − base)/T. Not what the model simulates (its sends are Poisson); shown for contrast.
    """
    slack = publish_interval_s - base_latency_s
    if slack <= 0:
        return 0.0
    return min(1.0, slack / interval_s)


def polls_matching_push_traffic_interval_s(receive_rate: float, heartbeat_s: float) -> float:
    """The poll interval at which a short-polling client sends as many downlink-control
    requests as a push client: 1/T = λ + 1/heartbeat (a push client ACKs every message
    and sends heartbeats; a polling client's ACKs ride on its polls). Shorter intervals
    cost more than push."""
    return 1.0 / (receive_rate + 1.0 / heartbeat_s)


def fresh_fraction(messages: pd.DataFrame, until_s: float) -> tuple[int, int]:
    """Measured freshness: (fresh, counted) over a run's ``messages`` frame.

    A 1:1 message (to an online recipient) is *fresh* if it was shown before the next
    message to the same recipient was sent. Counted: messages sent before ``until_s``,
    which should be at most the sending period minus the longest latency, so that every
    counted message's window lies inside the sending period (selecting on send time
    only keeps the estimate unbiased). A message never shown is not fresh.
    """
    m = messages[messages["stored"] & messages["online_at_store"]]
    m = m.sort_values(["recipient", "t_send"], kind="stable")
    next_send = m.groupby("recipient", sort=False)["t_send"].shift(-1)
    counted = m["t_send"] < until_s
    shown = m["t_first_show"].to_numpy()
    nxt = next_send.to_numpy(dtype=float)
    fresh = ~np.isnan(shown) & (np.isnan(nxt) | (shown < nxt))
    return int((fresh & counted.to_numpy()).sum()), int(counted.sum())


__all__ = [
    "SERVICE_CV",
    "attempt_success_probability",
    "callback_mean_s",
    "duplicates_per_message",
    "erlang_c",
    "failed_but_stored_probability",
    "fresh_fraction",
    "fresh_fraction_periodic_publish",
    "fresh_fraction_push",
    "fresh_fraction_short_poll",
    "long_poll_blind_window_s",
    "long_poll_cycle_s",
    "long_poll_empty_fraction",
    "long_poll_mean_latency_s",
    "long_poll_rate_per_s",
    "md1_mean_wait_s",
    "mean_copies_at_client",
    "mean_push_transmissions",
    "mean_stage_wait_s",
    "mean_uplink_transmissions",
    "message_path_service_s",
    "mg1_mean_wait_s",
    "mmc_mean_wait_s",
    "never_stored_probability",
    "one_way_delay_mean_s",
    "periodic_sources_mean_wait_s",
    "polls_matching_push_traffic_interval_s",
    "push_mean_latency_s",
    "receive_rate_per_user",
    "retry_penalty_s",
    "send_failure_probability",
    "short_poll_empty_fraction",
    "short_poll_loss_penalty_s",
    "short_poll_mean_latency_s",
    "short_poll_period_s",
    "short_poll_rate_per_s",
    "unprotected_delivered_fraction",
    "utilization",
]

"""Shared machinery of the validation suite: scenarios, replications, statistical bands.

(A plain module, not ``conftest.py``: the tests import it by its unique name.)

Every check compares a simulated estimate with a value from
:mod:`immodel.analysis.theory`. The tolerance is statistical, never tuned on a run:

* a mean over replications (independent seeds ``1 … R``) must lie within its two-sided
  99.9 % Student-t interval of the analytic value (:func:`assert_mean_matches`);
* a proportion pooled over independent trials must lie within 4 binomial standard
  errors of the analytic probability (:func:`assert_proportion_matches`).

Seeds are fixed, so a run is reproducible; the bands are wide enough that changing a
seed or a random stream would not make a correct model fail (about 1 in 1000 per check
for the t-band, 1 in 16 000 for 4σ).

Power: which error a check can see
----------------------------------
A wide band protects against false failures and hides real errors. For a check of n
replications whose paired differences (simulated − analytic) have standard deviation σ,
the band's half-width is h = t₀.₉₉₉₅,ₙ₋₁ · σ/√n, and a formula that is off by δ fails the
check with probability at least ``POWER`` = 90 % when

    δ ≥ MDE = (t₀.₉₉₉₅,ₙ₋₁ + t₀.₉₀,ₙ₋₁) · σ/√n      (the minimum detectable error),

that is, in units of σ: 19.3 (n = 3), 4.5 (n = 5), 2.4 (n = 8), 1.35 (n = 16), 1.04
(n = 24), 0.77 (n = 40), 0.47 (n = 100). So 5 replications cannot see an error smaller
than 4.5 per-replication standard deviations: a formula 5 % off passes whenever one run
scatters by more than ~1 %. A relative error ε is seen when n satisfies
(t + t)/√n ≤ ε·|expected|/σ; :func:`replications_for` solves it.

How the suite uses this:

* The **formulas** are checked to 2 % or better without the simulator, in
  ``test_theory_formulas.py``: against exact independent computations (the M/M/c
  birth–death chain, the direct Erlang sum, closed forms) or Monte Carlo / Lindley
  recursions with 10⁵–10⁶ samples (tolerance 4 standard errors, ≤ 0.5 % of the value).
* The **simulator** is checked against the formulas with replications sized by σ. A
  check that passes ``detect=ε`` to :func:`assert_mean_matches` also fails when its own
  MDE exceeds ε·|expected|, so it can never silently lose the power it claims. Measured
  per-replication σ of the paired wait differences (relative to the wait, 6000 customers
  a run): M/M/1 ρ=0.5 2 %, M/D/1 ρ=0.5 3 %, M/D/1 ρ=0.8 6 %, M/M/2 ρ=0.6 6 %, M/G/1
  lognormal ρ=0.6 9 %, M/M/4 ρ=0.7 15 %; hence 8 to 48 replications per point in
  ``test_theory_queues.py`` to see a 10 % error in every queue wait. Seeing 2 % there by
  simulation would take ~(4.6 · 0.15/0.02)² ≈ 1200 replications of M/M/4 (≈ 1 CPU-hour),
  which is why the 2 % guarantee rests on the formula checks above.
* Every other simulated mean check (latency, transmissions, copies, freshness, long-poll
  cycles) passes ``detect=DETECT`` (10 %) and fails as underpowered if its replications
  cannot see that; their replications (6–10 per point, per module) were sized from the
  measured MDEs, with a margin of about 1.3 (measured largest: 8.2 % for the doubling
  backoff's latency at p = 0.2). Two mean checks claim less, and say so:
  *duplicates per message* (an extra-copy count near 0.1 is the *copies* check of the
  same replications minus one; its relative MDE is large only because the value is
  small) and the N·D/D/1 poll-stage waits (MDE ≈ 27 % of a wait of 10–40 ms: seeing
  10 % would take about 7× the replications, and the formula is checked exactly in
  ``test_theory_formulas.py``). Proportion checks (4 binomial standard errors) resolve
  4·√(p(1−p)/n), which this suite does not size: 1.4 % of p for the empty-poll fraction
  p = 0.9 (n = 8 550), 3–8 % for the loss probabilities between 0.25 and 0.72 (n ≈ 7 300),
  11 % at p = 0.14 and 25–30 % for rare outcomes (p ≈ 0.01–0.03).
* Every check's MDE is written to ``IMMODEL_VALIDATION_LOG`` (``mde``), so a report can
  list what each simulated check can and cannot see.

Set ``IMMODEL_VALIDATION_LOG=path`` to append one JSON line per check (label, analytic
value, simulated mean, 95 % CI), the raw material of a validation report. Set
``IMMODEL_VALIDATION_SEED_OFFSET=k`` to run every replication with seeds ``k+1 … k+R``
instead: a correct model should still pass (about 1 check in 1000 may not), which is
how to convince yourself that the bands were not fitted to the default seeds.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats

import immodel
from immodel.analysis import theory as th

#: Defaults of the validation scenarios: small, light load, constant 50 ms one-way delay,
#: client sync off (a 1:1 receipt would otherwise pull later messages early; the checks
#: that want it say so). The per-packet loss theory is the datagram model's; the stream
#: model has its own checks (test_stream_theory.py). The access tier's per-request and
#: per-frame costs are left out so the formulas' server time is the logic stages' alone.
BASE: dict[str, Any] = {
    "workload.users": 100,
    "workload.send_rate_per_user": 0.2,
    "duration_s": 60.0,
    "drain_s": 15.0,
    "network.latency_ms": 50.0,
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

#: Every server stage at 0 ms (skipped in time): set one back to load it alone.
ZERO_STAGES: dict[str, float] = {
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

T_LEVEL = 0.999  # two-sided level of the pass band for replication means
POWER = 0.90  # probability that a check fails when the error is its MDE
Z_BAND = 4.0  # standard errors of the pass band for proportions
#: The error every simulated mean check must be able to see (passed as ``detect``): a
#: check whose replications cannot see a 10 % error fails as underpowered.
DETECT = 0.10


def scenario(**overrides: Any) -> immodel.Scenario:
    """The validation base scenario with dotted-key overrides."""
    values = dict(BASE)
    values.update(overrides)
    return immodel.Scenario.load("baseline", values)


@lru_cache(maxsize=64)
def _run(toml_text: str, seed: int) -> immodel.Result:
    import tomllib

    return immodel.run(immodel.Scenario.load(tomllib.loads(toml_text), seed=seed))


SEED_OFFSET = int(os.environ.get("IMMODEL_VALIDATION_SEED_OFFSET", "0"))


def replicate(sc: immodel.Scenario, replications: int) -> list[immodel.Result]:
    """``replications`` runs of ``sc`` with seeds 1 … R (cached within a test process)."""
    text = sc.to_toml()
    first = SEED_OFFSET + 1
    return [_run(text, seed) for seed in range(first, first + replications)]


@dataclass(frozen=True)
class Estimate:
    """Mean of replication values with Student-t half-widths at 95 % and at the band,
    and the minimum detectable error ``mde`` (see the module docstring)."""

    mean: float
    half95: float
    half_band: float
    n: int
    mde: float = math.nan

    def __str__(self) -> str:
        return f"{self.mean:.6g} ± {self.half95:.2g} (95 %, n={self.n})"


def estimate(values) -> Estimate:
    """Mean and t-intervals of per-replication values (n ≥ 2)."""
    x = np.asarray(list(values), dtype=float)
    n = x.size
    if n < 2:
        raise ValueError("a confidence interval needs at least two replications")
    se = x.std(ddof=1) / math.sqrt(n)
    t95 = stats.t.ppf(0.975, n - 1)
    tband = stats.t.ppf(0.5 + T_LEVEL / 2, n - 1)
    mde = (tband + stats.t.ppf(POWER, n - 1)) * se
    return Estimate(float(x.mean()), float(t95 * se), float(tband * se), n, float(mde))


def mde_factor(n: int) -> float:
    """(t₀.₉₉₉₅,ₙ₋₁ + t_POWER,ₙ₋₁)/√n: the MDE of n replications in units of σ."""
    return float((stats.t.ppf(0.5 + T_LEVEL / 2, n - 1) + stats.t.ppf(POWER, n - 1)) / math.sqrt(n))


def replications_for(relative_sd: float, relative_error: float) -> int:
    """The fewest replications whose MDE is at most ``relative_error``, for paired
    differences with per-replication standard deviation ``relative_sd`` (both relative
    to the expected value)."""
    n = 2
    while mde_factor(n) * relative_sd > relative_error:
        n += 1
    return n


def _log(label: str, expected: float, simulated: float, half95: float, **extra) -> None:
    path = os.environ.get("IMMODEL_VALIDATION_LOG")
    if not path:
        return
    row = {"check": label, "analytic": expected, "simulated": simulated, "ci95": half95}
    row.update(extra)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def assert_mean_matches(
    values,
    expected,
    label: str,
    allowance: float = 0.0,
    nominal: float | None = None,
    detect: float | None = None,
) -> Estimate:
    """The replication mean lies within its 99.9 % t-interval (+ ``allowance``, a
    documented bound on a theory approximation, 0 by default) of ``expected``.

    ``detect`` (a relative error, e.g. 0.10) is the error this check promises to see: it
    also fails when the replications' MDE exceeds ``detect · |expected|``.

    ``expected`` is one analytic value, or one per replication (the formula evaluated at
    each run's realized input, e.g. its realized send rate: a control variate that takes
    the workload's Poisson noise out of the comparison). Then the paired differences
    are tested against 0; ``nominal`` (the formula at the nominal input) is only logged.
    """
    x = np.asarray(list(values), dtype=float)
    paired = np.ndim(expected) > 0
    exp = np.asarray(expected, dtype=float) if paired else np.full(x.size, float(expected))
    est = estimate(x)
    diff = estimate(x - exp)
    analytic = float(exp.mean()) if nominal is None else nominal
    _log(label, analytic, est.mean, est.half95, paired=paired, mde=diff.mde)
    if detect is not None:
        assert diff.mde <= detect * abs(float(exp.mean())), (
            f"{label}: underpowered: with n={diff.n} the smallest error this check sees "
            f"(at {POWER:.0%} power) is {diff.mde:.3g}, more than {detect:.0%} of "
            f"{float(exp.mean()):.6g}; add replications (see replications_for)"
        )
    gap = abs(diff.mean)
    assert gap <= diff.half_band + allowance, (
        f"{label}: simulated {est} vs analytic {float(exp.mean()):.6g}"
        + (" (paired per replication)" if paired else "")
        + f": gap {gap:.3g} exceeds the {T_LEVEL:.1%} band {diff.half_band:.3g}"
        + (f" + allowance {allowance:.3g}" if allowance else "")
    )
    return est


def realized_receive_rate(result: immodel.Result) -> float:
    """The run's realized λ: 1:1 messages sent per second per user, every user online
    (:func:`immodel.analysis.theory.receive_rate_per_user` with the realized send rate)."""
    sc = result.scenario
    users = sc["workload.users"]
    r_hat = result.summary["messages_sent"] / sc["duration_s"] / users
    return th.receive_rate_per_user(r_hat, users)


def assert_proportion_matches(successes: int, trials: int, p: float, label: str) -> float:
    """``successes / trials`` is within 4 binomial standard errors (under ``p``) of ``p``."""
    assert trials > 0, f"{label}: no trials"
    p_hat = successes / trials
    se = math.sqrt(max(p * (1 - p), 1e-12) / trials)
    _log(label, p, p_hat, 1.96 * math.sqrt(max(p_hat * (1 - p_hat), 1e-12) / trials), n=trials)
    assert abs(p_hat - p) <= Z_BAND * se, (
        f"{label}: simulated {p_hat:.5f} ({successes}/{trials}) vs analytic {p:.5f}: "
        f"more than {Z_BAND:g} standard errors ({se:.2g}) apart"
    )
    return p_hat


def assert_sample_mean_matches(samples, expected: float, label: str) -> float:
    """The mean of independent samples is within 4 standard errors of ``expected``."""
    x = np.asarray(samples, dtype=float)
    se = x.std(ddof=1) / math.sqrt(x.size)
    _log(label, expected, float(x.mean()), 1.96 * se, n=int(x.size))
    assert abs(x.mean() - expected) <= Z_BAND * se, (
        f"{label}: simulated {x.mean():.6g} ± {se:.2g} (SE, n={x.size}) vs analytic "
        f"{expected:.6g}: more than {Z_BAND:g} standard errors apart"
    )
    return float(x.mean())

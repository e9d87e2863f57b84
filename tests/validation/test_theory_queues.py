"""Server stages against queueing theory: Erlang C, Pollaczek–Khinchine, N·D/D/1, Little.

One stage is loaded at a time: every other ``server.*_ms`` is 0 (a 0 ms stage takes no
time), so the send path's Poisson stream (one Poisson workload, constant uplink delay)
reaches the loaded stage unchanged. ``server.workers`` and the mean service time set the
utilisation.

Mean waits at utilisation 0.5–0.8 converge slowly (successive waits are strongly
correlated), so each replication is compared with the formula at its *realized* load: the
arrival count over the sending period and the mean of the service times actually drawn
(busy time / jobs). That control variate is still theory — the same formula, at the
inputs the run drew — and removes about a third of the replication noise. The nominal
value is what the report and the notebook show.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest
from scipy import stats
from validation_support import (
    ZERO_STAGES,
    assert_mean_matches,
    replicate,
    scenario,
)

import immodel
from immodel.analysis import theory as th
from immodel.sim.world import STAGE_NAMES

SERVICE_MS = 10.0
#: Each queue check must see a 10 % error in the mean wait: replications per point from
#: the measured per-replication spread of the paired waits (validation_support, "Power").
DETECT = 0.10


def loaded_store(servers: int, rho: float, dist: str, customers: int = 6000) -> immodel.Scenario:
    """Only the store stage takes time: ``servers`` workers at utilisation ``rho``."""
    lam = rho * servers / (SERVICE_MS / 1000.0)
    values = dict(ZERO_STAGES)
    values.update(
        {
            "server.store_ms": SERVICE_MS,
            "server.workers": servers,
            "server.service_dist": dist,
            "workload.users": 100,
            "workload.send_rate_per_user": lam / 100,
            "duration_s": customers / lam,
            "drain_s": 1.0,
        }
    )
    return scenario(**values)


def realized_load(result: immodel.Result, stage: str = "store") -> tuple[float, float]:
    """(λ̂, Ŝ): jobs per second of the sending period, mean service time drawn (s)."""
    s, sc = result.summary, result.scenario
    # Arrival rates are over the whole run; utilisation over the sending period.
    jobs = s[f"arrival_rate_{stage}"] * s["horizon_s"]
    busy = s[f"utilization_{stage}"] * sc["server.workers"] * s["window_s"]
    return jobs / sc["duration_s"], busy / jobs


QUEUE_POINTS = [
    # (servers, utilisation, service distribution, replications, smallest error to see):
    # replications from the measured per-replication spread of the paired waits, so that
    # each point's MDE is below its error (see validation_support, "Power"), with a
    # margin of about 1.3× because the spread itself is estimated from the sample. M/M/4
    # at ρ = 0.7 is checked for a 15 % error: 10 % would take ~50 replications (about
    # three minutes), and the exact Erlang C check in test_theory_formulas.py sees 2 %.
    (1, 0.5, "exponential", 14, DETECT),
    (2, 0.6, "exponential", 22, DETECT),
    (4, 0.7, "exponential", 28, 0.15),
    (1, 0.5, "constant", 10, DETECT),
    (1, 0.8, "constant", 16, DETECT),
    (1, 0.6, "lognormal", 28, DETECT),
]


def _point_id(point: tuple) -> str:
    servers, rho, dist, _, _ = point
    return f"{dist}-c{servers}-rho{rho}"


@pytest.mark.slow  # 15-90 s each: started first (tests/conftest.py)
@pytest.mark.parametrize("point", QUEUE_POINTS, ids=_point_id)
def test_loaded_stage_is_busy_lambda_s_over_c_and_waits_as_erlang_c_or_pollaczek_khinchine(
    point,
):
    # Exponential service: M/M/c, Erlang C. Constant service: M/D/1, half the M/M/1 wait.
    # Lognormal (CV = 1 in the model): M/G/1 by Pollaczek–Khinchine, the M/M/1 mean.
    # Utilisation is measured over the sending period, which feeds the stage.
    servers, rho, dist, replications, detect = point
    sc = loaded_store(servers, rho, dist)
    results = replicate(sc, replications)
    lam, service = rho * servers / (SERVICE_MS / 1000.0), SERVICE_MS / 1000.0
    kind = {"exponential": f"M/M/{servers}", "constant": "M/D/1", "lognormal": "M/G/1 lognormal"}

    assert_mean_matches(
        [r.summary["utilization_store"] for r in results],
        th.utilization(lam, service, servers),
        f"{kind[dist]} utilisation ρ={rho}",
    )

    waits = [r.summary["wait_mean_ms_store"] / 1000.0 for r in results]
    expected = [th.mean_stage_wait_s(*realized_load(r), servers, dist) for r in results]
    nominal = th.mean_stage_wait_s(lam, service, servers, dist)
    assert_mean_matches(
        waits, expected, f"{kind[dist]} wait ρ={rho}", nominal=nominal, detect=detect
    )


# --------------------------------------------------------------------------------------
# Little's law: L = λW on every stage, as a sample-path identity
# --------------------------------------------------------------------------------------
BUSY_DEPLOYMENT = {
    "workload.users": 200,
    "workload.send_rate_per_user": 0.5,
    "workload.group_share": 0.3,
    "workload.groups": 10,
    "workload.group_size": 10,
    "network.uplink_loss": 0.05,
    "network.downlink_loss": 0.05,
    "reliability.sync": True,
    "server.workers": 1,
    "server.screening_enabled": True,
    "server.callback_enabled": True,
    "server.auth_ms": 2.0,
    "server.checks_ms": 2.0,
    "server.screening_ms": 3.0,
    "server.recent_contacts_ms": 2.0,
    "server.store_ms": 4.0,
    "server.status_ms": 1.0,
    "server.fanout_ms_per_recipient": 0.2,
    "server.poll_ms": 1.0,
    "server.sync_ms": 2.0,
    "duration_s": 30.0,
    "drain_s": 20.0,
}


@pytest.mark.parametrize(
    "variant",
    [
        {"transport.kind": "hybrid", "server.service_dist": "exponential"},
        {"transport.kind": "short_poll", "transport.poll_interval_s": 0.5},
        {"transport.kind": "long_poll", "server.service_dist": "constant"},
    ],
    ids=["hybrid-exponential", "short-poll-exponential", "long-poll-constant"],
)
def test_littles_law_holds_on_every_stage(variant):
    # Time-average queue length = arrival rate × mean wait, over the whole horizon. For a
    # sample path that starts and ends with an empty queue this is an identity, so the
    # three summary figures must agree to rounding. The message path's queues are empty
    # after the drain; the poll stage is fed until the very end (polls never stop), and
    # a poll still queued when the run stops counts in L but not in W: a few jobs in
    # ~10⁴, hence 10⁻³ there.
    values = dict(BUSY_DEPLOYMENT)
    values.update(variant)
    result = replicate(scenario(**values), 1)[0]
    s = result.summary
    used = queued = 0
    for stage in STAGE_NAMES:
        lam = s[f"arrival_rate_{stage}"]
        if not lam:
            continue
        used += 1
        queued += s[f"queue_mean_{stage}"] > 0
        little = lam * s[f"wait_mean_ms_{stage}"] / 1000.0
        rel = 1e-3 if stage == "poll" else 1e-9
        assert s[f"queue_mean_{stage}"] == pytest.approx(little, rel=rel, abs=1e-12), stage
    assert used >= 7
    # Constant service in tandem leaves stages behind an equally fast one without a queue
    # (departures are spaced by at least one service time), so not every stage queues.
    assert queued >= 5, "too few stages queued: the check would be vacuous"


# --------------------------------------------------------------------------------------
# The poll stage under fixed-rate short polling: N periodic streams, not Poisson
# --------------------------------------------------------------------------------------
def polling_clients(clients: int, rho: float, interval_s: float = 1.0) -> immodel.Scenario:
    """``clients`` idle fixed-rate pollers, constant poll service, one worker, load rho."""
    values = dict(ZERO_STAGES)
    values.update(
        {
            "transport.kind": "short_poll",
            "transport.poll_interval_s": interval_s,
            "workload.users": clients,
            "workload.send_rate_per_user": 0.0,
            "server.poll_ms": 1000.0 * rho * interval_s / clients,
            "server.workers": 1,
            "server.service_dist": "constant",
            "duration_s": 30.0 * interval_s,
            "drain_s": 0.5,
        }
    )
    return scenario(**values)


#: (clients, load, replications). A run's wait is fixed by its random phases, so only
#: replications average it; 10 clients at ρ = 0.5 need 100 for the comparison with M/D/1
#: below (its gap is only ~7 standard deviations of one run's mean wait).
POLL_POINTS = [(10, 0.5, 100), (20, 0.8, 40), (100, 0.8, 16)]


@lru_cache(maxsize=8)
def poll_stage_waits(clients: int, rho: float, replications: int) -> tuple[float, ...]:
    """Mean poll-stage wait of each replication at one (clients, load) point. A run's
    wait depends on its phases only, so the replications are what average over them."""
    sc = polling_clients(clients, rho)
    return tuple(r.summary["wait_mean_ms_poll"] / 1000.0 for r in replicate(sc, replications))


@pytest.mark.parametrize("clients, rho, replications", POLL_POINTS)
def test_poll_stage_wait_of_fixed_rate_clients_matches_the_nd_d_1_queue(clients, rho, replications):
    # Client i's polls arrive at φ_i·T + kT + d: N periodic streams with uniform phases
    # (the N·D/D/1 queue of Roberts & Virtamo), whatever N.
    sc = polling_clients(clients, rho)
    service = sc["server.poll_ms"] / 1000.0
    expected = th.periodic_sources_mean_wait_s(clients, sc["transport.poll_interval_s"], service)
    waits = poll_stage_waits(clients, rho, replications)
    assert_mean_matches(waits, expected, f"poll stage N·D/D/1 N={clients} ρ={rho}")


@pytest.mark.parametrize("clients, rho, replications", POLL_POINTS[:2])
def test_poll_stage_of_few_clients_waits_less_than_a_poisson_stream_would(
    clients, rho, replications
):
    # Empty polls of many clients load the poll stage "like a Poisson stream" only as
    # N → ∞ (the gap closes like 1/N; with 100 clients it is ~15 %, inside the noise of
    # these runs): the count per period is fixed at N, so waits are shorter than M/D/1
    # at the same utilisation predicts (N·D/D/1 theory: 28 % shorter at N = 10, ρ = 0.5;
    # 45 % at N = 20, ρ = 0.8).
    #
    # A one-sided claim, tested one-sidedly: the simulated mean plus k = t₀.₉₉₉ standard
    # errors must stay below M/D/1, so a model that waited as long as M/D/1 would pass
    # only 1 time in 1000. The replications are sized so that a correct model (mean at
    # the N·D/D/1 value) fails only 1 time in 1000 too: that needs the gap to be at least
    # k + z₀.₉₉₉ ≈ 6.3 standard errors. (With 40 replications at N = 10 it was 4.4, and
    # 3 of 8 seed offsets failed: the claim held, the test lacked power.)
    sc = polling_clients(clients, rho)
    service = sc["server.poll_ms"] / 1000.0
    poisson = th.md1_mean_wait_s(clients / sc["transport.poll_interval_s"], service)
    periodic = th.periodic_sources_mean_wait_s(clients, sc["transport.poll_interval_s"], service)
    waits = np.asarray(poll_stage_waits(clients, rho, replications))
    se = waits.std(ddof=1) / math.sqrt(waits.size)
    k = stats.t.ppf(0.999, waits.size - 1)
    assert poisson - periodic >= (k + stats.norm.ppf(0.999)) * se, (
        f"underpowered: the N·D/D/1 gap {poisson - periodic:.3g} is less than "
        f"{k + stats.norm.ppf(0.999):.2f} standard errors ({se:.2g}); add replications"
    )
    assert waits.mean() + k * se < poisson, (
        f"simulated wait {waits.mean():.4g} ± {se:.2g} (SE) is not below M/D/1 {poisson:.4g}"
    )

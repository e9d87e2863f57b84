"""Simulated vs real: one scenario run by the simulator and by ``immodel real``, compared.

The simulator is asked to describe what the harness does on this machine: its service
times come from a calibration (:func:`calibrate`, :mod:`immodel.real.calibrate`) and its
network latency is the scenario's plus the loopback stack's own one-way time, measured
in the same calibration. Then, per matched scenario (:func:`matched_runs`), the table of
:func:`compare` puts side by side what must agree:

* ``lost`` and ``duplicates`` — 0 in both with every mechanism on;
* ``requests_per_delivery`` — requests at the access tier per delivered message: the
  protocol's traffic, which the two should share up to noise;
* ``latency_p50_ms`` and ``latency_p99_ms`` — the simulator should be within 20 % of the
  real run once the loopback is in the scenario;
* ``recovery_time_s`` and ``recovery_undelivered`` for a run with a crash;
* ``utilization_logic`` and ``utilization_access`` — per node, over the sending window:
  the real processes' CPU seconds in the window / (processes × window) beside the
  simulator's busy seconds of the tier's stages in the window / (nodes × window)
  (:func:`busy_per_node`). The simulator's own ``utilization_logic`` divides by every
  stage's workers (9 stages per logic node), the real one by one core per process (a
  process is one asyncio thread): the table puts the same quantity side by side.

Only scenarios whose ``network.latency_ms`` is a number (a constant one-way time) can be
matched: the loopback's time is added to it. Each figure comes from one run of each
kind; on a 2-core machine shared with other work the real run's tail moves from run to
run by more than the simulator's does.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from immodel.scenario import Scenario

#: The summary figures compared, in table order.
COMPARED = (
    "messages_sent",
    "lost",
    "duplicates",
    "requests_per_delivery",
    "latency_p50_ms",
    "latency_p99_ms",
    "recovery_time_s",
    "recovery_undelivered",
    # per node in the sending window: the real run's process CPU beside the simulator's
    # busy time of the tier's stages (calibrated service times), see busy_per_node
    "utilization_logic",
    "utilization_access",
)


def calibrate(
    scenario: Scenario,
    latency_ms: float = 0.0,
    runs: int = 1,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure the harness on this machine (its logic operations in-process; its access
    CPU per frame, its logic processes' CPU per frame beyond those operations and the
    loopback's one-way time from real runs of ``scenario``) and return the calibrated
    scenario keys (:func:`immodel.real.calibrate.preset`, for the scenario's
    ``transport.kind``).

    ``latency_ms`` is the constant one-way latency the calibration run adds at the fault
    proxy (default none); the loopback samples are net of it. Calibrate at the latency
    the comparison will use: the proxy releases delayed bytes from its event loop's
    timers, and how late those fire under load is part of the one-way time measured at
    that latency, not at zero. ``runs`` real runs (seeds ``seed``, ``seed + 1``, …) are
    pooled for the loopback samples and the logic tier's I/O per frame: one short run's
    top quantiles are one or two messages, and one scheduling hiccup of the machine
    decides them. ``details``, if given, is filled with the measurements behind the keys:
    ``logic_costs_ms`` (in-process, per operation), ``access_ms_per_frame``,
    ``logic_io_ms_per_frame`` and the real runs' ``logic_frames`` and ``cpu_s_logic``."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs!r}")
    from immodel.real import run_real
    from immodel.real.calibrate import (
        logic_frames,
        loopback_samples_ms,
        measure_access_cost,
        measure_logic_costs,
        measure_logic_io_cost,
        preset,
        uplink_ms,
    )
    from immodel.sim.model import run

    costs = measure_logic_costs(scenario)
    zero = scenario.with_overrides({"network.latency_ms": float(latency_ms), "faults": []})
    reals = [run_real(zero.with_overrides({"seed": zero["seed"] + k})) for k in range(runs)]
    real0 = reals[0]
    access_ms = measure_access_cost(real0)
    io_ms = measure_logic_io_cost(reals, costs)
    kind = scenario["transport.kind"]
    keys = preset(costs, access_ms, 0.0, io_ms, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the same (short) drain as the real run
        # at the calibration's latency, so that the median subtracted below includes it,
        # and with the service times the preset will have (the send's I/O included)
        sim0 = run(zero.with_overrides({**keys, "network.latency_ms": float(latency_ms)}))
    real_uplink = np.concatenate([uplink_ms(r) for r in reals])
    samples = loopback_samples_ms(real_uplink, float(np.median(uplink_ms(sim0))))
    if details is not None:
        details.update(
            logic_costs_ms=dict(costs),
            access_ms_per_frame=access_ms,
            logic_io_ms_per_frame=io_ms,
            logic_frames=[logic_frames(r.counters) for r in reals],
            cpu_s_logic=[r.summary["cpu_s_logic"] for r in reals],
        )
    return preset(costs, access_ms, samples, io_ms, kind)


def simulated_twin(scenario: Scenario, calibration: dict[str, Any]) -> Scenario:
    """``scenario`` with the calibrated service times, and the loopback's one-way time
    (a number, or the calibration's empirical samples) added to its constant network
    latency."""
    latency = scenario["network.latency_ms"]
    if not isinstance(latency, int | float):
        raise ValueError(
            "network.latency_ms must be a number to be matched (the loopback's one-way "
            f"time is added to it), got {latency!r}"
        )
    keys = dict(calibration)
    loop = calibration["network.latency_ms"]
    if isinstance(loop, int | float):
        keys["network.latency_ms"] = float(latency) + loop
    else:
        samples = [float(latency) + x for x in loop["samples"]]
        keys["network.latency_ms"] = {"dist": "empirical", "samples": samples}
    return scenario.with_overrides(keys)


def matched_runs(scenario: Scenario, calibration: dict[str, Any]) -> tuple[Any, Any]:
    """``(simulated, real)`` results of ``scenario`` (same seed, so the same plan)."""
    from immodel.real import run_real
    from immodel.sim.model import run

    real = run_real(scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the drain warning was given by the real run
        sim = run(simulated_twin(scenario, calibration))
    return sim, real


def busy_per_node(result, tier: str) -> float | None:
    """Busy cores per node of ``tier`` (``"logic"`` or ``"access"``) over the sending
    window, of a simulated or a real run.

    A real run's ``utilization_<tier>`` is already that (its processes' CPU seconds in the
    window / (processes × window)). A simulated run's divides the tier's busy seconds by
    its capacity in workers: ``server.access_workers`` per access node, every logic stage's
    ``server.workers`` per logic node; multiplied back here, it is the busy seconds per
    node per second, as the real CPU is."""
    s = result.summary
    u = s.get(f"utilization_{tier}")
    if u is None or s.get(f"cpu_s_{tier}") is not None:  # a real run (or none measured)
        return u
    from immodel.sim.logic import STAGE_NAMES

    sc = result.scenario
    per_node = (
        sc["server.access_workers"]
        if tier == "access"
        else (len(STAGE_NAMES) * sc["server.workers"])
    )
    return u * per_node


def _figures(result) -> dict[str, Any]:
    summary = result.summary
    out = {k: summary.get(k) for k in COMPARED}
    delivered = summary["deliveries"]
    out["requests_per_delivery"] = summary["requests_total"] / delivered if delivered else None
    out["utilization_logic"] = busy_per_node(result, "logic")
    out["utilization_access"] = busy_per_node(result, "access")
    return out


def compare(pairs: dict[str, tuple[Any, Any]]) -> pd.DataFrame:
    """One row per (label, metric): ``sim``, ``real`` and ``sim / real``."""
    rows = []
    for label, (sim, real) in pairs.items():
        s, r = _figures(sim), _figures(real)
        for key in COMPARED:
            a, b = s[key], r[key]
            numbers = isinstance(a, int | float) and isinstance(b, int | float)
            ratio = a / b if numbers and b else None
            rows.append(
                {"scenario": label, "metric": key, "sim": a, "real": b, "sim / real": ratio}
            )
    return pd.DataFrame(rows)


def pooled_quantile(
    pairs: list[tuple[Any, Any]], q: float, confidence: float = 0.95
) -> dict[str, float]:
    """The ``q`` latency quantile of replicated matched pairs, each side's deliveries
    pooled over the replications (independent runs with different seeds).

    One run's p99 rests on its few slowest deliveries (~5 of 500); pooling ``k``
    replications gives ``k`` times as many, and a distribution-free ``confidence``
    interval for each side (:func:`immodel.analysis.stats.quantile_ci`). Returns the
    sample sizes, each side's estimate and interval, ``ratio`` = sim / real, and
    ``ratio_low`` / ``ratio_high``: the simulator's estimate over the real interval's
    upper and lower bound — the ratios the real sample cannot tell apart (the simulator's
    own sampling error comes on top; its interval is given too).
    """
    from immodel.analysis.stats import quantile_ci

    if not pairs:
        raise ValueError("pooled_quantile needs at least one (sim, real) pair")
    sim = np.concatenate([s.messages["latency_ms"].dropna().to_numpy(float) for s, _ in pairs])
    real = np.concatenate([r.messages["latency_ms"].dropna().to_numpy(float) for _, r in pairs])
    s_est, s_low, s_high = quantile_ci(sim, q, confidence)
    r_est, r_low, r_high = quantile_ci(real, q, confidence)
    return {
        "n_sim": int(sim.size),
        "n_real": int(real.size),
        "sim": s_est,
        "sim_low": s_low,
        "sim_high": s_high,
        "real": r_est,
        "real_low": r_low,
        "real_high": r_high,
        "ratio": s_est / r_est if r_est else math.nan,
        "ratio_low": s_est / r_high if r_high else math.nan,
        "ratio_high": s_est / r_low if r_low else math.nan,
    }


def latency_legs_ms(result) -> dict[str, np.ndarray]:
    """Each delivery of ``result`` split into the sender's leg (``send_to_stored``: uplink,
    the send's request, the store) and the recipient's leg (``stored_to_shown``: push or
    poll, the way down), with the ``total`` and a ``key`` (``msg_id>recipient``) that
    names the same delivery in a matched run. Only deliveries with both times."""
    m = result.messages
    m = m[m["t_first_show"].notna() & m["t_stored"].notna()]
    key = m["msg_id"].astype(str) + ">" + m["recipient"].astype(str)
    return {
        "key": key.to_numpy(),
        "send_to_stored": 1000.0 * (m["t_stored"] - m["t_send"]).to_numpy(),
        "stored_to_shown": 1000.0 * (m["t_first_show"] - m["t_stored"]).to_numpy(),
        "total": m["latency_ms"].to_numpy(),
    }


def leg_dependence(
    results: list[Any], q: float = 0.99, shuffles: int = 200, seed: int = 0
) -> dict[str, float]:
    """How much of a latency quantile comes from the two legs of a delivery being slow
    together.

    The simulator draws each leg's network time independently; on a loaded machine a
    burst slows both legs of the same message. Pooled over ``results``: the Spearman rank
    correlation of the two legs, the ``q`` quantile of their sum, and the same quantile
    with the recipient legs paired to sender legs at random (``shuffles`` permutations
    from ``numpy.random.default_rng(seed)``: the legs' own distributions kept, their
    dependence removed) — its mean and 2.5 / 97.5 percentiles. A sum quantile above the
    shuffled band is tail that dependence made.
    """
    from scipy.stats import spearmanr

    legs = [latency_legs_ms(r) for r in results]
    up = np.concatenate([x["send_to_stored"] for x in legs])
    down = np.concatenate([x["stored_to_shown"] for x in legs])
    if up.size < 2:
        raise ValueError("leg_dependence needs at least two deliveries")
    rng = np.random.default_rng(seed)
    shuffled = np.array([np.quantile(up + rng.permutation(down), q) for _ in range(shuffles)])
    return {
        "n": int(up.size),
        "spearman": float(spearmanr(up, down)[0]),
        "sum_quantile_ms": float(np.quantile(up + down, q)),
        "shuffled_quantile_ms": float(shuffled.mean()),
        "shuffled_low_ms": float(np.percentile(shuffled, 2.5)),
        "shuffled_high_ms": float(np.percentile(shuffled, 97.5)),
    }


__all__ = [
    "COMPARED",
    "busy_per_node",
    "calibrate",
    "compare",
    "latency_legs_ms",
    "leg_dependence",
    "matched_runs",
    "pooled_quantile",
    "simulated_twin",
]

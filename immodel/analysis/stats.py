"""Statistics over replications and over latency samples.

Two kinds of uncertainty show up in immodel's results, and this module has one tool for
each:

* **Across replications** (a sweep's ``results.parquet``: one row per grid point ×
  replication). :func:`aggregate` gives, per grid point and metric, the mean over
  replications with a Student-t confidence interval (``n − 1`` degrees of freedom), which
  is what the figures draw as bands and what the reports quote as "± half width". With a
  single replication the interval is undefined: it is reported as NaN, never an error.
* **Within one run** (a run's ``messages`` frame: one row per message × recipient).
  :func:`latency_percentiles` and :func:`ecdf` describe the latency distribution the same
  way the summary does (``numpy.quantile``, linear interpolation, over recipients that
  were online when the message was stored); :func:`quantile_ci` gives a distribution-free
  interval for one percentile from binomial order statistics.

The Student-t quantile is computed here (:func:`t_quantile`, from the regularized
incomplete beta function) so that the package needs no SciPy at run time; the tests
compare it with SciPy and with printed tables.

Nothing here knows about the simulator: the functions read plain DataFrames with the
documented columns, so they work as well on results assembled by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "LATENCY_POPULATIONS",
    "RECIPIENT_KINDS",
    "RESERVED_COLUMNS",
    "MeanCI",
    "aggregate",
    "by_recipient_kind",
    "ecdf",
    "expected_pairs",
    "grid_columns",
    "latency_percentiles",
    "latency_sample",
    "mean_ci",
    "metric_columns",
    "quantile_ci",
    "t_cdf",
    "t_quantile",
]

#: Columns of a sweep's results frame that are neither grid keys nor metrics.
RESERVED_COLUMNS = ("point", "replication", "seed")

# Above this many degrees of freedom the t distribution is the normal one to ~1e-8.
_NORMAL_DOF = 1e8
# Above this many, quantiles come from an asymptotic expansion (exact to ~1e-20).
_EXPANSION_DOF = 1e4


# --------------------------------------------------------------------------------------
# Student's t distribution
# --------------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges fast on this side of the mean; use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_sf_positive(t: float, dof: float) -> float:
    """P(T > t) for t ≥ 0, without cancellation near the median or in the tail."""
    t2 = t * t
    if t2 < dof:  # near the median: P(|T| < t) = I_y(1/2, ν/2), y = t²/(ν + t²)
        return 0.5 - 0.5 * _betainc(0.5, dof / 2.0, t2 / (dof + t2))
    return 0.5 * _betainc(dof / 2.0, 0.5, dof / (dof + t2))


def _t_quantile_expansion(z: float, dof: float) -> float:
    """Cornish–Fisher expansion of the t quantile around the normal one ``z``.

    Abramowitz & Stegun 26.7.5; the error is O(dof⁻⁵), negligible for the large
    ``dof`` it is used for (where lgamma-based incomplete beta loses digits).
    """
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3 + g4 / dof**4


def t_cdf(t: float, dof: float) -> float:
    """P(T ≤ t) for Student's t with ``dof`` (> 0, need not be an integer) degrees of freedom."""
    if not dof > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {dof!r}")
    if math.isnan(t):
        return math.nan
    if dof >= _NORMAL_DOF:
        return NormalDist().cdf(t)
    sf = _t_sf_positive(abs(t), dof)
    return 1.0 - sf if t >= 0 else sf


@lru_cache(maxsize=4096)
def t_quantile(p: float, dof: float) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom.

    ``t_quantile(0.975, 4)`` is 2.776…, the factor of a 95 % two-sided interval from five
    samples. ``p`` in (0, 1); ``dof`` > 0 (``math.inf`` gives the normal quantile).
    Accurate to about 1e-12 relative: bisection on the exact CDF, or an asymptotic
    expansion beyond 10 000 degrees of freedom.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    if not dof > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {dof!r}")
    if dof >= _EXPANSION_DOF:
        return _t_quantile_expansion(NormalDist().inv_cdf(p), dof)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, dof)
    target = 1.0 - p  # solve P(T > t) = target for t > 0; the tail keeps precision
    lo, hi = 0.0, max(1.0, NormalDist().inv_cdf(p))
    while _t_sf_positive(hi, dof) > target:
        lo, hi = hi, hi * 4.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_sf_positive(mid, dof) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * hi:
            break
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------
# Mean and confidence interval over replications
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanCI:
    """The mean of ``n`` values with a two-sided Student-t confidence interval.

    ``half_width`` is ``t(1 − α/2, n − 1) · s / √n`` with ``s`` the sample standard
    deviation (``ddof = 1``); ``low``/``high`` are ``mean ∓ half_width``. With ``n < 2``
    the interval (and ``std``) is NaN; with ``n = 0`` the mean is NaN too. Values are in
    the unit of the metric (ms for latencies, requests/s, counts…).
    """

    mean: float
    low: float
    high: float
    half_width: float
    std: float
    n: int
    confidence: float = 0.95


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> MeanCI:
    """Mean and Student-t confidence interval of ``values`` (NaN and None are ignored).

    One value gives its mean with a NaN interval, none gives NaN throughout: a sweep with
    a single replication is still summarised, it just has no error bars.
    """
    _check_confidence(confidence)
    x = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, math.nan, math.nan, 0, confidence)
    mean = float(x.mean())
    if n == 1:
        return MeanCI(mean, math.nan, math.nan, math.nan, math.nan, 1, confidence)
    std = float(x.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, half, std, n, confidence)


def grid_columns(results: pd.DataFrame) -> list[str]:
    """The grid-key columns of a sweep's results frame.

    The frame's documented layout is ``point``, the grid keys, ``replication``, ``seed``,
    the metrics; the grid keys are the columns between ``point`` and ``replication``. A
    frame without that layout (assembled by hand) gives ``[]``.
    """
    cols = list(results.columns)
    if "point" in cols and "replication" in cols:
        i, j = cols.index("point"), cols.index("replication")
        if i < j:
            return cols[i + 1 : j]
    return []


def metric_columns(results: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Numeric, non-boolean columns that are neither grid keys nor point/replication/seed."""
    skip = set(RESERVED_COLUMNS) | set(grid_columns(results)) | set(exclude)
    out = []
    for name in results.columns:
        if name in skip:
            continue
        col = results[name]
        if pd.api.types.is_bool_dtype(col):
            continue
        if pd.api.types.is_numeric_dtype(col):
            out.append(name)
        elif col.dtype == object:
            # A metric that is None in some rows (no polls → no empty-poll fraction).
            coerced = pd.to_numeric(col, errors="coerce")
            if coerced.notna().sum() == col.notna().sum() and col.notna().any():
                out.append(name)
    return out


def aggregate(
    results: pd.DataFrame,
    metrics: str | Sequence[str] | None = None,
    by: str | Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean and confidence interval of each metric over replications, per grid point.

    ``results`` is one row per grid point × replication (a sweep's ``results.parquet``
    or any frame like it). ``by`` names the columns that identify a configuration
    (default: the grid keys, see :func:`grid_columns`, or ``point`` if there are none);
    ``metrics`` the columns to summarise (default: every numeric metric column).

    Returns a long ("tidy") frame, one row per configuration × metric, with the ``by``
    columns, then ``metric``, ``n`` (non-missing values), ``mean``, ``std``,
    ``half_width``, ``low``, ``high`` — all in the metric's unit. ``n = 1`` gives NaN
    for ``std``, ``half_width``, ``low`` and ``high``; ``n = 0`` (the metric is missing
    in every replication, e.g. empty-poll fraction with push) gives NaN throughout.
    Configurations keep the order in which they first appear.
    """
    _check_confidence(confidence)
    if by is None:
        keys = grid_columns(results) or (["point"] if "point" in results.columns else [])
    else:
        keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in results.columns]
    if missing:
        raise KeyError(f"no column {missing[0]!r} in the results (columns: {list(results)})")
    if metrics is None:
        names = metric_columns(results, exclude=keys)
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in names if m not in results.columns]
        if missing:
            raise KeyError(f"no metric column {missing[0]!r} in the results")
    columns = [*keys, "metric", "n", "mean", "std", "half_width", "low", "high"]
    if results.empty or not names:
        return pd.DataFrame(columns=columns)

    values = results[names].apply(pd.to_numeric, errors="coerce").astype(float)
    # Without keys the whole frame is one configuration: group on a constant.
    groups = [results[k] for k in keys] or [pd.Series(0, index=results.index, name="_all")]
    grouped = values.groupby(groups, sort=False, dropna=False)
    long = pd.DataFrame(
        {
            "n": grouped.count().stack(future_stack=True),
            "mean": grouped.mean().stack(future_stack=True),
            "std": grouped.std(ddof=1).stack(future_stack=True),
        }
    )
    long.index = long.index.set_names([*(keys or ["_all"]), "metric"])
    long = long.reset_index().drop(columns=["_all"], errors="ignore")
    long["n"] = long["n"].astype(int)
    t_factor = {
        k: (t_quantile(0.5 + confidence / 2.0, k - 1) if k >= 2 else math.nan)
        for k in long["n"].unique()
    }
    factor = long["n"].map(t_factor).astype(float)
    std_col = long["std"].where(long["n"] >= 2)
    long["std"] = std_col
    long["half_width"] = factor * std_col / np.sqrt(long["n"].clip(lower=1))
    long["low"] = long["mean"] - long["half_width"]
    long["high"] = long["mean"] + long["half_width"]
    long.loc[long["n"] == 0, "mean"] = math.nan
    return long[columns].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Latency percentiles of one run
# --------------------------------------------------------------------------------------


def latency_sample(messages: pd.DataFrame, online_only: bool = True) -> np.ndarray:
    """The latencies (ms) the summary's ``latency_*_ms`` are computed over.

    From a run's ``messages`` frame: expected rows (``stored``, when the column is there)
    with a latency (the message reached the app), and with ``online_only`` only those
    whose recipient was online when the message was stored (catch-up after being offline
    is a different question; ``online_only=False`` is every first delivery, the
    population ``immodel check`` summarises). :data:`LATENCY_POPULATIONS` names both.
    """
    lat = pd.to_numeric(messages["latency_ms"], errors="coerce")
    mask = lat.notna()
    if "stored" in messages.columns:
        mask &= messages["stored"].fillna(False).astype(bool)
    if online_only and "online_at_store" in messages.columns:
        mask &= messages["online_at_store"].fillna(False).astype(bool)
    return lat[mask].to_numpy(dtype=float)


#: How each latency population is named wherever a latency is shown (legends, tables,
#: ``immodel check``). The run summary's ``latency_*_ms`` are over online recipients;
#: ``immodel check`` on a trace (which has no presence) summarises every first delivery.
LATENCY_POPULATIONS = {
    True: "online recipients (latency_* metrics)",
    False: "every first delivery incl. catch-up",
}


def expected_pairs(messages: pd.DataFrame, online_only: bool = True) -> int:
    """How many (message, recipient) pairs the latency population should hold.

    The expected pairs of a run's ``messages`` frame (rows with ``stored`` true, when the
    column is there), and with ``online_only`` only those whose recipient was online when
    the message was stored. :func:`latency_sample` holds the delivered ones among them,
    so ``latency_sample(m).size / expected_pairs(m)`` is the population's delivery ratio.
    """
    mask = pd.Series(True, index=messages.index)
    if "stored" in messages.columns:
        mask &= messages["stored"].fillna(False).astype(bool)
    if online_only and "online_at_store" in messages.columns:
        mask &= messages["online_at_store"].fillna(False).astype(bool)
    return int(mask.sum())


#: Values of the ``messages`` column ``recipient_kind`` (hybrid runs: how the recipient's
#: client receives), in the order tables and legends show them.
RECIPIENT_KINDS = ("push", "long_poll", "short_poll")


def by_recipient_kind(messages: pd.DataFrame, online_only: bool = True) -> dict[str, Any]:
    """Latency and delivery split by the recipient's client kind (``recipient_kind``).

    For each kind present in the ``recipient_kind`` column of a run's ``messages``
    frame: ``latency_<p>_ms_<kind>`` (p50, p95, p99; over the population of
    :func:`latency_sample`, ms, numpy's linear quantile like the summary),
    ``deliveries_expected_<kind>`` (all expected pairs of recipients of that kind),
    ``lost_<kind>`` (expected pairs never shown) and ``delivery_ratio_<kind>``. Returns
    ``{}`` when the column is absent (runs that do not record it). Latency is None for a
    kind with no delivery.
    """
    if "recipient_kind" not in messages.columns:
        return {}
    out: dict[str, Any] = {}
    kinds = messages["recipient_kind"].dropna().astype(str)
    present = [k for k in RECIPIENT_KINDS if k in set(kinds)]
    present += sorted(set(kinds) - set(RECIPIENT_KINDS))
    for kind in present:
        frame = messages[messages["recipient_kind"].astype(str) == kind]
        x = latency_sample(frame, online_only)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            out[f"latency_{name}_ms_{kind}"] = float(np.quantile(x, q)) if x.size else None
        expected = expected_pairs(frame, online_only=False)
        delivered = int(latency_sample(frame, online_only=False).size)
        out[f"deliveries_expected_{kind}"] = expected
        out[f"lost_{kind}"] = expected - delivered
        out[f"delivery_ratio_{kind}"] = delivered / expected if expected else None
    return out


def latency_percentiles(
    messages: pd.DataFrame,
    percentiles: Sequence[float] = (50, 95, 99),
    by: str | Sequence[str] | None = None,
    online_only: bool = True,
) -> pd.DataFrame:
    """Latency percentiles (ms) of a run's messages, overall or per group.

    ``percentiles`` in [0, 100]; the columns are named ``p50``, ``p99``, ``p99.9``…
    plus ``n`` (the sample size). ``by`` groups the rows (e.g. ``"first_via"``: push,
    poll, sync). Same estimator as the run summary (``numpy.quantile``, linear), so
    ``latency_percentiles(result.messages)["p99"]`` equals ``summary["latency_p99_ms"]``.
    """
    qs = [float(p) for p in percentiles]
    if any(not 0.0 <= p <= 100.0 for p in qs):
        raise ValueError(f"percentiles must be in [0, 100], got {list(percentiles)}")
    names = [f"p{p:g}" for p in qs]

    def row(frame: pd.DataFrame) -> dict[str, float]:
        x = latency_sample(frame, online_only)
        out: dict[str, float] = {"n": int(x.size)}
        values = np.quantile(x, np.array(qs) / 100.0) if x.size else [math.nan] * len(qs)
        out.update({name: float(v) for name, v in zip(names, values, strict=True)})
        return out

    if by is None:
        return pd.DataFrame([row(messages)], columns=["n", *names])
    keys = [by] if isinstance(by, str) else list(by)
    rows = []
    for group, frame in messages.groupby(keys, sort=True, observed=True, dropna=False):
        labels = group if isinstance(group, tuple) else (group,)
        rows.append({**dict(zip(keys, labels, strict=True)), **row(frame)})
    return pd.DataFrame(rows, columns=[*keys, "n", *names])


def ecdf(values: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF: sorted values ``x`` and ``F(x) = i / n`` for ``i = 1 … n``.

    NaN values are dropped. Plot with ``drawstyle="steps-post"``.
    """
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    x = np.sort(x[~np.isnan(x)])
    return x, np.arange(1, x.size + 1, dtype=float) / max(x.size, 1)


def _binom_cdf(n: int, p: float) -> np.ndarray:
    """P(B ≤ k) for k = 0 … n, B ~ Binomial(n, p) (log-space, stable for large n)."""
    k = np.arange(n + 1)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    log_pmf = log_fact[n] - log_fact - log_fact[::-1] + k * math.log(p) + (n - k) * math.log1p(-p)
    return np.cumsum(np.exp(log_pmf))


def quantile_ci(
    values: Iterable[float], q: float, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Distribution-free confidence interval of the ``q`` quantile (``q`` in (0, 1)).

    Returns ``(estimate, low, high)``: the sample quantile (``numpy.quantile``) and two
    order statistics ``x(l) ≤ x(u)`` chosen from Binomial(n, q) so that the interval
    covers the true quantile with probability at least ``confidence`` whatever the
    distribution (independent samples assumed; a run's latencies are positively
    correlated in time, so read it as a lower bound on the uncertainty). A bound the
    sample is too small to give is NaN — e.g. the upper bound of p99 from fewer than
    about 300 samples.
    """
    _check_confidence(confidence)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    x = np.sort(x[~np.isnan(x)])
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    estimate = float(np.quantile(x, q))
    alpha = 1.0 - confidence
    cdf = _binom_cdf(n, q)  # cdf[k] = P(B ≤ k), B = number of samples below the quantile
    # [x(l), x(u)] (1-based) covers the quantile when l ≤ B ≤ u − 1.
    lows = np.nonzero(cdf <= alpha / 2.0)[0]  # k = l − 1 with P(B ≤ l − 1) ≤ α/2
    l_rank = int(lows[-1]) + 1 if lows.size else 0
    highs = np.nonzero(cdf >= 1.0 - alpha / 2.0)[0]  # k = u − 1 with P(B ≤ u − 1) ≥ 1 − α/2
    u_rank = int(highs[0]) + 1 if highs.size else n + 1
    low = float(x[l_rank - 1]) if l_rank >= 1 else math.nan
    high = float(x[u_rank - 1]) if u_rank <= n else math.nan
    return estimate, low, high

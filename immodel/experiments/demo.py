"""``immodel demo``: the built-in comparison of the four transports across downlink loss.

The main job of the project (``make demo``). It runs a small sweep — short polling, long
polling, push and hybrid × downlink loss 0, 5, 10, 20 % × a few replications — through
:func:`immodel.experiments.run_sweep` (a local process pool, ``--workers``), then writes
into the output folder (default ``demo-output/``):

* ``results.parquet``, ``sweep.toml``, … — an ordinary sweep folder, so re-running the
  demo reuses every finished run, and ``immodel sweep OUT/sweep.toml --out OUT`` or
  ``immodel plot OUT`` work on it;
* ``figures/`` — the standard sweep figures (:func:`immodel.analysis.plots.sweep_figures`)
  plus the latency distribution of each transport at 10 % loss;
* ``runs/<transport>/`` — those four runs with their records (``immodel plot`` works on
  each);
* ``report.md`` — one page: what was run, the headline table with 95 % confidence
  intervals, what it shows, the figures.

It prints the headline table (latency p50/p99, requests/s, lost per strategy at each
loss rate). :func:`run_demo` is the same from Python, with ``scale="tiny"`` for a
seconds-long smoke run (the tests use it).

Scale (``default``): 200 users each sending 0.05 messages/s for 120 s (1 200 messages a
run), then at each point the drain its repairs need (``drain_s = "auto"``,
:func:`immodel.sim.faults.required_drain_s`) so that the slowest repair finishes inside
the run and late is not counted as lost: 11–13 s without loss, 317–319 s at 20 % loss,
where a long poll whose response is lost waits out its hold and request timeout before
it polls again, and nine such losses in a row still have a chance of 1 in 2 million.
Rates (requests/s, empty polls) are taken over the sending period, so points with
different drains compare. 5 replications with common random numbers: 80 runs; the four
runs of replication 0 at 10 % loss keep their records for the latency distributions
(written by the sweep's workers, not simulated twice). The earlier default (1 000 users
at 0.02 messages/s, 2 400 messages a run, every point drained as long as the worst one)
took 4.5 min of CPU, mostly idle polls in the drain; see the README's Performance
section for the time the demo takes now.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["SCALES", "TRANSPORTS", "DemoResult", "DemoScale", "cmd_demo", "demo_sweep", "run_demo"]

#: The strategies compared, in the order of the tables and legends.
TRANSPORTS = ("short_poll", "long_poll", "push", "hybrid")

LOSS_KEY = "network.downlink_loss"
KIND_KEY = "transport.kind"


@dataclass(frozen=True)
class DemoScale:
    """How big the demo's sweep is: workload, loss rates, replications."""

    users: int
    duration_s: float
    send_rate_per_user: float  # messages/s per user
    losses: tuple[float, ...]
    replications: int
    ecdf_loss: float  # the loss rate of the per-transport latency-distribution runs


#: ``default`` is the real demo (minutes; see the module docstring); ``tiny`` a smoke test.
SCALES: dict[str, DemoScale] = {
    "default": DemoScale(
        users=200,
        duration_s=120.0,
        send_rate_per_user=0.05,
        losses=(0.0, 0.05, 0.1, 0.2),
        replications=5,
        ecdf_loss=0.1,
    ),
    "tiny": DemoScale(
        users=20,
        duration_s=10.0,
        send_rate_per_user=0.1,
        losses=(0.0, 0.2),
        replications=2,
        ecdf_loss=0.2,
    ),
}


@dataclass
class DemoResult:
    """What :func:`run_demo` produced: the results, the headline table, the files."""

    out: Path
    results: pd.DataFrame
    table: pd.DataFrame
    figures: list[Path] = field(default_factory=list)
    report: Path | None = None
    runs_total: int = 0
    runs_reused: int = 0
    wall_s: float = 0.0


def _scale(scale: str | DemoScale) -> DemoScale:
    from immodel.errors import UserError

    if isinstance(scale, DemoScale):
        return scale
    if scale not in SCALES:
        raise UserError(f"demo scale must be one of {', '.join(SCALES)}, got {scale!r}")
    return SCALES[scale]


def demo_sweep(scale: str | DemoScale = "default") -> dict[str, Any]:
    """The demo's sweep as a mapping for :func:`immodel.experiments.load_sweep`."""
    s = _scale(scale)
    return {
        "scenario": "baseline",
        "description": "immodel demo: the four transports across downlink loss",
        "replications": s.replications,
        "seed": 2024,
        "set": {
            "workload.users": s.users,
            "workload.send_rate_per_user": s.send_rate_per_user,
            "duration_s": s.duration_s,
            "drain_s": "auto",  # each point its own: no idle polling past its repairs
        },
        "grid": {LOSS_KEY: list(s.losses), KIND_KEY: list(TRANSPORTS)},
    }


@dataclass(frozen=True)
class _KeepRecords:
    """The demo's sweep runner: the summary of every run, as
    :func:`~immodel.experiments.sweep.default_runner` returns it, and for the runs of
    ``seed`` at ``loss`` (replication 0 at the ECDF loss rate) also their records, written
    to ``runs_dir/<transport>/`` by the worker that simulated them, so that the latency
    distributions cost no second simulation. Picklable (a process pool sends it)."""

    runs_dir: str
    seed: int
    loss: float

    def __call__(self, scenario) -> dict[str, Any]:
        import shutil
        import warnings

        from immodel import run
        from immodel.errors import DrainWarning

        keep = scenario["seed"] == self.seed and math.isclose(scenario[LOSS_KEY], self.loss)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DrainWarning)  # as default_runner does
            result = run(scenario)
        if keep:
            # Written beside the target and renamed: a killed run leaves no half folder.
            folder = Path(self.runs_dir) / scenario[KIND_KEY]
            tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            result.write(tmp)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        return result.summary


def _run_to_folder(scenario_toml: str, folder: str) -> str:
    """Run one scenario (given as TOML text) and write its records; for a process pool."""
    import tomllib

    from immodel import Scenario, run

    run(Scenario.load(tomllib.loads(scenario_toml))).write(folder)
    return folder


def _ecdf_runs(sweep, scale: DemoScale, out: Path, workers: int | None) -> dict[str, pd.DataFrame]:
    """Replication 0 of each transport at ``scale.ecdf_loss``, records kept in out/runs/.

    A run folder whose ``scenario.toml`` is the same scenario is reused (resumable).
    """
    tasks = [
        t
        for t in sweep.tasks()
        if t.replication == 0 and math.isclose(t.values[LOSS_KEY], scale.ecdf_loss)
    ]
    todo = {}
    for task in tasks:
        folder = out / "runs" / task.values[KIND_KEY]
        text = task.scenario.resolved().to_toml()  # what the run writes: drain resolved
        done = (folder / "messages.parquet").is_file() and (folder / "scenario.toml").is_file()
        if not done or (folder / "scenario.toml").read_text(encoding="utf-8") != text:
            todo[str(folder)] = text
    if todo:
        n = min(len(todo), workers or os.cpu_count() or 1)
        if n > 1:
            with ProcessPoolExecutor(max_workers=n) as pool:
                list(pool.map(_run_to_folder, todo.values(), todo.keys()))
        else:
            for folder, text in todo.items():
                _run_to_folder(text, folder)
    return {
        t.values[KIND_KEY]: pd.read_parquet(out / "runs" / t.values[KIND_KEY] / "messages.parquet")
        for t in tasks
    }


def _drains(results: pd.DataFrame) -> str:
    """The drains the points used (``drain_s = "auto"``): ``a drain of 11–319 s (…)``."""
    what = "the time each point's repairs need"
    if "drain_s_used" not in results.columns or results.empty:
        return f"a drain of {what}"
    used = pd.to_numeric(results["drain_s_used"], errors="coerce").dropna()
    if used.empty:
        return f"a drain of {what}"
    lo, hi = used.min(), used.max()
    span = f"{lo:g} s" if lo == hi else f"{lo:g}–{hi:g} s"
    return f"a drain of {span} ({what})"


def _fmt_ms(ms: float) -> str:
    if ms is None or math.isnan(ms):
        return "–"
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def _findings(table: pd.DataFrame, results: pd.DataFrame, fixed) -> list[str]:
    """Paragraphs on what the table shows, computed from it (no number is hard-coded)."""
    from immodel.analysis.plots import value_label
    from immodel.experiments.report import explain_order_violations

    def at(loss: float, kind: str, metric: str) -> float:
        row = table[(table[LOSS_KEY] == loss) & (table[KIND_KEY] == kind)]
        return float(row[metric].iloc[0]) if len(row) and metric in row else math.nan

    kinds = [k for k in TRANSPORTS if k in set(table[KIND_KEY])]
    losses = sorted(set(table[LOSS_KEY]))
    lo, hi = losses[0], losses[-1]
    name = {k: value_label(KIND_KEY, k) for k in kinds}
    out = []

    # 1. No loss: latency and cost.
    p50 = {k: at(lo, k, "latency_p50_ms") for k in kinds}
    rps = {k: at(lo, k, "requests_per_s") for k in kinds}
    fast = [k for k in kinds if k != "short_poll"]
    text = f"**Without loss ({value_label(LOSS_KEY, lo)})**, "
    if fast:
        text += (
            "the transports that deliver as soon as a message is stored have a median latency "
            "of "
            + ", ".join(f"{_fmt_ms(p50[k])} ({name[k]})" for k in fast)
            + ": about one network round trip plus the server stages"
        )
    if "short_poll" in kinds:
        interval = fixed["transport.poll_interval_s"]
        text += (
            f"; short polling every {interval:g} s waits for the next poll, "
            f"{_fmt_ms(p50['short_poll'])} at the median"
        )
        base = rps.get("push", math.nan)
        if base and not math.isnan(base):
            text += (
                f", and costs {rps['short_poll'] / base:.1f}× the access-layer requests of push "
                f"({rps['short_poll']:,.0f} vs {base:,.0f} requests/s for "
                f"{int(fixed['workload.users']):,} users)"
            )
        if "empty_poll_fraction" in results.columns:
            sp = results[(results[LOSS_KEY] == lo) & (results[KIND_KEY] == "short_poll")]
            share = pd.to_numeric(sp["empty_poll_fraction"], errors="coerce").mean()
            if not math.isnan(share):
                text += f"; {share * 100:.0f} % of its polls come back empty"
    out.append(text + ".")

    # 2. Under loss: the tail.
    p99 = {k: at(hi, k, "latency_p99_ms") for k in kinds}
    p99_lo = {k: at(lo, k, "latency_p99_ms") for k in kinds}
    p50_hi = {k: at(hi, k, "latency_p50_ms") for k in kinds}
    text = (
        f"**At {value_label(LOSS_KEY, hi)} downlink loss** the medians barely move ("
        + ", ".join(f"{name[k]} {_fmt_ms(p50_hi[k])}" for k in kinds)
        + ") but the tail does: p99 is "
        + ", ".join(f"{name[k]} {_fmt_ms(p99[k])} (from {_fmt_ms(p99_lo[k])})" for k in kinds)
        + ". "
    )
    ack = fixed["reliability.ack_timeout_s"]
    hold = fixed["transport.long_poll_hold_s"]
    timeout = fixed["transport.request_timeout_s"]
    interval = fixed["transport.poll_interval_s"]
    text += (
        "The tails follow the repair timers: a pushed message whose packet is lost waits "
        f"for the pending-ACK retransmit ({ack:g} s timeout), a long poller notices a lost "
        f"response only when the hold ({hold:g} s) plus the request timeout ({timeout:g} s) "
        "have run out, which gives long polling and the hybrid's web clients the longest "
        f"tails, and a short poller picks the message up a poll interval ({interval:g} s) "
        "or more later."
    )
    out.append(text)

    # 3. Loss, duplicates, order.
    runs = len(results)
    labels = {
        "lost": "lost",
        "duplicates": "duplicated",
        "order_violations": "received out of order",
    }
    clean, cells = [], []
    for metric, label in labels.items():
        if metric not in results.columns:
            continue
        sums = results.groupby([LOSS_KEY, KIND_KEY], sort=False)[metric].sum()
        bad = [(loss, kind, int(total)) for (loss, kind), total in sums.items() if total > 0]
        if not bad:
            clean.append(label)
            continue
        where = "; ".join(
            f"{total} with {name.get(kind, kind)} at {value_label(LOSS_KEY, loss)}"
            for loss, kind, total in bad
        )
        cells.append(f"{sum(t for _, _, t in bad)} deliveries were {label} ({where})")
    if not cells:
        out.append(
            f"**Nothing was lost, duplicated or reordered** in any of the {runs} runs: with "
            "every reliability mechanism of the article on (uplink retry + server dedup, "
            "pending-ACK retransmit + client dedup, timestamp/seq sync), loss costs latency "
            "and retransmissions, not messages."
        )
    else:
        text = f"Over the {runs} runs, "
        if clean:
            text += "nothing was " + " or ".join(clean) + "; "
        text += "; ".join(cells) + (
            ". 'Lost' means not delivered by the end of the drain. The outcomes figure "
            "shows them per run with confidence intervals."
        )
        out.append(text)
    order = explain_order_violations(results)
    if order:
        out.append(order)
    return out


def run_demo(
    out: str | os.PathLike[str] = "demo-output",
    *,
    scale: str | DemoScale = "default",
    workers: int | None = None,
    progress: bool | None = None,
) -> DemoResult:
    """Run (or resume) the demo sweep into ``out`` and write its figures and report.

    ``scale``: ``"default"`` or ``"tiny"`` (or a :class:`DemoScale`); ``workers``: local
    processes (default: all cores; 1 runs in this process); ``progress``: a progress bar
    on stderr (default: when stderr is a terminal). Finished runs in ``out`` are reused.
    Raises :class:`~immodel.errors.UserError` if ``out`` holds another sweep (e.g. the
    demo at another scale).
    """
    from immodel.analysis.plots import (
        plot_latency_ecdf,
        save_figure,
        sweep_figures,
        value_label,
    )
    from immodel.experiments.report import (
        LATENCY_NOTE,
        format_markdown_table,
        headline_table,
        write_report,
    )
    from immodel.experiments.sweep import load_sweep, run_sweep, sweep_status

    t0 = time.perf_counter()
    s = _scale(scale)
    out = Path(out)
    sweep = load_sweep(demo_sweep(s))
    status = sweep_status(sweep, out)
    import immodel.sim.model  # noqa: F401  # imported before the pool forks its workers

    seed = sweep.replication_seeds()[0]
    runner = _KeepRecords(str(out / "runs"), seed, s.ecdf_loss)
    results = run_sweep(sweep, out, workers=workers, runner=runner, progress=progress)
    ecdf = _ecdf_runs(sweep, s, out, workers)  # simulates only what a resumed sweep lacks

    figures = [p for p in sweep_figures(results, out / "figures") if p.suffix == ".png"]
    title = f"Latency at {value_label(LOSS_KEY, s.ecdf_loss)} downlink loss, one run each"
    fig = plot_latency_ecdf(ecdf, title=title)
    figures.append(save_figure(fig, out / "figures", "latency_ecdf_by_transport")[0])

    keys = [LOSS_KEY, KIND_KEY]
    table = headline_table(results, keys)
    fixed = sweep.tasks()[0].scenario  # non-grid keys are the same in every task
    captions = {
        "latency_vs_downlink_loss": "Latency (p50 dashed, p99 solid) vs downlink loss, "
        "mean over replications with 95 % CI bands.",
        "requests_vs_downlink_loss": "Requests per second reaching the access layer.",
        "empty_polls_vs_downlink_loss": "Share of polls that returned no message "
        "(push has no polls).",
        "outcomes": "Lost, duplicate and out-of-order deliveries per run; out of order is "
        "arrival order at the app (see the findings on order).",
        "cost_frontier": "p99 latency vs access-layer load; filled markers are the cheapest "
        "for their latency at their loss rate among configurations that lost nothing "
        "(a crossed marker lost messages and cannot be on the frontier).",
        "latency_ecdf_by_transport": f"Latency distribution of one run per transport at "
        f"{value_label(LOSS_KEY, s.ecdf_loss)} downlink loss.",
    }
    setup = (
        f"{fixed['workload.users']:,} users, each sending "
        f"{fixed['workload.send_rate_per_user']:g} messages/s to a random contact for "
        f"{fixed['duration_s']:g} s, then {_drains(results)}, "
        f"{fixed['network.latency_ms']:g} ms one-way latency, every reliability mechanism "
        f"on; short polling every {fixed['transport.poll_interval_s']:g} s, long polls held "
        f"{fixed['transport.long_poll_hold_s']:g} s, hybrid = "
        f"{fixed['transport.web_share'] * 100:.0f} % web clients on long polling and "
        "the rest on push. "
        f"Downlink loss {', '.join(value_label(LOSS_KEY, x) for x in s.losses)}; "
        f"{s.replications} "
        f"replications per point with common random numbers ({len(results)} runs, "
        f"{len(status.done)} reused from an earlier run of the demo). Cells are the mean "
        "over replications ± the 95 % confidence half width (Student t). " + LATENCY_NOTE
    )
    report = write_report(
        out / "report.md",
        title="immodel demo: message delivery by transport under downlink loss",
        setup=setup,
        table_markdown=format_markdown_table(table, keys),
        findings=_findings(table, results, fixed),
        figures=[(p, captions.get(p.stem, p.stem.replace("_", " "))) for p in figures],
        reproduce=[
            f"immodel demo --out {out}",
            f"immodel sweep {out / 'sweep.toml'} --out {out}   # the sweep alone",
            f"immodel plot {out}",
            f"immodel plot {out / 'runs' / 'push'}   # one run's ECDF and load timeline",
        ],
    )
    return DemoResult(
        out=out,
        results=results,
        table=table,
        figures=figures,
        report=report,
        runs_total=status.total,
        runs_reused=len(status.done),
        wall_s=time.perf_counter() - t0,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """``immodel demo [--out DIR] [--workers N]``: run the demo, print the headline table."""
    from immodel.experiments.executors import validate_workers
    from immodel.experiments.report import format_text_table

    validate_workers(args.workers)
    out = Path(args.out)
    scale = getattr(args, "scale", "default")
    s = _scale(scale)
    print(
        f"immodel demo: {len(TRANSPORTS)} transports × {len(s.losses)} loss rates × "
        f"{s.replications} replications → {out}/",
        file=sys.stderr,
    )
    result = run_demo(out, scale=scale, workers=args.workers)
    keys = [LOSS_KEY, KIND_KEY]
    print(format_text_table(result.table, keys))
    print(
        f"\nmeans over {s.replications} replications (95 % CIs in the report); "
        f"{result.runs_total} runs, {result.runs_reused} reused; {result.wall_s:.0f} s"
    )
    print(f"report:  {result.report}")
    print(f"figures: {out / 'figures'}/ ({len(result.figures)} PNG, each also as SVG)")
    return 0

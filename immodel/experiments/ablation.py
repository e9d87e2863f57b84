"""The ablation: which reliability mechanism of the article repairs which fault.

The article's claim is that unique ids + uplink retry + server dedup, the pending-ACK
queue + retransmit + client dedup, and timestamp/seq sync *together* lose nothing and
show nothing twice, even when a server crashes with its pending-ACK queue. This module
runs every fault kind of :mod:`immodel.sim.faults` against nested sets of those
mechanisms and tabulates what the user would see::

    from immodel.experiments.ablation import run_ablation, ablation_table, format_table

    frame = run_ablation(replications=3, workers=2)   # one row per run
    print(format_table(ablation_table(frame)))        # mean per fault × mechanism set

or ``python -m immodel.experiments.ablation --replications 3 --workers 2``.

**Mechanism sets** (:data:`MECHANISMS`, each adds to the one before, as the article
builds its argument): ``none`` (every ``reliability.*`` switch off), ``retry+dedup``
(``uplink_retry``, ``server_dedup``), ``+ack+client_dedup`` (adds ``downlink_ack``,
``client_dedup``), ``+sync`` (all on, the deployment the article describes).
:data:`LEAVE_ONE_OUT` holds the complementary view, everything on but one mechanism,
which isolates the mechanisms the nested sets switch on together.

**Faults** (:func:`default_faults`): ``none`` and one of each kind, scaled to the
sending period: they strike a quarter of the way in and most last ten seconds; the slow
server answers 2.5 × the sender's timeout late; the skewed clock is a second ahead.

**Drain.** A cell's ``drain_s`` is derived, not guessed: :func:`immodel.sim.faults.
required_drain_s` adds up the protocol's own timeouts (uplink retries, dead-connection
detection, reconnect backoff, retransmit and sync rounds) after the last fault ends.

**Seeds.** The cells run as sweeps (:mod:`immodel.experiments.sweep`, one per mechanism
set, a grid over the faults), so replication *r* uses the same seed in every cell
(common random numbers: the same users send the same messages at the same times) and
every run can be replayed alone with ``immodel run`` (:func:`replay_command`).

``experiments/ablation.toml`` is the full 2⁵ factorial of the five switches as a plain
sweep file (``immodel sweep experiments/ablation.toml``); :func:`ablation_table` also
reads its ``results.parquet`` and names the cells that are one of the sets here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from immodel.scenario import Scenario
from immodel.sim.faults import required_drain_s

#: The five switches of the article's mechanisms, in the order the article adds them.
SWITCHES = (
    "reliability.uplink_retry",
    "reliability.server_dedup",
    "reliability.downlink_ack",
    "reliability.client_dedup",
    "reliability.sync",
)


def _on(*names: str) -> dict[str, bool]:
    return {key: key.split(".", 1)[1] in names for key in SWITCHES}


#: The nested mechanism sets of the ablation: name → the five switches.
MECHANISMS: dict[str, dict[str, bool]] = {
    "none": _on(),
    "retry+dedup": _on("uplink_retry", "server_dedup"),
    "+ack+client_dedup": _on("uplink_retry", "server_dedup", "downlink_ack", "client_dedup"),
    "+sync": _on("uplink_retry", "server_dedup", "downlink_ack", "client_dedup", "sync"),
}

#: Everything on but one mechanism: name → the five switches.
LEAVE_ONE_OUT: dict[str, dict[str, bool]] = {
    f"-{key.split('.', 1)[1]}": {k: k != key for k in SWITCHES} for key in SWITCHES
}

#: The counts of the table: what the user sees when a mechanism is missing, then where
#: server dedup shows when client dedup hides its failure (``messages_stored_twice``)
#: and where a skewed clock shows (a recipient's own order check cannot see it).
TABLE_METRICS = (
    "lost",
    "duplicates",
    "order_violations",
    "send_failures",
    "messages_stored_twice",
    "stored_order_inversions",
)

#: The ablation's deployment (on top of the scenario defaults): small enough to run the
#: whole table in seconds, large enough that every fault has work to disturb. Three
#: nodes, so a crash or a slow/failing store hits a third of the users and the skewed
#: clock (node 1) stamps only some conversations' messages. A mobile network: 1 % loss
#: each way and a lognormal latency, so that ACKs take long enough for a crash to catch
#: messages in the pending-ACK queue (the article's figure 4) and the ``none`` row
#: shows what each mechanism does without any fault. The datagram model: the ablation asks
#: what each application mechanism buys when the application sees every loss (on the
#: stream model the transport hides segment loss, and only faults remain to repair).
BASE: dict[str, Any] = {
    "name": "ablation",
    "description": "fault × reliability-mechanism ablation cell",
    "duration_s": 40.0,
    "workload.users": 40,
    "workload.send_rate_per_user": 0.2,
    "workload.group_share": 0.3,
    "workload.groups": 4,
    "workload.group_size": 8,
    "network.latency_ms": {"dist": "lognormal", "median": 60.0, "p99": 400.0},
    "network.uplink_loss": 0.01,
    "network.downlink_loss": 0.01,
    "network.model": "datagram",
    "server.nodes": 3,
}


def default_faults(duration_s: float = 40.0, uplink_timeout_s: float = 5.0) -> dict[str, list]:
    """One fault of each kind (plus ``none``), scaled to the sending period.

    Faults start at a quarter of ``duration_s`` and those that last, last ten seconds (or
    a quarter of the period if that is shorter). The slow server answers
    ``2.5 × uplink_timeout_s`` late, so every sender times out and retries a stored
    message; the loss burst drops 30 % each way; the skewed clock (node 1) is 1 s ahead.
    """
    at = duration_s / 4.0
    down = min(10.0, duration_s / 4.0)
    return {
        "none": [],
        "server_crash": [{"kind": "server_crash", "at_s": at, "down_s": down, "node": 0}],
        "gateway_crash": [{"kind": "gateway_crash", "at_s": at, "share": 0.5}],
        "client_crash": [{"kind": "client_crash", "at_s": at, "share": 0.5}],
        "partition": [
            {"kind": "partition", "at_s": at, "down_s": down, "share": 0.3, "direction": "both"}
        ],
        "loss_burst": [
            {
                "kind": "loss_burst",
                "at_s": at,
                "down_s": down,
                "uplink_loss": 0.3,
                "downlink_loss": 0.3,
            }
        ],
        "store_failure": [
            {"kind": "store_failure", "at_s": at, "down_s": down, "prob": 0.5, "node": 0}
        ],
        "slow_server": [
            {
                "kind": "slow_server",
                "at_s": at,
                "down_s": down,
                "extra_ms": 2500.0 * uplink_timeout_s,
                "node": 0,
            }
        ],
        "clock_skew": [{"kind": "clock_skew", "at_s": 0.0, "skew_ms": 1000.0, "node": 1}],
    }


def base_scenario(base: Scenario | Mapping[str, Any] | str | None = None) -> Scenario:
    """The ablation's base scenario: ``base`` (default :data:`BASE`), all mechanisms on."""
    if base is None:
        return Scenario.load(dict(BASE))
    return Scenario.load(base)


def cell_scenario(
    fault: Sequence[Mapping[str, Any]],
    mechanisms: Mapping[str, bool],
    base: Scenario | Mapping[str, Any] | str | None = None,
    seed: int | None = None,
) -> Scenario:
    """The scenario of one cell: ``base`` with ``fault`` (a list of fault tables), the
    ``mechanisms`` switches and the drain that the faults and timeouts need."""
    scenario = base_scenario(base).with_overrides({**mechanisms, "faults": list(fault)})
    over: dict[str, Any] = {"drain_s": required_drain_s(scenario)}
    if seed is not None:
        over["seed"] = seed
    return scenario.with_overrides(over)


def run_ablation(
    *,
    base: Scenario | Mapping[str, Any] | str | None = None,
    faults: Mapping[str, list] | None = None,
    mechanisms: Mapping[str, Mapping[str, bool]] | None = None,
    replications: int = 3,
    seed: int = 1,
    workers: int | None = 1,
    out: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Run every fault × mechanism-set cell ``replications`` times; one row per run.

    ``faults`` maps a label to a fault list (default :func:`default_faults` for the base's
    period and uplink timeout), ``mechanisms`` a label to the five switches (default
    :data:`MECHANISMS`). Each mechanism set is one sweep whose grid is the faults, run
    with :func:`immodel.experiments.run_sweep` into ``out/<set>`` (a temporary folder if
    ``out`` is None; with a folder, a re-run resumes). Every cell's drain is derived from
    its faults and timeouts (:func:`~immodel.sim.faults.required_drain_s`), so the sweep
    grid lists the (fault, drain) pairs through the ``faults`` key and sets ``drain_s``
    to the longest one.

    Returns the sweep results with two label columns first, ``mechanisms`` and
    ``fault``, then ``replication``, ``seed`` and every summary metric.
    """
    from immodel.experiments.sweep import run_sweep

    scenario = base_scenario(base)
    mechanisms = dict(mechanisms or MECHANISMS)
    if faults is None:
        faults = default_faults(scenario["duration_s"], scenario["reliability.uplink_timeout_s"])
    names = list(faults)
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="immodel-ablation-")
        out = tmp.name
    frames = []
    try:
        for label, switches in mechanisms.items():
            # One drain for the whole sweep (a fixed key): the longest any fault needs.
            drain = max(
                cell_scenario(faults[name], switches, scenario)["drain_s"] for name in names
            )
            sweep = {
                "scenario": scenario,
                "replications": replications,
                "seed": seed,
                "description": f"ablation: mechanisms {label}",
                "set": {**switches, "drain_s": drain},
                "grid": {"faults": [list(faults[name]) for name in names]},
            }
            frame = run_sweep(sweep, Path(out) / _folder(label), workers=workers, progress=progress)
            labels = pd.DataFrame(
                {"mechanisms": label, "fault": [names[p] for p in frame["point"]]},
                index=frame.index,
            )
            frames.append(pd.concat([labels, frame.drop(columns=["point", "faults"])], axis=1))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return pd.concat(frames, ignore_index=True)


def factorial_sweep(replications: int = 2, seed: int = 1) -> dict[str, Any]:
    """The full 2⁵ factorial of the switches × :func:`default_faults` as a sweep mapping.

    The content of ``experiments/ablation.toml`` (:func:`factorial_sweep_toml`): base
    ``baseline`` with :data:`BASE` in ``[set]``, the drain the most demanding cell needs
    (every mechanism on: the longest retry schedule), and a grid over the faults and the
    five switches. :func:`ablation_table` reads its results.
    """
    scenario = base_scenario()
    faults = default_faults(scenario["duration_s"], scenario["reliability.uplink_timeout_s"])
    drain = max(cell_scenario(f, MECHANISMS["+sync"], scenario)["drain_s"] for f in faults.values())
    fixed = {k: v for k, v in BASE.items() if k not in ("name", "description")}
    grid: dict[str, list] = {"faults": [list(f) for f in faults.values()]}
    grid.update({key: [True, False] for key in SWITCHES})
    return {
        "description": (
            "fault × reliability-mechanism ablation, full factorial of the five switches "
            "(immodel.experiments.ablation names the article's nested sets)"
        ),
        "scenario": "baseline",
        "replications": replications,
        "seed": seed,
        "set": {**fixed, "drain_s": drain},
        "grid": grid,
    }


def factorial_sweep_toml(replications: int = 2, seed: int = 1) -> str:
    """:func:`factorial_sweep` as sweep-file TOML (what ``experiments/ablation.toml`` holds)."""
    import tomli_w

    data = factorial_sweep(replications, seed)
    header = (
        "# Generated by `python -m immodel.experiments.ablation --write-sweep PATH`; edit the\n"
        "# module, not this file. Run: immodel sweep experiments/ablation.toml --workers 2\n"
    )
    return header + tomli_w.dumps(data)


def _folder(label: str) -> str:
    return label.replace("+", "plus-").replace("-", "_").strip("_") or "set"


def mechanism_label(row: Mapping[str, Any]) -> str:
    """The name of the mechanism set of a results row with the five switch columns:
    one of :data:`MECHANISMS` or :data:`LEAVE_ONE_OUT`, else the switches that are on."""
    on = {k: bool(row[k]) for k in SWITCHES}
    for table in (MECHANISMS, LEAVE_ONE_OUT):
        for name, switches in table.items():
            if switches == on:
                return name
    return "+".join(k.split(".", 1)[1] for k in SWITCHES if on[k]) or "none"


def ablation_table(frame: pd.DataFrame, metrics: Sequence[str] = TABLE_METRICS) -> pd.DataFrame:
    """Mean of ``metrics`` per fault × mechanism set (rows: fault; columns: metric, set).

    ``frame`` is :func:`run_ablation`'s result, or the ``results.parquet`` of the
    factorial sweep ``experiments/ablation.toml`` (its ``faults`` JSON column is named
    by fault kind, its five switch columns by :func:`mechanism_label`).
    """
    frame = frame.copy()
    metrics = [m for m in metrics if m in frame.columns]
    if "mechanisms" not in frame.columns:
        frame["mechanisms"] = [mechanism_label(r) for r in frame.to_dict("records")]
    if "fault" not in frame.columns:
        frame["fault"] = [_fault_name(text) for text in frame["faults"]]
    order_m = list(dict.fromkeys(frame["mechanisms"]))
    order_f = list(dict.fromkeys(frame["fault"]))
    table = frame.groupby(["fault", "mechanisms"], sort=False)[list(metrics)].mean()
    table = table.unstack("mechanisms")
    table = table.reindex(index=order_f)
    return table.reindex(columns=pd.MultiIndex.from_product([list(metrics), order_m]))


def _fault_name(text: Any) -> str:
    import json

    faults = json.loads(text) if isinstance(text, str) else list(text)
    return "+".join(f["kind"] for f in faults) or "none"


def format_table(table: pd.DataFrame) -> str:
    """The ablation table as text: one block per metric, faults down, sets across."""
    blocks = []
    for metric in dict.fromkeys(table.columns.get_level_values(0)):
        part = table[metric]
        text = part.to_string(float_format=lambda x: f"{x:.1f}", na_rep="-")
        blocks.append(f"{metric} (mean per run)\n{text}")
    return "\n\n".join(blocks)


def replay_command(scenario: Scenario, directory: str | os.PathLike[str] | None = None) -> str:
    """Write ``scenario`` as TOML and return the ``immodel run`` command that replays it.

    The file goes to ``directory`` (default: a new temporary folder, left in place so the
    command keeps working) and is named after the scenario and its seed.
    """
    folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="immodel-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scenario['name']}-seed{scenario['seed']}.toml"
    path.write_text(scenario.to_toml(), encoding="utf-8")
    return f"immodel run {path} --seed {scenario['seed']}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m immodel.experiments.ablation``: run the ablation and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m immodel.experiments.ablation",
        description="fault × reliability-mechanism ablation (the article's claim, cell by cell)",
    )
    parser.add_argument("--replications", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=None, help="keep the sweeps here (resumable)")
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="also run every mechanism set with exactly one mechanism off",
    )
    parser.add_argument(
        "--write-sweep",
        metavar="PATH",
        default=None,
        help="write the full-factorial sweep file (experiments/ablation.toml) and exit",
    )
    args = parser.parse_args(argv)
    if args.write_sweep:
        Path(args.write_sweep).write_text(factorial_sweep_toml(seed=args.seed), encoding="utf-8")
        return 0
    mechanisms = dict(MECHANISMS)
    if args.leave_one_out:
        # "-sync" is "+ack+client_dedup" under another name: run each set once.
        mechanisms.update({k: v for k, v in LEAVE_ONE_OUT.items() if v not in mechanisms.values()})
    t0 = time.perf_counter()
    frame = run_ablation(
        mechanisms=mechanisms,
        replications=args.replications,
        seed=args.seed,
        workers=args.workers,
        out=args.out,
        progress=sys.stderr.isatty(),
    )
    print(format_table(ablation_table(frame)))
    runs = len(frame)
    print(f"\n{runs} runs in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

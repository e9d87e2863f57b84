"""The ablation experiment: its cells, its table and its sweep file."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd

from immodel.experiments.ablation import (
    LEAVE_ONE_OUT,
    MECHANISMS,
    SWITCHES,
    TABLE_METRICS,
    ablation_table,
    cell_scenario,
    default_faults,
    factorial_sweep,
    factorial_sweep_toml,
    format_table,
    main,
    mechanism_label,
    run_ablation,
)
from immodel.experiments.sweep import load_sweep
from immodel.sim.faults import required_drain_s

ROOT = Path(__file__).resolve().parents[2]
# the datagram model: the bare mechanisms must see the burst's lost pushes
SMALL = {"workload.users": 24, "duration_s": 20.0, "network.model": "datagram"}


def test_mechanism_sets_are_nested_as_the_article_builds_them():
    sets = list(MECHANISMS.values())
    assert not any(sets[0].values()) and all(sets[-1].values())
    for smaller, larger in itertools.pairwise(sets):
        assert all(larger[k] for k in SWITCHES if smaller[k])
        assert sum(larger.values()) > sum(smaller.values())
    assert MECHANISMS["retry+dedup"] == {
        "reliability.uplink_retry": True,
        "reliability.server_dedup": True,
        "reliability.downlink_ack": False,
        "reliability.client_dedup": False,
        "reliability.sync": False,
    }
    assert all(sum(s.values()) == 4 for s in LEAVE_ONE_OUT.values())


def test_cell_drain_is_the_one_its_faults_and_timeouts_require():
    faults = default_faults()
    cell = cell_scenario(faults["server_crash"], MECHANISMS["+sync"], seed=5)
    assert cell["seed"] == 5
    assert cell["drain_s"] == required_drain_s(cell)
    assert cell["faults"][0]["kind"] == "server_crash"


def test_run_ablation_gives_one_labelled_row_per_run_with_common_seeds(tmp_path):
    faults = {k: v for k, v in default_faults(20.0).items() if k in ("none", "loss_burst")}
    mechanisms = {k: MECHANISMS[k] for k in ("retry+dedup", "+sync")}
    frame = run_ablation(
        base={**SMALL, "server.nodes": 3},
        faults=faults,
        mechanisms=mechanisms,
        replications=2,
        out=tmp_path,
    )
    assert len(frame) == 2 * 2 * 2
    assert list(frame.columns[:4]) == ["mechanisms", "fault", "replication", "seed"]
    # Common random numbers: replication r has the same seed in every cell.
    assert frame.groupby("replication")["seed"].nunique().eq(1).all()
    full = frame[frame["mechanisms"] == "+sync"]
    assert (full[["lost", "duplicates"]] == 0).all().all()
    bare = frame[(frame["mechanisms"] == "retry+dedup") & (frame["fault"] == "loss_burst")]
    assert (bare["lost"] > 0).all()  # no ACK, no sync: pushes lost in the burst are gone

    table = ablation_table(frame)
    assert list(table.index) == ["none", "loss_burst"]
    assert list(table.columns.get_level_values(0).unique()) == list(TABLE_METRICS)
    assert list(table["lost"].columns) == ["retry+dedup", "+sync"]
    text = format_table(table)
    assert "lost (mean per run)" in text and "+sync" in text
    # Resumable: a second call with the same folder recomputes nothing and agrees.
    again = run_ablation(
        base={**SMALL, "server.nodes": 3},
        faults=faults,
        mechanisms=mechanisms,
        replications=2,
        out=tmp_path,
    )
    pd.testing.assert_series_equal(again["lost"], frame["lost"])


def test_ablation_table_names_the_cells_of_the_factorial_sweep():
    rows = []
    for name, switches in {**MECHANISMS, "-downlink_ack": LEAVE_ONE_OUT["-downlink_ack"]}.items():
        for tables in default_faults().values():
            rows.append({**switches, "faults": json.dumps(tables), "lost": float(len(name))})
    odd = dict.fromkeys(SWITCHES, False) | {"reliability.sync": True}
    rows.append({**odd, "faults": "[]", "lost": 1.0})
    table = ablation_table(pd.DataFrame(rows))
    assert list(table["lost"].columns) == [*MECHANISMS, "-downlink_ack", "sync"]
    assert "server_crash" in table.index
    assert mechanism_label(odd) == "sync"


def test_experiments_ablation_toml_is_the_generated_factorial_sweep():
    path = ROOT / "experiments" / "ablation.toml"
    assert path.read_text(encoding="utf-8") == factorial_sweep_toml()
    sweep = load_sweep(path)
    assert sweep.identity() == load_sweep(factorial_sweep(), base_dir=ROOT).identity()
    assert len(sweep.tasks()) == len(default_faults()) * 2**5 * 2


def test_command_line_writes_the_sweep_file(tmp_path):
    target = tmp_path / "ablation.toml"
    assert main(["--write-sweep", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == factorial_sweep_toml()

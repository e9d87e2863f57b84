"""Tests of the paired sweep comparison (``immodel compare DIR_A DIR_B``).

The paired interval is checked against theory: its exact value on a hand-computed
sample (Student t quantile from printed tables), its coverage over many synthetic grid
points with a known true difference (binomial tolerance), and that pairing by
replication removes the noise the two sweeps share (common random numbers). Mismatched
sweeps are refused with exit 2 and one ``error:`` line.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immodel.analysis.compare import compare_results, format_comparison, plot_comparison
from immodel.cli import main
from immodel.errors import UserError


def sweep_frame(values: dict[str, np.ndarray], loss=(0.0, 0.1), reps: int = 5) -> pd.DataFrame:
    """A results frame: loss × replications, metric columns from ``values`` (flat arrays)."""
    rows = []
    for p, x in enumerate(loss):
        for r in range(reps):
            rows.append({"point": p, "network.downlink_loss": x, "replication": r, "seed": 100 + r})
    frame = pd.DataFrame(rows)
    for name, v in values.items():
        frame[name] = v
    return frame


def test_paired_interval_has_the_textbook_value():
    # d = 1, 2, 3, 4, 5: mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445 (printed tables).
    a = sweep_frame({"lost": np.zeros(10)})
    b = sweep_frame({"lost": np.array([1, 2, 3, 4, 5, 0, 0, 0, 0, 0], float)})
    table = compare_results(a, b, ["lost"])
    first = table.iloc[0]
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert first["n"] == 5 and first["diff"] == pytest.approx(3.0)
    assert first["half_width"] == pytest.approx(half, rel=1e-5)
    assert (first["low"], first["high"]) == pytest.approx((3.0 - half, 3.0 + half), rel=1e-5)
    assert first["mean_a"] == 0 and first["mean_b"] == pytest.approx(3.0)
    assert math.isnan(first["change_pct"])  # relative to a zero baseline: undefined
    second = table.iloc[1]
    assert second["diff"] == 0 and second["half_width"] == 0


def test_paired_interval_covers_the_true_difference_at_its_confidence():
    # 4000 grid points × 5 replications; B = A + delta + N(0, 1) noise. The shared noise
    # (sd 50) must cancel. Coverage of a 95 % interval: binomial, sd = sqrt(.95·.05/4000)
    # = 0.0034; ±4 sd accepts a correct interval and rejects e.g. a z instead of a t
    # quantile (coverage 0.88) or an unpaired interval (coverage ~1.0).
    rng = np.random.default_rng(2024)
    points, reps, delta = 4000, 5, 2.5
    shared = rng.normal(100.0, 50.0, points * reps)
    a = sweep_frame({"latency_p99_ms": shared}, loss=np.arange(points), reps=reps)
    b = sweep_frame(
        {"latency_p99_ms": shared + delta + rng.normal(0.0, 1.0, points * reps)},
        loss=np.arange(points),
        reps=reps,
    )
    table = compare_results(a, b, ["latency_p99_ms"])
    covered = ((table["low"] <= delta) & (delta <= table["high"])).mean()
    assert abs(covered - 0.95) < 4 * math.sqrt(0.95 * 0.05 / points)
    # The interval is that of the N(0, 1) differences, not of the shared N(0, 50) noise:
    # E[half width] = t(.975, 4) · E[s] / sqrt(5) with E[s] = c4(5) · 1 = 0.9400.
    expected_half = 2.776445 * 0.9399856 / math.sqrt(5)
    assert table["half_width"].mean() == pytest.approx(expected_half, rel=0.02)


def test_comparison_refuses_sweeps_that_are_not_paired():
    a = sweep_frame({"lost": np.zeros(10)})
    with pytest.raises(UserError, match="do not match: only B has run"):
        compare_results(a.iloc[:9], a, ["lost"])
    with pytest.raises(UserError, match="different grid keys"):
        compare_results(a, a.rename(columns={"network.downlink_loss": "workload.users"}))
    with pytest.raises(UserError, match="seed 100 in A and 7 in B"):
        compare_results(a, a.assign(seed=7), ["lost"])
    with pytest.raises(UserError, match=r"--metrics: 'nope' is not a metric of both sweeps"):
        compare_results(a, a, ["nope"])


def test_text_table_and_figure_say_which_way_the_change_goes():
    a = sweep_frame({"latency_p99_ms": np.full(10, 100.0) + np.arange(10) % 5})
    b = sweep_frame({"latency_p99_ms": a["latency_p99_ms"].to_numpy() - 20 + np.arange(10) % 2})
    table = compare_results(a, b, ["latency_p99_ms"])
    text = format_comparison(table)
    assert text.count("B lower") == 2 and "-19.6" in text
    fig = plot_comparison(table)
    assert fig.axes[0].get_xlabel() == "B − A (ms)"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0 %", "10 %"]


def test_figure_draws_fractions_in_percent_like_their_label():
    a = sweep_frame({"server_utilization": np.full(10, 0.10)})
    b = sweep_frame({"server_utilization": np.full(10, 0.12)})
    ax = plot_comparison(compare_results(a, b, ["server_utilization"])).axes[0]
    assert ax.get_xlabel() == "B − A (%)"
    (points,) = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert points.get_xdata() == pytest.approx([2.0, 2.0])


def write_sweep(folder, frame):
    folder.mkdir()
    frame.to_parquet(folder / "results.parquet")
    return folder


def test_compare_command_prints_the_table_and_writes_the_figure(tmp_path, capsys):
    a = sweep_frame({"lost": np.zeros(10), "requests_per_s": np.full(10, 40.0)})
    b = a.assign(requests_per_s=a["requests_per_s"] * 0.5 + np.arange(10) % 3)
    da, db = write_sweep(tmp_path / "a", a), write_sweep(tmp_path / "b", b)
    out = tmp_path / "cmp"
    assert main(["compare", str(da), str(db), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "requests_per_s" in printed and "lost" in printed and "B lower" in printed
    assert {p.name for p in out.iterdir()} == {"comparison.csv", "comparison.png", "comparison.svg"}
    assert main(["compare", str(da), str(db), "--metrics", "lost", "--out", str(out)]) == 0
    assert set(pd.read_csv(out / "comparison.csv")["metric"]) == {"lost"}


def test_compare_command_rejects_a_mismatch_with_one_error_line(tmp_path, capsys):
    a = sweep_frame({"lost": np.zeros(10)})
    da = write_sweep(tmp_path / "a", a)
    bigger = sweep_frame({"lost": np.zeros(15)}, reps=5, loss=(0, 0.1, 0.2))
    db = write_sweep(tmp_path / "b", bigger)
    assert main(["compare", str(da), str(db), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the grids or replications do not match")
    assert main(["compare", str(da), str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["compare", str(da), str(da), "--metrics", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--metrics: 'bogus'" in err[0] and "allowed: lost" in err[0]

"""Every batch experiment in ``experiments/*.toml`` is a valid sweep, documented.

A sweep file that fails validation would only be noticed when someone starts hours of
work with it; :func:`immodel.experiments.load_sweep` builds and validates every grid point.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from immodel.experiments import load_sweep

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
FILES = sorted(EXPERIMENTS.glob("*.toml"))


def test_the_batch_experiments_are_there():
    names = {p.stem for p in FILES}
    assert {"loss_sweep", "transport_cost", "crash_recovery", "group_fanout"} <= names


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_experiment_file_validates_as_a_sweep(path):
    sweep = load_sweep(path)
    assert sweep.grid_keys, "an experiment varies something"
    assert sweep.description, "an experiment says what it studies"
    assert sweep.tasks()  # every point builds a complete scenario


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_experiment_file_is_described_in_the_readme(path):
    readme = (EXPERIMENTS / "README.md").read_text(encoding="utf-8")
    assert f"`{path.name}`" in readme


def _git_ignored(path: Path) -> bool | None:
    """Whether git ignores ``path`` (None when this is not a git checkout)."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        return None
    root = EXPERIMENTS.parent
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True, text=True
    )
    if inside.returncode != 0:
        return None
    probe = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", str(path)], cwd=root, capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_sweep_results_written_inside_the_repository_are_git_ignored(path):
    from immodel.experiments.sweep import default_out_for, with_overrides

    sweep = load_sweep(path)
    shrunk = with_overrides(sweep, {"duration_s": 1.0}, 1)
    folders = [sweep.default_out(), default_out_for(shrunk, sweep)]
    assert folders[0] != folders[1]
    for folder in folders:
        ignored = _git_ignored(folder / "parts" / "p000000-r0000.parquet")
        if ignored is None:
            pytest.skip("not a git checkout")
        assert ignored, f"{folder} is not git-ignored"
    notebook_results = EXPERIMENTS.parent / "results" / "loss_sweep-0123456789" / "meta.json"
    assert _git_ignored(notebook_results)

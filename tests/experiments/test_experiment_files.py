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

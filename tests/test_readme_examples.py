"""Every example in the README runs as written.

Each TOML block of the README, ``docs/*.md`` and the notebooks' markdown loads as a
scenario (or, if it has a ``[grid]``, as a sweep); every ``immodel …`` shell line of the
READMEs parses with the real command-line parser; and the README's own walk-through
(scenarios, keys, columns, run, check, plot) runs in a scratch folder with small
overrides, its example scenario included — which must then pass ``immodel check``.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from immodel.cli import build_parser, main
from immodel.experiments.sweep import load_sweep
from immodel.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL_DOCS = [README, ROOT / "experiments" / "README.md", ROOT / "notebooks" / "README.md"]
TOML_DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("notebooks/*.py"))]
SMALL = ["--set", "workload.users=20", "--set", "duration_s=3"]


def blocks(path: Path, language: str) -> list[str]:
    """Fenced ``language`` blocks of a Markdown file, or of the markdown cells of a
    jupytext notebook (lines commented with ``# ``)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        text = "\n".join(line[2:] if line.startswith("# ") else "" for line in text.splitlines())
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def immodel_lines(path: Path) -> list[str]:
    lines = []
    for block in blocks(path, "sh"):
        for line in block.splitlines():
            if line.strip().startswith("immodel "):
                lines.append(line.strip())
    return lines


TOML_BLOCKS = [(p, b) for p in TOML_DOCS if p.is_file() for b in blocks(p, "toml")]
SHELL_LINES = [(p, line) for p in SHELL_DOCS if p.is_file() for line in immodel_lines(p)]


def test_the_readme_has_examples_to_check():
    assert any(p == README for p, _ in TOML_BLOCKS)
    assert sum(1 for p, _ in SHELL_LINES if p == README) >= 8


@pytest.mark.parametrize(
    "block",
    [b for _, b in TOML_BLOCKS],
    ids=[f"{p.name}#{i}" for i, (p, _) in enumerate(TOML_BLOCKS)],
)
def test_every_toml_example_loads(tmp_path, block):
    path = tmp_path / "example.toml"
    path.write_text(block, encoding="utf-8")
    if "[grid]" in block:
        assert load_sweep(path).tasks()
    else:
        Scenario.load(path)


def test_the_readme_scenario_keeps_its_faults_at_the_top_level():
    (block,) = [b for p, b in TOML_BLOCKS if p == README]
    scenario = Scenario.load(tomllib.loads(block), {"workload.users": 20})
    assert scenario["faults"] and scenario["faults"][0]["kind"] == "server_crash"
    assert scenario["transport.kind"] == "long_poll"


@pytest.mark.parametrize(
    "line", [line for _, line in SHELL_LINES], ids=[line for _, line in SHELL_LINES]
)
def test_every_shell_example_parses(line):
    argv = shlex.split(line, comments=True)[1:]
    args = build_parser().parse_args(argv)
    assert args.func is not None


def test_the_readme_walk_through_runs_with_small_overrides(tmp_path, monkeypatch, capsys):
    (block,) = [b for p, b in TOML_BLOCKS if p == README]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.toml").write_text(block, encoding="utf-8")
    ran = []
    for line in immodel_lines(README):
        argv = shlex.split(line, comments=True)[1:]
        command = argv[0]
        if command in ("sweep", "demo"):
            continue  # minutes of work: parsed above, run by the sweep tests at small size
        if command == "run":
            argv = [*argv, *SMALL]
        status = main(argv)
        out = capsys.readouterr()
        assert status == 0, f"{line}: exit {status}\n{out.err}"
        assert "Traceback" not in out.err
        ran.append(command)
    assert ran.count("run") == 3 and {"check", "plot", "keys", "columns"} <= set(ran)
    # The example scenario (a crash under 5 % loss) with the automatic drain: nothing lost.
    summary = json.loads((tmp_path / "runs/my/summary.json").read_text())
    assert summary["drain_auto"] is True and summary["lost"] == 0
    assert summary["recovery_pairs"] is not None

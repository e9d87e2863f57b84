"""Every notebook in ``notebooks/*.py`` runs top to bottom with small parameters.

Each notebook is stored as jupytext ``py:percent``; the test converts it to a temporary
``.ipynb`` and executes it with papermill on the ``python3`` kernel, from the
``notebooks/`` folder (as ``jupyter lab`` would), failing on any cell error.

Small parameters: a notebook gets the values of :data:`SMALL` whose names appear in its
``parameters`` cell (so a new notebook that follows the convention of
``notebooks/README.md`` runs small without touching this file), then its own entry of
:data:`PER_NOTEBOOK`. Results go to a temporary folder, never into the repository.

The kernel: ``python3`` must resolve to a kernelspec. The ipykernel wheel ships one into
the environment and jupyter_client falls back to ipykernel's own; should neither be
there, :func:`python3_kernel` installs it into this environment (``--sys-prefix``) once,
so the test never depends on a hand install.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
papermill = pytest.importorskip("papermill")

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))

#: Small values for parameter names shared by the notebooks (see notebooks/README.md).
SMALL = {
    "WORKERS": 1,  # in the kernel's process: no pool start-up for a few tiny runs
    "INTERACTIVE": False,
    "REPLICATIONS": 2,
    "USERS": 40,
    "DURATION_S": 10.0,
}

#: Per-notebook values on top of SMALL (keyed by file stem).
PER_NOTEBOOK: dict[str, dict] = {
    "01_quickstart": {"EXPLORER_USERS": 20, "EXPLORER_DURATION_S": 5.0},
    "02_loss_sweep": {
        "SET": {"workload.users": 20, "duration_s": 10.0},
        "GRID": {"network.downlink_loss": [0.0, 0.2]},
    },
    "03_cost_frontier": {
        "SET": {"duration_s": 10.0},
        "GRID": {"workload.users": [10, 30]},
        "KNOB_USERS": 20,
        "POLL_INTERVALS_S": [1.0, 5.0],
        "LONG_POLL_HOLDS_S": [30.0],
    },
    "04_crash_recovery": {
        "SET": {
            "workload.users": 30,
            "duration_s": 30.0,
            "faults": [{"kind": "server_crash", "at_s": 10.0, "down_s": 5.0}],
        },
        "GRID": {
            "transport.kind": ["push"],
            "reliability.sync_on_gap": [True],
            "reliability.sync_on_reconnect": [True, False],
        },
    },
    "05_group_fanout": {
        "SET": {"workload.users": 40, "duration_s": 10.0},
        "GRID": {"workload.group_size": [5, 40]},
        "CROSS_USERS": 80,
        "CROSS_SIZES": [5, 40],
        "CROSS_GROUPS_PER_USER": [1],
        "CROSS_DURATION_S": 5.0,
        "STORM_MEMBERS": 40,
        "STORM_DURATION_S": 2.0,
        "STORM_WAITS_MS": [0.0, 20.0],
    },
    "06_validation": {"replications": 2},  # the notebook's own default is 3: 84 s in CI
    "07_security": {"TAMPER_RATES": [0.05], "TTLS_S": [3600, 15552000], "REPLICATIONS": 1},
    "08_live_rooms": {"AUDIENCE": 2000, "COHORTS": 50, "MEAN_STAY_S": 60.0},
    "10_backend_senders": {"LIMIT": 20, "OFFERED_X": [0.5, 2.0], "RATE_USERS": 40},
    "09_devices_offline_push": {"WEB_SHARES": [0.0, 0.3]},
    # real processes and sockets: wall-clock runs, so few and short
    "11_sim_vs_real": {
        "USERS": 15,
        "DURATION_S": 2.0,
        "DRAIN_S": 1.5,
        "TRANSPORTS": ["push"],
        "CRASH": False,  # tests/real/test_sim_vs_real.py runs the crash pairs
        "RESET_STORM": False,
    },
}

# Modules a notebook may import: immodel's public layers, the standard library, and the
# display stack. Simulator internals (immodel.sim, immodel.protocol, simpy) are model
# logic and stay out of notebooks.
ALLOWED_IMPORTS = re.compile(
    r"^(immodel(\.analysis(\.\w+)?|\.experiments(\.\w+)?|\.scenario)?|pandas|numpy|"
    r"matplotlib(\.\w+)*|IPython(\.\w+)*|ipywidgets|tomllib|pathlib|json|math|warnings)$"
)


@pytest.fixture(scope="session")
def python3_kernel() -> str:
    """The name of a usable python3 kernelspec, installed into this environment if absent."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
            check=True,
            capture_output=True,
        )
    return "python3"


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {
        "01_quickstart",
        "02_loss_sweep",
        "03_cost_frontier",
        "04_crash_recovery",
        "05_group_fanout",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_paired_py_percent_with_a_parameters_cell(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# ---\n# jupyter:\n#   jupytext:\n#     formats: py:percent\n")
    assert '# %% tags=["parameters"]' in text
    nb = jupytext.reads(text, fmt="py:percent")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_imports_only_immodel_public_layers(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert ALLOWED_IMPORTS.match(name), f"{path.name} imports {name}"


def small_parameters(path: Path, ipynb: Path, out: Path) -> dict:
    declared = papermill.inspect_notebook(str(ipynb))
    params = {k: v for k, v in SMALL.items() if k in declared}
    params.update(PER_NOTEBOOK.get(path.stem, {}))
    if "OUT_DIR" in declared:
        params["OUT_DIR"] = str(out)
    unknown = set(params) - set(declared)
    assert not unknown, f"{path.name} has no parameters {sorted(unknown)}"
    return params


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_names_its_kernel_so_jupytext_execute_and_jupyterlab_need_no_flag(path):
    # `jupytext --execute` and JupyterLab read the kernel from the notebook's metadata;
    # without it they stop and ask (jupytext: "--set-kernel").
    nb = jupytext.read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["kernelspec"]["language"] == "python"


#: Notebooks that end with a conclusion computed from their own results.
CONCLUDED = ("02_loss_sweep", "03_cost_frontier", "05_group_fanout")


@pytest.mark.parametrize("stem", CONCLUDED)
def test_sweep_notebook_ends_with_a_conclusion_computed_from_its_data(stem):
    nb = jupytext.read(NOTEBOOK_DIR / f"{stem}.py")
    heading = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and c.source.startswith("## Conclusion")
    ]
    assert len(heading) == 1
    code = nb.cells[heading[0] + 1]
    # numbers come from the results frames, shown as Markdown; none typed in by hand
    assert code.cell_type == "code" and "display(" in code.source and "Markdown(" in code.source
    assert "results" in code.source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_small_parameters(path, tmp_path, python3_kernel):
    nb = jupytext.read(path)  # its own kernelspec: what JupyterLab and jupytext use
    assert nb.metadata["kernelspec"]["name"] == python3_kernel
    ipynb = tmp_path / f"{path.stem}.ipynb"
    jupytext.write(nb, ipynb)
    params = small_parameters(path, ipynb, tmp_path / "results")
    executed = papermill.execute_notebook(
        str(ipynb),
        str(tmp_path / f"{path.stem}.out.ipynb"),
        parameters=params,
        kernel_name=python3_kernel,
        language="python",
        cwd=str(NOTEBOOK_DIR),
        progress_bar=False,
        execution_timeout=300,
    )
    errors = [
        out
        for cell in executed.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    # Warnings printed into a notebook (pandas PerformanceWarning…) are defects too.
    warned = [
        out["text"]
        for cell in executed.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
        and out.get("name") == "stderr"
        and "Warning" in out["text"]
    ]
    assert not warned, warned[0][:300]
    if path.stem in CONCLUDED:
        last = [
            cell
            for cell in executed.cells
            if cell.cell_type == "code"
            and any("text/markdown" in out.get("data", {}) for out in cell.get("outputs", []))
        ]
        assert last, "the conclusion cell printed nothing"
    images = sum(
        "image/png" in out.get("data", {})
        for cell in executed.cells
        for out in cell.get("outputs", [])
    )
    assert images >= 1, "the notebook drew no figure"


def test_make_notebooks_pairs_each_py_with_an_ipynb_on_the_python3_kernel(tmp_path):
    # The recipe's jupytext line, run on a copy: the .py files stay as they are, each gets
    # an .ipynb that names its kernel and its paired .py (so JupyterLab syncs the two).
    makefile = (NOTEBOOK_DIR.parent / "Makefile").read_text(encoding="utf-8")
    (line,) = [ln.strip() for ln in makefile.splitlines() if "jupytext --to ipynb" in ln]
    for path in NOTEBOOKS:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    command = line.replace("$(BIN)/jupytext", f"{sys.executable} -m jupytext")
    command = command.replace("notebooks/0*.py", " ".join(p.name for p in NOTEBOOKS))
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, capture_output=True)
    import json

    for path in NOTEBOOKS:
        assert (tmp_path / path.name).read_text(encoding="utf-8") == path.read_text(
            encoding="utf-8"
        )
        meta = json.loads((tmp_path / f"{path.stem}.ipynb").read_text())["metadata"]
        assert meta["kernelspec"]["name"] == "python3"
        assert meta["jupytext"]["formats"] == "ipynb,py:percent"

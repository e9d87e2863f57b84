# Two commands matter (see README): `make demo` and `make test`.
# Both create .venv when it is missing and install the package from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test coverage lint bench notebooks mutation clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/immodel demo --out demo-output

lint: $(STAMP)
	$(BIN)/ruff check immodel tests benchmarks notebooks experiments
	$(BIN)/ruff format --check immodel tests benchmarks

# Two passes: everything on 3 workers, then the tests marked `alone` (a real run's
# latency tail against the simulator's) on their own: under the other worker's
# simulations the real processes' p99 moved by 2x and the comparison measured the load.
# Three workers on a 2-core machine: ~40 tests of tests/real spend their time waiting on
# wall-clock runs, and a third worker keeps both cores busy meanwhile (10 min 09 s
# against 11 min 11 s for the first pass, measured on a fresh clone).
test: $(STAMP) lint
	$(BIN)/python -m pytest -n 3 -m "not alone"
	$(BIN)/python -m pytest -m alone

# Line coverage, not part of `make test`: coverage's tracer makes every simulation 3-4x
# slower, which kept the suite over its time budget. tests/validation (the statistical
# agreement with theory, most of the suite's CPU) measures numbers, not lines: left out.
coverage: $(STAMP)
	$(BIN)/python -m pytest -n 2 --cov=immodel --cov-report=term:skip-covered --ignore=tests/validation

# Pair every notebooks/*.py with an .ipynb (git-ignored) that JupyterLab opens directly,
# on the python3 kernel of this environment; edits in either file are synced by jupytext.
# The .py files are not rewritten; re-running keeps the .ipynb outputs (--update).
notebooks: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null
	$(BIN)/jupytext --to ipynb --update --update-metadata '{"jupytext": {"formats": "ipynb,py:percent"}}' notebooks/0*.py
	@echo "open them with: $(BIN)/jupyter lab notebooks/"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sim.py

# Mutation testing of immodel/protocol and the analysis formulas ([tool.mutmut] in
# pyproject.toml); not part of `make test`: about an hour on 2 cores. Results stay in
# mutants/ (`$(BIN)/mutmut results` lists the survivors, `mutmut show NAME` one diff).
mutation: $(STAMP)
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .coverage demo-output mutants

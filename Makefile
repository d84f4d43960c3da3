# gedanken: two commands on a fresh machine.
#   make demo  -> set up the virtualenv, then collect, train-or-load, audit and write the report
#   make test  -> set up the virtualenv, then lint and run the whole test suite
# Both create or reuse .venv and install the pinned dependencies (torch 2.13.0 CPU through constraints.txt).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gedanken-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test lint format clean

$(STAMP): requirements.lock constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -r requirements.lock
	$(PY) -m pip install -q -c constraints.txt --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/gedanken demo --out reports/demo

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

test: lint
	$(VENV)/bin/pytest -n 2 --durations=15

format: setup
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache

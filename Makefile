# The two quick-start commands: `make run` and `make test`. Each one creates
# the virtualenv in .venv and installs hqsync into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck schemas bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m hqsync.cli.quickstart

test: $(STAMP)
	$(BIN)/ruff check hqsync tests bench
	$(BIN)/ruff format --check hqsync tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check hqsync tests bench
	$(BIN)/ruff format --check hqsync tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/hqsync schema --out schemas/

bench: $(STAMP)
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/audit_export.py

clean:
	rm -rf $(VENV) .hqsync .pytest_cache .mypy_cache .ruff_cache

# make run: start the emulator on http://127.0.0.1:8080 (state in .interlude/<topology>.db, as a bare
#   `interlude emulate`; RUN_ARGS=--reset starts afresh).
# make test: (re)build .venv and run the whole test suite.
# make lint: ruff, mypy --strict and the import contracts (lint-imports; rules in docs/architecture.md).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: run test lint typecheck check clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/interlude emulate --host 127.0.0.1 --port 8080 $(RUN_ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

check: lint test

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .interlude .pytest_cache .mypy_cache

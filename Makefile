# make run: start the emulator on http://127.0.0.1:8080 (state in .interlude/<topology>.db, as a bare
#   `interlude emulate`; RUN_ARGS=--reset starts afresh).
# make test: (re)build .venv and run the whole test suite.
# make conformance: the conformance kit against `make run` (MEF definitions from MEF_SDK), report in .interlude/.
# make lint: ruff, mypy --strict and the import contracts (lint-imports; rules in docs/architecture.md).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: run test lint typecheck check clean bench conformance

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/interlude emulate --host 127.0.0.1 --port 8080 $(RUN_ARGS)

MEF_SDK ?= ../shared/mef
conformance: $(STAMP)
	mkdir -p .interlude
	$(VENV)/bin/interlude conformance --against http://127.0.0.1:8080 --mef-sdk $(MEF_SDK) --buyer sp-alpha \
		--profile docs/conformance-profile.yaml --allow-changes --html .interlude/conformance.html \
		--junit .interlude/conformance.xml

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

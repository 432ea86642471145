# `make run` and `make test` are the two commands; everything else here serves them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# make run HOST=0.0.0.0 PORT=9000; unset, serve uses NEMAWASHI_HOST / NEMAWASHI_PORT (default 127.0.0.1:8000).
HOST ?=
PORT ?=

.PHONY: run test test-fast lint typecheck typecheck-js pytest eval ingest bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

ingest: $(VENV)/.runtime
	$(BIN)/nemawashi ingest

run: ingest
	$(BIN)/nemawashi serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

lint: $(VENV)/.dev
	$(BIN)/ruff check service tests benchmarks alembic
	$(BIN)/ruff format --check service tests benchmarks alembic

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# widget.js stays one plain file (no build step); tsc checks its JSDoc types. TypeScript is pinned in
# service/web/package-lock.json; node and npm come from Debian (.ci/system-deps).
service/web/node_modules/.package-lock.json: service/web/package.json service/web/package-lock.json
	npm ci --prefix service/web --no-audit --no-fund

typecheck-js: system-deps service/web/node_modules/.package-lock.json
	npm run --prefix service/web typecheck

# PostgreSQL up and Chromium installed (apt, as root) for the database and browser tests.
system-deps:
	bash .ci/system-deps

pytest: $(VENV)/.dev system-deps
	$(BIN)/pytest -q

# The offline eval suite (mock LLM, then no LLM) fails the build when a metric drops below evals/thresholds.yaml.
eval: $(VENV)/.dev
	$(BIN)/nemawashi eval --llm mock
	$(BIN)/nemawashi eval --llm none

# The fast tier: no real embedding model, servers or browsers (under two minutes); `make test` runs everything.
test-fast: $(VENV)/.dev
	$(BIN)/pytest -q -m "not slow"

test: lint typecheck typecheck-js pytest eval

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/retrieval.py
	$(BIN)/python benchmarks/ask.py
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

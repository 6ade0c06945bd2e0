# Two commands on a fresh machine:  `make run` (gateway on the sandbox) and `make test`.
# Both build .venv from pyproject.toml when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck schema bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

var/graphiql/manifest.json: scripts/fetch-graphiql
	-./scripts/fetch-graphiql var/graphiql

run: $(STAMP) var/graphiql/manifest.json
	$(BIN)/esim-gateway serve

# the npm client tests (graphql-http audit, Apollo Client): locked packages; they skip without npm
tests/clients/node_modules/.package-lock.json: tests/clients/package-lock.json
	-command -v npm >/dev/null && npm ci --prefix tests/clients --no-audit --no-fund --silent

# One worker per core (pytest-xdist): serially the suite takes ~7 min, ~420 s of it CPU.
# Tests marked xdist_group run on one worker one after another (--dist loadgroup).
TEST_WORKERS ?= 2

test: $(STAMP) tests/clients/node_modules/.package-lock.json
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

schema: $(STAMP)
	$(BIN)/esim-gateway export-schema schema.graphql

# The GraphQL Mesh peer of the load benchmark (skipped by it when node is missing).
bench/mesh/node_modules/.package-lock.json: bench/mesh/package-lock.json
	-command -v npm >/dev/null && cd bench/mesh && npm ci --no-audit --no-fund --loglevel=error

bench: $(STAMP) bench/mesh/node_modules/.package-lock.json
	$(BIN)/python -m bench

# The soak (issue 22, QUALITY.md R13): two replicas on PostgreSQL and Redis under mixed
# traffic at half their capacity, a table row every 5 minutes, checks at the end. One hour
# by default; shorter with e.g. `make soak SOAK_ARGS="--duration 600 --window 60"`.
# Needs the local PostgreSQL and Redis; not part of `make test`.
SOAK_ARGS ?=

soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

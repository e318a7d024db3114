# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 7071
# `make bench BASELINE=<rev>` also runs the durable shapes on git revision <rev> and compares.
BASELINE ?=
# The suite runs its test files in parallel (pytest-xdist): most of its time is waiting on
# hosts and Azurite, not CPU.
TEST_WORKERS ?= 3

.PHONY: run test unit lint bench soak setup clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	$(BIN)/funclocal start --script-root function_app --host-json host.json \
		--settings local.settings.json --port $(PORT)

test: setup
	$(BIN)/ruff check runtime tests bench function_app
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

unit: setup
	$(BIN)/python -m pytest -q tests/unit

lint: setup
	$(BIN)/ruff check runtime tests bench function_app
	$(BIN)/mypy

# The benchmarks' peers (Temporal and its test server, DBOS) are installed here only, never
# by `run` or `test`.
$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: setup $(VENV)/.bench-installed
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/http_trigger.py
	$(BIN)/python bench/reload.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/harness.py
	$(BIN)/python bench/durable.py $(if $(BASELINE),--baseline $(BASELINE))

# Resource bounds: idle CPU, and memory after 10,000 orchestrations (several minutes).
soak: setup
	$(BIN)/python -m bench.soak

# Everything `make run`, `make test`, `make lint` and `make bench` create.
clean:
	# The sample app's Azurite outlives `make run` (see the README): stop it first.
	-test -x $(BIN)/funclocal && $(BIN)/funclocal azurite stop --script-root function_app
	rm -rf $(VENV) node_modules .azurite function_app/.azurite funclocal.egg-info build dist \
		.mypy_cache .ruff_cache .pytest_cache bench/results
	find . -name __pycache__ -type d -prune -not -path './node_modules/*' -exec rm -rf {} +

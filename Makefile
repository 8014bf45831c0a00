# Two commands on a fresh machine: `make demo` and `make test`.
# Both create the venv and install Python, npm and Debian dependencies on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: setup system demo test faults bench serve clean

setup: system $(STAMP) $(NODE_STAMP)

system:
	@bash scripts/system-deps.sh

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: setup
	$(PY) -m scripts.demo

test: setup
	$(PY) -m pytest

# The fault suite in full form (issue #8): 10 seeds per job, the issue's fault figures, a 75 s
# Azurite outage besides the 2 s one (make test runs its short form). OPS_FAULT_SEEDS=3,17 picks seeds.
faults: setup
	OPS_FAULT_RUNS=full $(PY) -m pytest -m faults tests/resilience

bench: setup   # all benchmarks; one or a few: make bench BENCH=sla-snapshot
	$(PY) -m bench.run $(BENCH)

serve: setup
	$(PY) -m sandbox serve --state .state/sandbox --port 8443 --fixed-azurite-ports

clean:
	rm -rf .state .pytest_cache

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

bench: setup
	$(PY) -m bench.run

serve: setup
	$(PY) -m sandbox serve --state .state/sandbox --port 8443 --fixed-azurite-ports

clean:
	rm -rf .state .pytest_cache

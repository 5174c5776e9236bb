# circuitmap: set-up, checks, tests and the demo, from a fresh clone.
# Needs only Python 3.11, Java 17+ and Maven (or NEO4J_URI pointing at a Neo4j 5 server).

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Rebuilt only when pyproject.toml is newer: re-runs skip pip entirely.
STAMP := $(VENV)/.installed

# Tests wipe the database they run on, so unless you chose a home (CIRCUITMAP_HOME) they get their
# own server and home, apart from the one `make demo` fills. tests/conftest.py has the same default.
ifdef CIRCUITMAP_HOME
TEST_ENV :=
else
TEST_ENV := CIRCUITMAP_HOME=$(CURDIR)/.circuitmap/test CIRCUITMAP_NEO4J_PORT=7688
endif

.PHONY: venv system-deps lint db-start db-stop db-status test test-db-status test-db-stop demo bench \
	peer-venv component

venv: $(STAMP) component

# The dashboard's client-side graph view (app/component): its JavaScript, d3 included, comes from
# npm (package-lock.json pins it) and is bundled into dist/ (git-ignored). Rebuilt when a source,
# package.json or the lock file is newer than the bundle.
COMPONENT := app/component/frontend
COMPONENT_JS := $(COMPONENT)/dist/graphview.js

component: $(COMPONENT_JS)

$(COMPONENT_JS): $(COMPONENT)/package.json $(COMPONENT)/package-lock.json $(wildcard $(COMPONENT)/src/*)
	@command -v npm >/dev/null || { echo "error: npm not found: install Node.js 20 (the dashboard's graph view is built with it)" >&2; exit 1; }
	cd $(COMPONENT) && npm ci --no-audit --no-fund && npm run build

$(STAMP): pyproject.toml | system-deps
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -e '.[test]'
	@touch $@

# System packages that features need beyond the machine's Java and Maven go here
# (e.g. Debian's chromium for the Playwright browser tests: apt-get install -y chromium).
system-deps:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && apt-get update -qq && apt-get install -y -qq chromium; } || echo "warning: could not install Debian's chromium: the browser test (tests/test_app_browser.py) will be skipped" >&2

# circuit-tracer 0.5.0 is the reference our attribution graphs must equal (tests/
# test_equality_circuit_tracer.py, bench/attribution.py), but it pins transformers<=4.57.3 and
# huggingface-hub<1.0, which conflict with our runtime: so it gets its own venv, never imported by
# circuitmap. That venv reads what it does not pin itself (torch, numpy, ...) from .venv through a
# .pth line, which Python puts after the venv's own site-packages: the install is ~370 MB and
# ~2 min rather than a second 6 GB torch (this registry sends no cacheable wheels, so every
# install downloads in full). pip then warns that circuitmap (in .venv) wants newer transformers:
# expected, as circuitmap is never imported there.
PEER_VENV := .venv-peer
PEER_PINS := circuit-tracer==0.5.0 nnsight==0.7.0 transformers==4.57.3

peer-venv: $(PEER_VENV)/bin/circuit-tracer

$(PEER_VENV)/bin/circuit-tracer: | venv
	rm -rf $(PEER_VENV)
	$(BIN)/python -m venv $(PEER_VENV)
	$(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
		> $(PEER_VENV)/lib/python3.11/site-packages/zz-circuitmap-venv.pth
	$(PEER_VENV)/bin/pip install --disable-pip-version-check --quiet $(PEER_PINS)

lint: venv
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

db-start: venv
	$(BIN)/circuitmap db start

db-stop: venv
	$(BIN)/circuitmap db stop

db-status: venv
	$(BIN)/circuitmap db status

test: venv lint peer-venv
	$(TEST_ENV) $(BIN)/circuitmap db start
	$(TEST_ENV) $(BIN)/pytest

test-db-status: venv
	$(TEST_ENV) $(BIN)/circuitmap db status

test-db-stop: venv
	$(TEST_ENV) $(BIN)/circuitmap db stop

# The demo world end to end: trains what is missing (model, CLT, catalogue; cached under
# $CIRCUITMAP_HOME/demo, so a second run trains nothing), starts Neo4j if needed, stores the
# catalogue and the demo prompts' graphs, prints the circuit checks and where to look next.
demo: venv
	$(BIN)/circuitmap demo

# Every bench/*.py that runs as a script; each prints its own figures.
bench: venv db-start peer-venv
	@for f in bench/*.py; do \
		grep -q '__name__ == "__main__"' $$f || continue; \
		echo "== $$f"; $(BIN)/python -m bench.$$(basename $$f .py) || exit 1; \
	done

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

.PHONY: venv system-deps lint db-start db-stop db-status test test-db-status test-db-stop demo bench

venv: $(STAMP)

$(STAMP): pyproject.toml | system-deps
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -e '.[test]'
	@touch $@

# System packages that features need beyond the machine's Java and Maven go here
# (e.g. Debian's chromium for the Playwright browser tests: apt-get install -y chromium).
system-deps:
	@true

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

db-start: venv
	$(BIN)/circuitmap db start

db-stop: venv
	$(BIN)/circuitmap db stop

db-status: venv
	$(BIN)/circuitmap db status

test: venv lint
	$(TEST_ENV) $(BIN)/circuitmap db start
	$(TEST_ENV) $(BIN)/pytest

test-db-status: venv
	$(TEST_ENV) $(BIN)/circuitmap db status

test-db-stop: venv
	$(TEST_ENV) $(BIN)/circuitmap db stop

# Until the full demo lands, the smallest end-to-end job: write a graph to Neo4j, read it back.
demo: venv db-start
	$(BIN)/python -m db.smoke

# Every bench/*.py that runs as a script; each prints its own figures.
bench: venv db-start
	@for f in bench/*.py; do \
		grep -q '__name__ == "__main__"' $$f || continue; \
		echo "== $$f"; $(BIN)/python -m bench.$$(basename $$f .py) || exit 1; \
	done

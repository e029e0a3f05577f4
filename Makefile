# govbus: `make demo` runs the bus end to end, `make test` runs every test. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
JARS := .govbus/kafka/libs/.pom-sha256

.PHONY: setup tools demo test lint bench clean

setup: tools $(INSTALLED) $(JARS)

# Java runs the broker and Maven fetches its jars; install them from Debian's packages when missing.
tools:
	@PYTHON=$(PYTHON) bash deploy/install-tools.sh

$(INSTALLED): pyproject.toml setup.py schemas/_avro_fast.c
	@echo "==> creating $(VENV) and installing govbus with its dev tools"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

$(JARS): deploy/kafka/pom.xml $(INSTALLED)
	@$(BIN)/govbus kafka fetch

demo: setup
	@$(BIN)/govbus demo

# The C encoder must have been built here: a silent fallback to fastavro would hide a broken build.
test: setup
	@bash deploy/install-tools.sh --postgres --wrk
	@GOVBUS_REQUIRE_ACCELERATION=1 $(BIN)/pytest

lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/python -m producers.events.codegen --check

# The consume benchmark starts a throwaway PostgreSQL, as the tests do; the gateway one drives wrk.
bench: setup
	@bash deploy/install-tools.sh --postgres --wrk
	@$(BIN)/govbus bench produce
	@$(BIN)/govbus bench consume
	@$(BIN)/govbus bench gateway

clean:
	@-$(BIN)/govbus kafka down
	rm -rf .govbus $(VENV)

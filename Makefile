# Alga appliance release tooling. `make help` lists the targets.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup demo test unit integration lint typecheck bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup: ## install everything (apt packages, helm/kubectl, .venv); idempotent
	@bash scripts/setup.sh

demo: setup ## publish the reference charts to a throw-away loopback registry and show them
	@$(PY) scripts/demo.py

test: setup lint ## the full test suite (what CI runs): lint, types, unit and integration tests
	$(PY) -m pytest -q

unit: ## fast pure tests only
	$(PY) -m pytest -q tests/unit

integration: ## tests against the real registry, helm and kubectl
	$(PY) -m pytest -q tests/integration

lint: ## ruff and mypy --strict on the package
	$(VENV)/bin/ruff check steps tests scripts bench
	$(VENV)/bin/ruff format --check steps
	$(VENV)/bin/mypy

bench: setup ## benchmark chart publishing against the real helm binary (prints figures)
	@$(PY) bench/bench_charts.py

clean: ## remove build outputs (keeps .venv and .tools)
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache out

# Alga appliance release tooling. `make help` lists the targets.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STEP_IMAGE_TAG ?= localhost/alga-release-step:dev
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup demo test unit integration lint bench clean workflows check-workflows step-image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup: ## install everything (apt packages, helm/kubectl, .venv); idempotent
	@bash scripts/setup.sh

demo: setup ## publish a whole release to a throw-away loopback registry and inspect it
	@$(PY) scripts/demo.py

test: setup lint check-workflows ## the full test suite (what CI runs): lint, types, rendered workflows, unit and integration tests
	$(PY) -m pytest -q

unit: ## fast pure tests only
	$(PY) -m pytest -q tests/unit

integration: ## tests against the real registry, helm and kubectl
	$(PY) -m pytest -q tests/integration

lint: ## ruff and mypy --strict on the package, the pipelines and the consume library
	$(VENV)/bin/ruff check steps pipelines consume tests scripts bench
	$(VENV)/bin/ruff format --check steps pipelines consume/release_consume.py
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict consume/release_consume.py

workflows: ## render pipelines/ (Hera) into workflows-generated/ with `hera generate yaml`
	rm -rf workflows-generated
	PYTHONPATH=$(CURDIR) $(VENV)/bin/hera generate yaml pipelines --to workflows-generated

check-workflows: ## fail when workflows-generated/ differs from a fresh render of pipelines/
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	PYTHONPATH=$(CURDIR) $(VENV)/bin/hera generate yaml pipelines --to "$$tmp/render" 2>"$$tmp/err" \
	  || { cat "$$tmp/err" >&2; echo "check-workflows: hera generate yaml failed" >&2; exit 1; }; \
	if ! diff -ru workflows-generated "$$tmp/render"; then \
	  echo "check-workflows: workflows-generated/ is stale: run 'make workflows' and commit it" >&2; exit 1; \
	fi; \
	echo "check-workflows: workflows-generated/ matches pipelines/"

step-image: ## build the step image with buildah (needs its base images; see README)
	buildah bud --isolation chroot --storage-driver vfs --layers \
	  -t $(STEP_IMAGE_TAG) -f Dockerfile .

bench: setup ## benchmarks that print figures: chart publishing vs helm, consume resolves, publish requests
	@$(PY) bench/bench_charts.py
	@$(PY) bench/bench_consume.py
	@$(PY) bench/bench_requests.py --baseline 2b72073

clean: ## remove build outputs (keeps .venv and .tools)
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache out

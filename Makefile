# Alga appliance release tooling. `make help` lists the targets.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STEP_IMAGE_TAG ?= localhost/alga-release-step:dev
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup demo test unit integration lint bench clean workflows check-workflows step-image step-image-dockerfile

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup: ## install everything (apt packages, helm/kubectl, .venv); idempotent
	@bash scripts/setup.sh

demo: setup ## publish a whole release to a throw-away loopback registry and inspect it
	@$(PY) scripts/demo.py

# pytest-xdist: a worker per core (PYTEST_WORKERS=0: one process), each test file on one
# worker, so a file's session fixtures (the step image, the test images) are made once.
PYTEST_WORKERS ?= auto
PYTEST = $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: setup lint check-workflows ## the full test suite (what CI runs): lint, types, rendered workflows, unit and integration tests
	$(PYTEST)

unit: ## fast pure tests only
	$(PYTEST) tests/unit

integration: ## tests against the real registry, helm and kubectl
	$(PYTEST) tests/integration

lint: ## ruff and mypy --strict on the package, the pipelines and the consume library
	$(VENV)/bin/ruff check steps pipelines consume tests scripts bench
	$(VENV)/bin/ruff format --check steps pipelines consume/release_consume.py
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict consume/release_consume.py

# Render-time image pins (recorded in pipelines/pins.json): make workflows STEP_IMAGE=<repo>@sha256:<hex>
PIN_ARGS = $(if $(filter undefined,$(origin STEP_IMAGE)),,--step-image '$(STEP_IMAGE)') \
           $(if $(filter undefined,$(origin DIND_IMAGE)),,--dind-image '$(DIND_IMAGE)')

workflows: ## render pipelines/ into workflows-generated/ (`hera generate yaml`, rbac.yaml); STEP_IMAGE=, DIND_IMAGE= pin images
	PYTHONPATH=$(CURDIR) $(PY) -m pipelines.pins $(PIN_ARGS)
	rm -rf workflows-generated
	PYTHONPATH=$(CURDIR) $(VENV)/bin/hera generate yaml pipelines --to workflows-generated
	PYTHONPATH=$(CURDIR) $(PY) -m pipelines.rbac workflows-generated

check-workflows: ## fail when workflows-generated/ differs from a fresh render of pipelines/
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	PYTHONPATH=$(CURDIR) $(VENV)/bin/hera generate yaml pipelines --to "$$tmp/render" 2>"$$tmp/err" \
	  || { cat "$$tmp/err" >&2; echo "check-workflows: hera generate yaml failed" >&2; exit 1; }; \
	PYTHONPATH=$(CURDIR) $(PY) -m pipelines.rbac "$$tmp/render"; \
	if ! diff -ru workflows-generated "$$tmp/render"; then \
	  echo "check-workflows: workflows-generated/ is stale: run 'make workflows' and commit it" >&2; exit 1; \
	fi; \
	echo "check-workflows: workflows-generated/ matches pipelines/"

# make step-image [PUSH_TAG=0.1.0 [PUSH_REGISTRY=ghcr.io PUSH_NAMESPACE=nine-minds PUSH_FLAGS=--plain-http]]
PUSH_REGISTRY ?= ghcr.io
PUSH_NAMESPACE ?= nine-minds
step-image: setup ## build the step image from Debian packages (debootstrap + buildah, no base image); PUSH_TAG= pushes it and prints the STEP_IMAGE to render with
	bash scripts/step-image.sh build $(STEP_IMAGE_TAG)
	@if [ -n "$(PUSH_TAG)" ]; then \
	  ref="$$($(PY) scripts/push_step_image.py --tag '$(PUSH_TAG)' --registry '$(PUSH_REGISTRY)' \
	    --namespace '$(PUSH_NAMESPACE)' $(PUSH_FLAGS))" || exit $$?; \
	  echo "pushed; render with: make workflows STEP_IMAGE=$$ref"; \
	fi

step-image-dockerfile: ## build the step image from the Dockerfile (needs its base image; see README)
	buildah bud --isolation chroot --storage-driver vfs --layers \
	  -t $(STEP_IMAGE_TAG) -f Dockerfile .

# make bench [BENCH_FLAGS=--quick]: every benchmark, then one table of the issue's rows (ours,
# the peer, the ratio, the target) from this run; bench/*.py --quick each run alone as a smoke run.
BENCH_ROWS ?= $(CURDIR)/out/bench-rows.jsonl
bench: setup ## benchmarks that print figures beside the standard tools, then the summary table
	@mkdir -p "$(dir $(BENCH_ROWS))" && rm -f "$(BENCH_ROWS)"
	@$(PY) bench/bench_release.py --rows "$(BENCH_ROWS)" $(BENCH_FLAGS)
	@$(PY) bench/bench_charts.py --rows "$(BENCH_ROWS)" $(BENCH_FLAGS)
	@$(PY) bench/bench_copy.py --rows "$(BENCH_ROWS)" $(BENCH_FLAGS)
	@$(PY) bench/bench_channels.py --rows "$(BENCH_ROWS)" $(BENCH_FLAGS)
	@$(PY) bench/bench_startup.py --rows "$(BENCH_ROWS)" $(BENCH_FLAGS)
	@$(PY) bench/bench_consume.py $(BENCH_FLAGS)
	@$(PY) bench/bench_requests.py $(if $(filter --quick,$(BENCH_FLAGS)),,--baseline 2b72073) $(BENCH_FLAGS)
	@$(PY) bench/table.py "$(BENCH_ROWS)"

clean: ## remove build outputs (keeps .venv and .tools)
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache out

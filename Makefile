# One entry point for people and CI. `make run` serves the platform, `make test` proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
BUF := node_modules/.bin/buf
PROTO := protos/grpc_predict_v2.proto
STUBS_DIR := gateway/protocol
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: system-deps
system-deps: ## Install every apt package the tests use when missing (needs root)
	@bash scripts/install-system-deps.sh test

.PHONY: run-deps
run-deps: ## Install only what serving needs from apt: Tesseract, English and OSD data
	@bash scripts/install-system-deps.sh run

# Serving needs the gateway and model extras (and the `ocr` command line); the tests add the dev
# tools on top.
$(RUN_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[gateway,model,cli]'
	@touch $@

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create .venv with every Python dependency (pinned by constraints.txt)

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

TOOLS := .tools
.PHONY: tools
tools: $(STAMP) ## Install helm and checkov into .tools/ (offline-capable test tools)
	bash scripts/install-tools.sh $(TOOLS)

.PHONY: protos
protos: $(STAMP) ## Regenerate the Python gRPC stubs from protos/
	bash scripts/gen-protos.sh $(PY) $(STUBS_DIR)

.PHONY: check-protos
check-protos: $(STAMP) ## Fail when the committed stubs differ from freshly generated ones
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  bash scripts/gen-protos.sh $(PY) "$$tmp" && \
	  for f in "$$tmp"/grpc_predict_v2_pb2*; do \
	    diff -u "$(STUBS_DIR)/$$(basename $$f)" "$$f" >/dev/null || \
	      { echo "stale stub: $(STUBS_DIR)/$$(basename $$f); run 'make protos'"; exit 1; }; \
	  done && echo "stubs are fresh"

.PHONY: buf-lint
buf-lint: $(BUF) ## Lint the proto with buf (STANDARD rules, exceptions in buf.yaml)
	$(BUF) lint

.PHONY: lint
lint: $(STAMP) buf-lint check-protos ## ruff, ruff format, mypy --strict, buf lint, stub freshness
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: test
test: system-deps $(STAMP) tools lint ## Run every check and every test (unit, integration, e2e)
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: run
run: run-deps $(RUN_STAMP) ## Start model server (:8080 REST, :8081 gRPC) and gateway (:8001); Ctrl-C stops both
	bash scripts/run-local.sh $(PY)

.PHONY: run-observed
run-observed: $(RUN_STAMP) ## make run plus a local Prometheus on :9090 scraping both services
	@bash scripts/install-system-deps.sh observe
	bash scripts/run-observed.sh $(PY)

# The benchmark's peers (OCRmyPDF) on top of the dev tools: `make bench` installs them, `make test`
# does not (its smoke run of bench.documents leaves OCRmyPDF out).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	@touch $@

.PHONY: bench
bench: $(BENCH_STAMP) ## Engine ceiling vs platform vs seed-style, formats, documents, admission: tables + docs/bench/*.json
	@bash scripts/install-system-deps.sh bench
	$(PY) -m bench --out $${BENCH_OUT:-docs/bench}
	$(PY) -m bench.formats --out $${BENCH_OUT:-docs/bench}
	$(PY) -m bench.documents --out $${BENCH_OUT:-docs/bench}
	$(PY) -m bench.admission --out $${BENCH_OUT:-docs/bench}
	$(PY) -m bench.cli --out $${BENCH_OUT:-docs/bench}

.PHONY: screenshots
screenshots: $(STAMP) ## Regenerate docs/img/web-page.png: the web page reading a page, in headless Chromium
	@bash scripts/install-system-deps.sh web
	@mkdir -p docs/img
	OCR_WEB_SCREENSHOT=$(CURDIR)/docs/img/web-page.png $(PY) -m pytest -q -p no:cacheprovider \
	  tests/e2e/test_web.py -k rendered_page

.PHONY: fuzz
fuzz: $(STAMP) ## Long fuzz runs: the decode path and the gateway's OpenAPI (5000 examples each)
	OCR_FUZZ_EXAMPLES=$${OCR_FUZZ_EXAMPLES:-5000} $(PY) -m pytest -p no:warnings \
	  tests/unit/model/test_fuzz_decode.py tests/e2e/test_fuzz_api.py

.PHONY: soak
soak: $(STAMP) ## Thousands of mixed requests; prints RSS of both services and growth
	@bash scripts/install-system-deps.sh bench
	$(PY) scripts/soak.py --requests $${SOAK_REQUESTS:-5000}

.PHONY: audit
audit: $(STAMP) ## pip-audit over the pinned dependencies (needs PyPI's JSON API for these versions)
	$(VENV)/bin/pip-audit --requirement constraints.txt --no-deps --disable-pip --strict

.PHONY: format
format: $(STAMP) ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: clean
clean: ## Remove the venv, node_modules and caches
	rm -rf $(VENV) $(TOOLS) node_modules .mypy_cache .ruff_cache .pytest_cache

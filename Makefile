# LMIS: `make demo` and `make test` are the whole set-up; both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)
NATIVE_STAMP := $(VENV)/.native-$(shell cat native/Cargo.toml native/Cargo.lock native/pyproject.toml native/src/*.rs | sha1sum | cut -c1-12)
KAFKA_JARS ?= $(HOME)/.cache/lmis/kafka-4.4.0
ALERTMANAGER ?= $(HOME)/.cache/lmis/alertmanager-0.28.1
# rustup's cargo, where a login shell would have put it
export PATH := $(HOME)/.cargo/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: setup system-deps python-deps fuzz-deps kafka-jars alertmanager board-assets test lint demo bench lock clean

setup: system-deps python-deps fuzz-deps kafka-jars alertmanager board-assets

# Java runs the Kafka broker; Maven fetches its jars; Node bundles the board; Debian's chromium tests it.
# Only what is missing is installed: a machine's own Node (e.g. NodeSource's, which bundles npm) conflicts
# with Debian's npm package.
system-deps:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	fc-list | grep -qi "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	[ -z "$$missing" ] || { echo "installing:$$missing"; apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }

python-deps: $(DEPS_STAMP) $(NATIVE_STAMP)

$(DEPS_STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e .
	rm -f $(VENV)/.deps-* && touch $@

# The compiled reader of the trend pipeline (native/, Rust, streams/native.py): pyo3 from crates.io (pinned in
# native/Cargo.lock), built by maturin from PyPI. It needs cargo and rustc 1.74 or newer (rustup's; Debian
# bookworm's 1.63 is too old for pyo3). It is optional: without it the worker reads every message in Python
# (slower: docs/benchmarks.md), and the tests of the compiled reader say they were not run.
$(NATIVE_STAMP): $(DEPS_STAMP) native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs)
	@if ! command -v cargo >/dev/null || ! rustc --version | awk '{split($$2, v, "."); exit !(v[1] > 1 || v[2] >= 74)}'; then \
	  echo "no Rust 1.74 or newer (https://rustup.rs): the compiled reader is not built; the worker reads in Python" >&2; \
	else \
	  $(BIN)/uv pip install --python $(BIN)/python -q --reinstall --no-cache ./native; \
	fi
	rm -f $(VENV)/.native-* && touch $@

# schemathesis in a venv of its own: grafana-client's niquests brings urllib3-future, whose .pth file
# replaces urllib3 at every start, and schemathesis (requests) breaks on it.
FUZZ_STAMP := .venv-fuzz/.deps-$(shell sha1sum requirements-fuzz.txt | cut -c1-12)

fuzz-deps: $(FUZZ_STAMP)

$(FUZZ_STAMP): requirements-fuzz.txt $(DEPS_STAMP)
	test -x .venv-fuzz/bin/python || $(PYTHON) -m venv .venv-fuzz
	$(BIN)/uv pip install --python .venv-fuzz/bin/python -q --compile-bytecode -r requirements-fuzz.txt
	rm -f .venv-fuzz/.deps-* && touch $@

kafka-jars: $(KAFKA_JARS)/.complete

$(KAFKA_JARS)/.complete: stack/kafka-pom.xml
	mkdir -p $(KAFKA_JARS)
	mvn -q -f stack/kafka-pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(KAFKA_JARS)
	touch $@

# Prometheus Alertmanager routes and delivers the alerts (lmis/alertmanager.py): built from the Go module proxy
# with the machine's Go (a few minutes, once). v0.28.1 is the newest tag that builds under `go install`.
alertmanager: $(ALERTMANAGER)/alertmanager

$(ALERTMANAGER)/alertmanager:
	@command -v go >/dev/null || { echo "go not found: install Go 1.23 or newer (https://go.dev/dl)" >&2; exit 1; }
	mkdir -p $(ALERTMANAGER)
	GOBIN=$(ALERTMANAGER) go install github.com/prometheus/alertmanager/cmd/alertmanager@v0.28.1

# The embedded board's JavaScript: chart library from npm, bundled at build time (no CDN).
board-assets: dashboards/web/dist/board.js

dashboards/web/dist/board.js: dashboards/web/src/board.js dashboards/web/package.json dashboards/web/package-lock.json
	cd dashboards/web && npm ci --no-audit --no-fund && npm run build

lint: python-deps
	$(BIN)/ruff check .
	@if command -v cargo >/dev/null; then cd native && cargo fmt --check; else echo "no cargo: native/ not format-checked"; fi

test: setup lint
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: setup
	$(BIN)/lmis demo

# Benchmarks print their figures on the last line (see docs/benchmarks.md).
bench: setup
	$(BIN)/lmis bench pipeline --profile
	$(BIN)/lmis bench board
	$(BIN)/lmis bench matching
	$(BIN)/lmis bench recovery
	$(BIN)/lmis bench alerts
	$(BIN)/lmis bench briefing

# Re-resolve the pinned Python dependencies after editing pyproject.toml.
lock: python-deps
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11 -q

clean:
	-$(BIN)/lmis stack down
	rm -rf data test-artifacts

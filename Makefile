# `make demo` runs the quickstart end to end; `make test` runs the checks CI runs.
# Both create .venv on first use: torch first (pinned: other versions pull CUDA builds),
# then clustergrid in editable mode with its test extras. `make test` also installs the
# Debian packages the tests use, those not installed yet (apt-get, as root or through
# sudo): chromium for the report's browser test, stilts to validate exported VOTables.

VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install system-packages browser demo test lint bench figures docs clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

SYSTEM_PACKAGES := chromium stilts

system-packages:
	@missing="$$(for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || printf '%s ' $$p; done)"; \
	test -z "$$missing" || $(SUDO) sh -c "apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null"

browser: system-packages

demo: $(INSTALLED)
	$(BIN)/clustergrid run experiments/quickstart.yaml
	$(BIN)/clustergrid results quickstart

# The test files run side by side on the cores (at most 4: each may train a network or
# start MLflow), a file's tests in one process so its shared fixtures are built once.
test: $(INSTALLED) system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile

bench: $(INSTALLED)
	$(BIN)/python tests/benchmarks/bench_runner.py

# The manual's montages and report screenshots (docs/figures).
figures: $(INSTALLED) browser
	PATH="$(abspath $(BIN)):$$PATH" bash experiments/figures/make_figures.sh

# The manual (docs/, mkdocs.yml) as a website in site/; `make test` builds it too.
docs: $(INSTALLED)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf clustergrid-runs .pytest_cache .ruff_cache site

# `make demo` runs the quickstart end to end; `make test` runs the checks CI runs.
# Both create .venv on first use: torch first (pinned: other versions pull CUDA builds),
# then clustergrid in editable mode with its test extras. `make test` also installs
# Debian's chromium for the report's browser test (apt-get, as root or through sudo).

VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install browser demo test lint bench figures docs clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser:
	@command -v chromium >/dev/null || $(SUDO) sh -c 'apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null'

demo: $(INSTALLED)
	$(BIN)/clustergrid run experiments/quickstart.yaml
	$(BIN)/clustergrid results quickstart

# The test files run side by side on the cores (at most 4: each may train a network or
# start MLflow), a file's tests in one process so its shared fixtures are built once.
test: $(INSTALLED) browser
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

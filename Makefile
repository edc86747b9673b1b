# `make demo` runs the quickstart end to end; `make test` runs the checks CI runs.
# Both create .venv on first use: torch first (pinned: other versions pull CUDA builds),
# then clustergrid in editable mode with its test extras.

VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/clustergrid run experiments/quickstart.yaml
	$(BIN)/clustergrid results quickstart

test: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(INSTALLED)
	$(BIN)/python tests/benchmarks/bench_runner.py

clean:
	rm -rf clustergrid-runs .pytest_cache .ruff_cache

# Everything a fresh machine needs comes from here: a venv under .venv with the
# project and its test tools installed from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit integration bench microbench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tidelog needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $@

## make run: start the broker on its embedded default (127.0.0.1:9092, ./tidelog-data)
run: $(STAMP)
	$(BIN)/tidelog serve $(ARGS)

## make test: lint, type-check, then the whole test suite
test: lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

## make bench: side-by-side throughput against the peer broker
bench: $(STAMP)
	$(BIN)/python bench/throughput.py $(ARGS)

## make microbench: pytest-benchmark micro benchmarks of the hot paths
microbench: $(STAMP)
	$(BIN)/python -m pytest bench --benchmark-only -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) tidelog-data .mypy_cache .ruff_cache .pytest_cache

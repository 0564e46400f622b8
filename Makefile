# Everything a fresh machine needs comes from here: a venv under .venv with the
# project and its test tools installed from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit integration kcat chromium bench bench-groups bench-cluster bench-payments bench-recovery bench-hostile bench-transactions bench-metrics bench-security bench-compaction microbench clean

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
test: lint typecheck kcat chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP) kcat chromium
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

## make kcat: the kcat CLI (an old librdkafka) for tests/integration/test_kcat.py, from
## Debian's packages when it is missing and we are root. Never fails the build: without
## it those tests are skipped, and this prints one line saying why.
kcat:
	@command -v kcat >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then why="not root"; \
	  elif ! command -v apt-get >/dev/null 2>&1; then why="no apt-get"; \
	  elif ! apt-get update -qq >/dev/null 2>&1; then why="apt-get update failed"; \
	  elif ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null 2>&1; \
	  then why="apt-get install kcat failed"; \
	  else echo "kcat installed: $$(command -v kcat)"; exit 0; fi; \
	  echo "kcat could not be installed ($$why): the kcat tests will be skipped"; }

## make chromium: Debian's headless-capable chromium for the browser tests (pages loaded
## by Playwright through tests/integration/browser.py; Playwright never downloads a browser
## here). Never fails the build: without it those tests are skipped, and this prints why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then why="not root"; \
	  elif ! command -v apt-get >/dev/null 2>&1; then why="no apt-get"; \
	  elif ! apt-get update -qq >/dev/null 2>&1; then why="apt-get update failed"; \
	  elif ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; \
	  then why="apt-get install chromium failed"; \
	  else echo "chromium installed: $$(command -v chromium)"; exit 0; fi; \
	  echo "chromium could not be installed ($$why): the browser tests will be skipped"; }

## make bench: side-by-side throughput against the peer broker
bench: $(STAMP)
	$(BIN)/python bench/throughput.py $(ARGS)

## make bench-groups: consumer-group latency (subscribe -> first record, rebalance) vs the peer
bench-groups: $(STAMP)
	$(BIN)/python bench/groups.py $(ARGS)

## make bench-cluster: produce throughput of 3 brokers on one bucket vs 1, CPU s/GB per broker
bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster.py $(ARGS)

## make bench-payments: the payments app under load (payments/s, latency p50/p99, rebuild)
bench-payments: $(STAMP)
	$(BIN)/python -m tidelog.bench.payments $(ARGS)

## make bench-recovery: replace drill repeated per mode; recovery time median and worst
bench-recovery: $(STAMP)
	$(BIN)/python bench/recovery.py $(ARGS)

## make bench-hostile: what idle and stalled connections cost, a good client's p99, vs the peer
bench-hostile: $(STAMP)
	$(BIN)/python bench/hostile.py $(ARGS)

## make bench-transactions: transactional vs idempotent produce, EndTxn p50/p99, vs the peer
bench-transactions: $(STAMP)
	$(BIN)/python bench/transactions.py $(ARGS)

## make bench-metrics: produce throughput with --http-listen on and scraped every second vs off
bench-metrics: $(STAMP)
	$(BIN)/python bench/metrics.py $(ARGS)

## make bench-security: produce/consume over SASL_SSL vs PLAINTEXT, SCRAM-SHA-512 set-up p50/p99
bench-security: $(STAMP)
	$(BIN)/python bench/security.py $(ARGS)

## make bench-compaction: cleaner MB/s, changelog restore before/after compaction, bucket under retention
bench-compaction: $(STAMP)
	$(BIN)/python bench/compaction.py $(ARGS)

## make microbench: pytest-benchmark micro benchmarks of the hot paths (bench/test_micro_*.py)
microbench: $(STAMP)
	$(BIN)/python -m pytest bench --benchmark-only -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) tidelog-data .mypy_cache .ruff_cache .pytest_cache

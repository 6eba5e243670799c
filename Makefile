# Everything a newcomer needs: `make run` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster
N ?= 1000000

.PHONY: run test dev bench loadtest accuracy lint sample clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The instance: telemetry off, and runs writing the same outputs queued one at a time.
$(DAGSTER_HOME)/dagster.yaml: dagster_instance.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

## run: generate the sample data if missing, then materialize the whole graph
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/customer360 sample --if-missing
	$(BIN)/customer360 run

## test: the whole test suite ("no tests collected" counts as a failure)
test: $(STAMP)
	@$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

## dev: the Dagster UI on http://127.0.0.1:3000
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/customer360 sample --if-missing
	$(BIN)/dagster dev -w workspace.yaml

## lint: ruff over package and tests
lint: $(STAMP)
	$(BIN)/ruff check customer360 customer360_tests scripts

## sample: regenerate the sample data
sample: $(STAMP)
	$(BIN)/customer360 sample

clean:
	rm -rf artifacts/*.parquet artifacts/*.duckdb artifacts/.customer360.lock

## accuracy: pairwise precision/recall/F1 of the spec with and without guards and matching
## (ARGS=--missed: only the spec as written, its missed pairs broken down by reason)
accuracy: $(STAMP)
	$(BIN)/customer360 sample --if-missing
	$(BIN)/python scripts/accuracy.py $(ARGS)

## bench: materialize the graph on N generated records (default 1,000,000); prints timings
## (rules, guards and splits; ARGS=--probabilistic adds the probabilistic stage)
bench: $(STAMP)
	$(BIN)/python scripts/benchmark.py --records $(N) $(ARGS)

## loadtest: 10,000 resolves against the service over a graph of N records; p50/p99/errors
loadtest: $(STAMP)
	$(BIN)/python scripts/load_test.py --records $(N)

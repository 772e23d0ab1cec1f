# Partita's developer entry points. Everything runs from the project's own virtualenv (.venv),
# created and kept in step with pyproject.toml by the first target that needs it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck protos check-protos bench chaos fuzz clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## The main job on the embedded default (SQLite + local launcher) over the guide's examples.
demo: $(STAMP)
	$(PY) scripts/demo.py

## Every check CI runs: lint, types, generated-code freshness and the whole test suite.
test: $(STAMP) lint typecheck
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

check-protos: $(STAMP)
	$(PY) scripts/gen_protos.py --check

## The RPC fuzz with many more random inputs (PARTITA_FUZZ_EXAMPLES per RPC) on SQLite and PostgreSQL;
## figures per database are appended to PARTITA_FUZZ_REPORT (default .partita/fuzz-report.jsonl).
PARTITA_FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	mkdir -p .partita
	PARTITA_FUZZ_EXAMPLES=$(PARTITA_FUZZ_EXAMPLES) \
	PARTITA_FUZZ_REPORT=$${PARTITA_FUZZ_REPORT:-.partita/fuzz-report.jsonl} \
	PARTITA_TEST_POSTGRES_URL=$${PARTITA_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	$(PY) -m pytest -p no:cacheprovider -q -s -o timeout=0 tests/integration/test_rpc_fuzz.py

## Every benchmark, printing its figures beside the targets (PostgreSQL cases need the local server).
bench: $(STAMP)
	$(PY) -m benchmarks.partitions
	$(PY) -m benchmarks.code_server
	$(PY) -m benchmarks.storage --postgres $${PARTITA_BENCH_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
	$(PY) -m benchmarks.backfill
	$(PY) -m benchmarks.k8s_launcher
	$(PY) -m benchmarks.streams
	$(PY) -m benchmarks.security
	$(PY) -m benchmarks.auth_overhead

## The long chaos variant: many seeded trials of SIGKILLs during backfills (SQLite and PostgreSQL).
chaos: $(STAMP)
	$(PY) -m benchmarks.chaos

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .partita

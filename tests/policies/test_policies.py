"""aisec's cluster policies, loaded by Airflow through the ``airflow.policy`` entry point, judging DAGs as a
DagBag parses them: each rule fires, all violations of a DAG are one import error, the product's own DAGs
pass, and nothing is judged while ``[aisec] policies`` is off."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_aisec.policies import Violation, check_dags_folder

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "dags" / "catalog.yaml"

VIOLATING = """\
LAKE = {lake!r}

# No owner: Airflow's default 'airflow'.
with DAG("aisec_test_violations", schedule=None, start_date=START):

    @task(inlets=[Asset(name="customers")])
    def no_purpose() -> None: ...

    @task(inlets=[Asset(name="orders")], params={{"aisec_purpose": "marketing.advertising"}})
    def wrong_purpose() -> None: ...

    # A file inside the orders dataset's location is the orders dataset.
    @task(
        inlets=[Asset(uri=f"file://{{LAKE}}/orders/2026/part-0.parquet")],
        params={{"aisec_purpose": "support"}},
    )
    def wrong_purpose_by_location() -> None: ...

    @task(
        inlets=[Asset(name="customers")],
        outlets=[Asset(name="partner_export")],
        params={{"aisec_purpose": "billing"}},
    )
    def raw_export() -> None: ...

    no_purpose() >> wrong_purpose() >> wrong_purpose_by_location() >> raw_export()
"""

COMPLIANT = """\
from airflow_aisec.operators.crypto import EncryptDatasetOperator
from airflow_aisec.operators.pii import PIIMaskOperator

LAKE = {lake!r}

with DAG(
    "aisec_test_compliant",
    schedule=None,
    start_date=START,
    default_args={{"owner": "data-platform", "aisec_purpose": "billing"}},
):

    @task(
        inlets=[Asset(name="customers"), Asset(uri=f"file://{{LAKE}}/orders/2026/part-0.parquet")],
        outlets=[Asset(name="support_tickets_masked")],
    )
    def enrich() -> None: ...

    # Masked or encrypted, personal data may leave the catalog.
    mask = PIIMaskOperator(
        task_id="mask_for_partner",
        dataset="customers",
        output_uri=f"{{LAKE}}/partner/customers",
        outlets=[Asset(name="partner_customers")],
    )
    encrypt = EncryptDatasetOperator(
        task_id="encrypt_for_partner",
        dataset="orders",
        output_uri=f"{{LAKE}}/partner/orders",
        key="pii-columns",
        outlets=[Asset(name="partner_orders")],
    )
    enrich() >> [mask, encrypt]
"""

NO_DATA = """\
with DAG("aisec_test_no_data", schedule=None, start_date=START):

    @task
    def housekeeping() -> None: ...

    housekeeping()
"""

EXPECTED = {
    ("task no_purpose", "AISEC-P001"),
    ("task wrong_purpose", "AISEC-P001"),
    ("task wrong_purpose_by_location", "AISEC-P001"),
    ("task raw_export", "AISEC-P003"),
    ("DAG", "AISEC-P002"),
}


def _dagbag(folder: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def _lines(error: str) -> list[str]:
    return [line for line in error.splitlines() if line.startswith("- ")]


def _where_and_rule(line: str) -> tuple[str, str]:
    where, rule, _ = line.removeprefix("- ").split(": ", 2)
    return where, rule


def test_airflow_loads_the_policy_through_its_entry_point() -> None:
    from airflow.settings import get_policy_plugin_manager

    import airflow_aisec.policies.plugin as plugin

    assert get_policy_plugin_manager().get_plugin("aisec") is plugin


@pytest.mark.usefixtures("policies_on")
def test_every_violation_of_a_dag_is_listed_in_its_one_import_error(
    dags_folder: Callable[..., Path], lake: Path
) -> None:
    bag = _dagbag(dags_folder(violating=VIOLATING.format(lake=str(lake))))
    assert "aisec_test_violations" not in bag.dags
    [(path, error)] = bag.import_errors.items()
    assert path.endswith("violating.py")
    assert error.startswith(
        "AirflowClusterPolicyViolation: DAG aisec_test_violations: 5 aisec policy violations ("
    )
    lines = _lines(error)
    assert sorted(_where_and_rule(line) for line in lines) == sorted(EXPECTED)
    by_task = {_where_and_rule(line)[0]: line for line in lines if "P002" not in line}
    assert "without declaring a purpose: set aisec_purpose" in by_task["task no_purpose"]
    assert (
        "reading dataset 'orders' for purpose 'marketing.advertising' is refused"
        in by_task["task wrong_purpose"]
    )
    assert "reading dataset 'orders' for purpose 'support'" in by_task["task wrong_purpose_by_location"]
    assert "(the dataset's purposes: billing)" in by_task["task wrong_purpose_by_location"]
    raw = by_task["task raw_export"]
    assert "'customers' (birth_date, email, full_name, phone)" in raw
    assert "Asset(s) 'partner_export'" in raw and "PIIMaskOperator" in raw
    [owner] = [line for line in lines if "AISEC-P002" in line]
    assert "tasks no_purpose, wrong_purpose, wrong_purpose_by_location, raw_export" in owner


@pytest.mark.usefixtures("policies_on")
def test_a_compliant_dag_loads_with_the_policies_on(dags_folder: Callable[..., Path], lake: Path) -> None:
    bag = _dagbag(dags_folder(compliant=COMPLIANT.format(lake=str(lake)), no_data=NO_DATA))
    assert bag.import_errors == {}
    assert set(bag.dags) == {"aisec_test_compliant", "aisec_test_no_data"}


def test_with_the_policies_off_nothing_is_judged(
    dags_folder: Callable[..., Path], lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(CATALOG))
    monkeypatch.delenv("AIRFLOW__AISEC__POLICIES", raising=False)
    bag = _dagbag(dags_folder(violating=VIOLATING.format(lake=str(lake))))
    assert bag.import_errors == {}
    assert set(bag.dags) == {"aisec_test_violations"}


@pytest.mark.usefixtures("policies_on")
def test_a_catalog_that_does_not_load_is_one_violation_not_a_crash(
    dags_folder: Callable[..., Path], lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "catalog.yaml"
    broken.write_text("version: 1\ndatasets: {}\n", encoding="utf-8")
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(broken))
    bag = _dagbag(dags_folder(violating=VIOLATING.format(lake=str(lake)), no_data=NO_DATA))
    assert set(bag.dags) == {"aisec_test_no_data"}  # a DAG that names no data needs no catalog
    [error] = bag.import_errors.values()
    [line] = _lines(error)
    assert line.startswith(f"- DAG: AISEC-P004: {broken}")
    assert line.endswith(": fix the catalog")


@pytest.mark.usefixtures("policies_on")
def test_the_product_dags_pass_the_policies(lake: Path) -> None:
    # Whether each file imports at all is test_dag_integrity's promise; here, none is refused by a policy.
    bag = _dagbag(ROOT / "dags")
    assert bag.dags
    assert not [e for e in bag.import_errors.values() if "AirflowClusterPolicyViolation" in e]
    found = check_dags_folder(ROOT / "dags", str(CATALOG), {"lake": str(lake)})
    assert [v for v in found if v.rule != "AISEC-P000"] == []


@pytest.mark.usefixtures("policies_on")
def test_check_dags_folder_applies_every_rule_and_reports_import_errors(
    dags_folder: Callable[..., Path], lake: Path
) -> None:
    folder = dags_folder(
        violating=VIOLATING.format(lake=str(lake)),
        compliant=COMPLIANT.format(lake=str(lake)),
        broken='raise RuntimeError("broken on purpose")  # DAG\n',
    )
    found = check_dags_folder(folder, str(CATALOG), {"lake": str(lake)})
    assert all(isinstance(v, Violation) for v in found)
    assert found[0] == Violation(
        "broken.py", "", None, "AISEC-P000", "RuntimeError: broken on purpose: fix the file so it imports"
    )
    # Judged by the rules even though the policy hook is on in this process: one violation per line.
    assert {(v.file, v.dag_id) for v in found[1:]} == {("violating.py", "aisec_test_violations")}
    assert [(v.task_id or "DAG", v.rule) for v in found[1:]] == [
        ("no_purpose", "AISEC-P001"),
        ("wrong_purpose", "AISEC-P001"),
        ("wrong_purpose_by_location", "AISEC-P001"),
        ("raw_export", "AISEC-P003"),
        ("DAG", "AISEC-P002"),
    ]


def test_check_dags_folder_names_a_catalog_that_does_not_load(
    dags_folder: Callable[..., Path], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.yaml"
    found = check_dags_folder(dags_folder(no_data=NO_DATA), str(missing))
    [violation] = found
    assert (violation.file, violation.rule) == (str(missing), "AISEC-P004")
    assert "cannot be read" in violation.message

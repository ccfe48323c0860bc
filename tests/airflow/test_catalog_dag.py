"""The `aisec_catalog_check` DAG and its operators, run by Airflow with dag.test()."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import DAGS, EXAMPLE, lake_copy
from dag_runs import dag_from
from dag_runs import states as _states
from dag_runs import xcom as _xcom

from airflow_aisec.exceptions import CatalogError, DatasetIOError
from airflow_aisec.operators.catalog import CatalogValidateOperator, LakeInventoryOperator


@pytest.mark.integration
def test_catalog_check_dag_succeeds_on_the_sample_lake(airflow_db: Path, lake_vars: dict[str, str]) -> None:
    run = dag_from(DAGS / "aisec_catalog_check.py").test()
    assert _states(run) == {"validate_catalog": "success", "inventory_lake": "success"}
    summary = _xcom(run, "validate_catalog")
    assert summary["summary"]["datasets"] == 6
    inventory = {item["dataset"]: item for item in _xcom(run, "inventory_lake")}
    assert inventory["customers"]["rows"] == 120
    assert inventory["customers"]["files"] >= 5
    assert not any(item["drift"] for item in inventory.values())


def test_validate_operator_fails_with_every_problem(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.yaml"
    text = EXAMPLE.read_text().replace("customers.customer_id", "customer.customer_id")
    broken.write_text(text.replace("format: csv", "format: xls"))
    operator = CatalogValidateOperator(task_id="v", catalog=str(broken), variables={"lake": "/x"})
    with pytest.raises(CatalogError) as raised:
        operator.execute(context={})  # type: ignore[arg-type]
    assert len(raised.value.problems) == 6  # five references, one format
    assert "unknown dataset 'customer'" in str(raised.value)


def test_inventory_operator_flags_undeclared_and_missing_columns(
    tmp_path: Path, sample_lake_dir: Path
) -> None:
    lake = lake_copy(sample_lake_dir, tmp_path)
    first = sorted((lake / "customers").glob("*.parquet"))[0]
    table = pq.read_table(first).drop_columns(["phone"])
    table = table.append_column("passport_no", pa.array(["X"] * table.num_rows))
    pq.write_table(table, first)
    operator = LakeInventoryOperator(task_id="i", catalog=str(EXAMPLE), variables={"lake": str(lake)})
    with pytest.raises(DatasetIOError, match="does not match the catalog for: customers"):
        operator.execute(context={})  # type: ignore[arg-type]
    report = LakeInventoryOperator(
        task_id="j", catalog=str(EXAMPLE), variables={"lake": str(lake)}, fail_on_drift=False
    ).execute(context={})  # type: ignore[arg-type]
    customers = next(item for item in report if item["dataset"] == "customers")
    assert customers["undeclared_columns"] == ["passport_no"]
    assert customers["missing_columns"] == []  # phone is still in the other files


def test_inventory_reports_a_missing_dataset_location(tmp_path: Path) -> None:
    operator = LakeInventoryOperator(
        task_id="i", catalog=str(EXAMPLE), variables={"lake": str(tmp_path / "none")}, fail_on_drift=False
    )
    report = operator.execute(context={})  # type: ignore[arg-type]
    copies = [item for item in report if item["dataset"].startswith("support_tickets_")]
    assert len(copies) == 2 and not any(item["problems"] for item in copies)  # `may_be_empty: true`
    assert all(item["problems"] for item in report if item not in copies)

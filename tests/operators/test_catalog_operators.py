"""``CatalogValidateOperator`` and ``LakeInventoryOperator`` executed directly on a lake of the test's own."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import EXAMPLE, catalog_file
from task_runs import AuditReader, TaskRun

from airflow_aisec.exceptions import CatalogError, DatasetIOError
from airflow_aisec.operators.catalog import CatalogValidateOperator, LakeInventoryOperator


def test_validate_returns_the_summary_and_records_it_once_per_task_instance(
    run: TaskRun, audit: AuditReader
) -> None:
    operator = CatalogValidateOperator(task_id="validate")

    result = operator.execute(run.context("validate"))
    again = operator.execute(run.context("validate"))  # a retried task records nothing new

    assert result == again
    assert result["catalog"] == str(EXAMPLE) and result["summary"]["datasets"] == 6
    assert result["warnings"] == [] and "data" not in result
    (entry,) = audit.entries("catalog.validate")
    assert entry.data["outcome"] == "success"
    assert entry.data["details"] == {"errors": 0, "warnings": 0, "datasets": 6}
    assert entry.data["actor"]["task_id"] == "validate" and entry.data["actor"]["run_id"] == run.run_id
    assert audit.keys() == ["aisec_unit/manual__unit-1/validate/-1/catalog.validate/"]


def test_validate_with_check_data_counts_the_files_it_read(run: TaskRun, lake: Path) -> None:
    result = CatalogValidateOperator(task_id="v", check_data=True).execute(run.context("v"))

    assert result["data"]["files"]["orders"] == len(list((lake / "orders").glob("*.parquet")))


def test_validate_fails_on_a_missing_catalog_and_records_the_failure(
    tmp_path: Path, run: TaskRun, audit: AuditReader
) -> None:
    operator = CatalogValidateOperator(task_id="v", catalog=str(tmp_path / "missing.yaml"))

    with pytest.raises(CatalogError, match=r"missing\.yaml: cannot read catalog"):
        operator.execute(run.context("v"))

    (entry,) = audit.entries("catalog.validate")
    assert entry.data["outcome"] == "failure" and entry.data["details"] == {"errors": 1, "warnings": 0}
    assert audit.keys() == ["aisec_unit/manual__unit-1/v/-1/catalog.validate//try-1"]


def test_validate_fails_on_a_dataset_location_that_does_not_exist(run: TaskRun, tmp_path: Path) -> None:
    operator = CatalogValidateOperator(task_id="v", variables={"lake": str(tmp_path / "nowhere")})

    with pytest.raises(CatalogError, match="nowhere"):
        operator.execute(run.context("v"))
    assert (
        CatalogValidateOperator(
            task_id="w", variables={"lake": str(tmp_path / "nowhere")}, check_locations=False
        ).execute(run.context("w"))["summary"]["datasets"]
        == 6
    )


def test_validate_fails_on_warnings_only_when_asked(run: TaskRun, tmp_path: Path) -> None:
    def no_retention(data: dict[str, object]) -> None:
        data["datasets"]["orders"].pop("retention")  # type: ignore[index]

    catalog = str(catalog_file(tmp_path, no_retention))
    lenient = CatalogValidateOperator(task_id="v", catalog=catalog).execute(run.context("v"))
    assert lenient["warnings"]

    with pytest.raises(CatalogError):
        CatalogValidateOperator(task_id="w", catalog=catalog, fail_on_warnings=True).execute(run.context("w"))


def test_inventory_returns_one_summary_per_dataset_and_records_each(run: TaskRun, audit: AuditReader) -> None:
    result = LakeInventoryOperator(task_id="inventory").execute(run.context("inventory"))

    by_name = {item["dataset"]: item for item in result}
    assert len(by_name) == 6 and by_name["customers"]["rows"] == 120
    assert not any(item["drift"] for item in result)
    recorded = {e.data["dataset"]: e.data for e in audit.entries("dataset.inventory")}
    assert set(recorded) == set(by_name)
    assert recorded["customers"]["rows"] == 120 and recorded["customers"]["outcome"] == "success"
    assert audit.keys() == [
        f"aisec_unit/manual__unit-1/inventory/-1/dataset.inventory/{name}" for name in by_name
    ]


def test_inventory_fails_on_drift_after_recording_it(lake: Path, run: TaskRun, audit: AuditReader) -> None:
    first = sorted((lake / "orders").glob("*.parquet"))[0]
    table = pq.read_table(first)
    pq.write_table(table.append_column("passport_no", pa.array(["X"] * table.num_rows)), first)

    with pytest.raises(DatasetIOError, match="does not match the catalog for: orders"):
        LakeInventoryOperator(task_id="i").execute(run.context("i"))

    (orders,) = [e.data for e in audit.entries("dataset.inventory") if e.data["dataset"] == "orders"]
    assert orders["outcome"] == "failure" and orders["columns"] == ["passport_no"]
    report = LakeInventoryOperator(task_id="j", fail_on_drift=False).execute(run.context("j"))
    assert {i["dataset"]: i["undeclared_columns"] for i in report}["orders"] == ["passport_no"]


def test_inventory_fails_on_a_missing_catalog_before_reading_anything(
    tmp_path: Path, run: TaskRun, audit: AuditReader
) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog"):
        LakeInventoryOperator(task_id="i", catalog=str(tmp_path / "none.yaml")).execute(run.context("i"))
    assert audit.entries() == []

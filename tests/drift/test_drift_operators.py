"""The drift operators executed directly over a catalog dataset: its PII columns' values never reach the
XCom result, the report, the audit log or the task's logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_aisec.audit import AuditLog
from airflow_aisec.exceptions import DriftDetectedError, PurposeError
from airflow_aisec.operators.drift import DriftCheckOperator, InputAnomalyOperator


class TaskInstance:
    """The task instance fields the operators read: identity (the audit actor) and XCom."""

    dag_id, run_id, task_id, map_index, try_number = "aisec_unit", "manual__1", "drift", -1, 1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture
def audit(tmp_path: Path, sample_lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", uri)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={sample_lake_dir}")
    return uri


def current_customers(tmp_path: Path, sample_lake_dir: Path) -> tuple[str, list[str]]:
    """The customers' files with every email replaced by new ones: the email column drifts."""
    table = pq.read_table(sample_lake_dir / "customers")
    emails = [f"new.person{i}@mail.example.org" for i in range(table.num_rows)]
    table = table.set_column(table.schema.get_field_index("email"), "email", pa.array(emails))
    (tmp_path / "current").mkdir()
    pq.write_table(table, tmp_path / "current" / "part-0.parquet")
    return str(tmp_path / "current"), emails


def test_drift_of_a_pii_column_is_reported_without_its_values(
    tmp_path: Path, sample_lake_dir: Path, audit: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    current, emails = current_customers(tmp_path, sample_lake_dir)
    report = tmp_path / "report.html"
    ti = TaskInstance()
    operator = DriftCheckOperator(
        task_id="drift", reference="customers", current=current, purpose="billing",
        columns=["email", "created_at"], report_path=str(report), drift_share=0.5,
    )  # fmt: skip
    with pytest.raises(DriftDetectedError, match="1/2 columns drifted"):
        operator.execute({"ti": ti})  # type: ignore[arg-type]

    result = ti.xcom["return_value"]
    assert result["drifted_columns"] == ["email"] and not result["passed"]
    with AuditLog.open(audit) as log:
        entries = [e.data for e in log.entries()]
    assert [e["action"] for e in entries] == ["purpose.check", "drift.check"]
    assert [ref.get("dataset") for ref in entries[1]["inputs"]] == ["customers", None]
    originals = pq.read_table(sample_lake_dir / "customers", columns=["email"])["email"].to_pylist()
    shown = json.dumps(result) + report.read_text() + json.dumps(entries) + caplog.text
    assert not any(value in shown for value in emails + originals)
    assert "category 1" in report.read_text()


def test_a_purpose_the_dataset_does_not_serve_is_refused_before_reading(
    tmp_path: Path, sample_lake_dir: Path, audit: str
) -> None:
    operator = InputAnomalyOperator(
        task_id="inputs", reference="customers", current="customers", purpose="fraud"
    )
    with pytest.raises(PurposeError):
        operator.execute({"ti": TaskInstance()})  # type: ignore[arg-type]


def test_inputs_like_the_reference_pass_the_anomaly_check(
    tmp_path: Path, sample_lake_dir: Path, audit: str
) -> None:
    ti = TaskInstance()
    operator = InputAnomalyOperator(
        task_id="inputs", reference="customers", current=str(sample_lake_dir / "customers"), purpose="billing"
    )
    result = operator.execute({"ti": ti})  # type: ignore[arg-type]
    assert result["passed"] and result["checked_columns"] >= 5

"""``AuditVerifyOperator`` executed directly on an audit log of the test's own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from task_runs import AuditReader, TaskRun

from airflow_aisec.audit import AuditLog
from airflow_aisec.exceptions import AuditLogError
from airflow_aisec.operators.audit import AuditVerifyOperator


@pytest.fixture
def written(settings: dict[str, str]) -> str:
    """A log with one entry (the operator only reads a log that exists)."""
    with AuditLog.open(settings["AUDIT_LOG"]) as log:
        log.append("pii.scan", dataset="customers")
    return settings["AUDIT_LOG"]


def test_verify_returns_the_verified_size_records_it_and_keeps_a_trusted_checkpoint(
    written: str, settings: dict[str, str], run: TaskRun, audit: AuditReader
) -> None:
    result = AuditVerifyOperator(task_id="verify").execute(run.context("verify"))

    assert result["size"] == 1 and len(result["root"]) == 64 and result["checkpoints"] >= 1
    (entry,) = audit.entries("audit.verify")
    assert entry.data["rows"] == 1
    assert entry.data["details"] == {"root": result["root"], "checkpoints": 1, "trusted_checkpoints": 0}
    assert Path(settings["TRUSTED_CHECKPOINT"]).read_text().count("\n") >= 4  # a signed note


def test_verify_without_a_trusted_checkpoint_writes_none(
    written: str, settings: dict[str, str], run: TaskRun
) -> None:
    AuditVerifyOperator(task_id="verify", trusted_checkpoint=None).execute(run.context("verify"))

    assert not Path(settings["TRUSTED_CHECKPOINT"]).exists()


def test_verify_fails_on_a_truncated_log_and_keeps_the_trusted_checkpoint(
    written: str, settings: dict[str, str], run: TaskRun, tmp_path: Path
) -> None:
    AuditVerifyOperator(task_id="verify").execute(run.context("verify"))
    trusted = Path(settings["TRUSTED_CHECKPOINT"]).read_text()
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        conn.execute("DROP TRIGGER aisec_entries_no_delete")
        conn.execute("DELETE FROM aisec_entries WHERE idx = (SELECT max(idx) FROM aisec_entries)")

    with pytest.raises(AuditLogError, match="audit log verification failed"):
        AuditVerifyOperator(task_id="verify").execute(run.context("verify", try_number=2))
    assert Path(settings["TRUSTED_CHECKPOINT"]).read_text() == trusted


def test_verify_fails_on_a_log_that_does_not_exist(run: TaskRun) -> None:
    with pytest.raises(AuditLogError, match="does not exist"):
        AuditVerifyOperator(task_id="verify").execute(run.context("verify"))

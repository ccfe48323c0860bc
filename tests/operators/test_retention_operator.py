"""``RetentionEnforcementOperator`` executed directly on a lake of the test's own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from builders import digests
from task_runs import AuditReader, TaskRun

from airflow_aisec.exceptions import CatalogError
from airflow_aisec.operators.retention import RetentionEnforcementOperator

AS_OF = "2026-11-01T00:00:00+00:00"


def test_enforcement_purges_expired_rows_and_returns_what_it_did(
    lake: Path, run: TaskRun, audit: AuditReader
) -> None:
    orders_before = pq.read_table(lake / "orders").num_rows
    chargebacks = digests(lake / "chargebacks")

    result = RetentionEnforcementOperator(task_id="enforce", as_of=AS_OF).execute(run.context("enforce"))

    by_name = {r["dataset"]: r for r in result}
    assert by_name["orders"]["rows_removed"] > 0 and not any(r["failed"] for r in result)
    assert by_name["orders"]["cutoff"] == "2019-11-01T00:00:00+00:00"
    assert pq.read_table(lake / "orders").num_rows == orders_before - by_name["orders"]["rows_removed"]
    assert by_name["chargebacks"]["legal_hold"] and digests(lake / "chargebacks") == chargebacks
    entries = [e.data for e in audit.entries("retention.delete")]
    assert any(e["dataset"] == "orders" and e["outcome"] == "success" and e.get("rows") for e in entries)
    assert any(e["dataset"] == "chargebacks" and e["outcome"] == "skipped" for e in entries)
    assert all(e["actor"]["task_id"] == "enforce" for e in entries)


def test_the_rules_are_measured_from_the_logical_date_without_as_of(lake: Path, run: TaskRun) -> None:
    context = run.context("enforce", logical_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))

    result = RetentionEnforcementOperator(task_id="enforce", datasets=["orders"]).execute(context)

    assert [r["dataset"] for r in result] == ["orders"]
    assert result[0]["cutoff"] == "2019-11-01T00:00:00+00:00"


def test_enforcing_twice_changes_nothing_the_second_time(lake: Path, run: TaskRun) -> None:
    operator = RetentionEnforcementOperator(task_id="enforce", as_of=AS_OF, datasets=["orders"])
    operator.execute(run.context("enforce"))
    after = digests(lake)

    (again,) = operator.execute(run.context("enforce", try_number=2))

    assert again["rows_removed"] == 0 and digests(lake) == after


def test_a_bad_catalog_path_fails_before_anything_is_read(tmp_path: Path, lake: Path, run: TaskRun) -> None:
    before = digests(lake)
    operator = RetentionEnforcementOperator(task_id="e", as_of=AS_OF, catalog=str(tmp_path / "no.yaml"))

    with pytest.raises(CatalogError, match=r"no\.yaml: cannot read catalog"):
        operator.execute(run.context("e"))
    assert digests(lake) == before


def test_a_bad_as_of_is_refused(run: TaskRun) -> None:
    with pytest.raises(ValueError, match="Invalid isoformat"):
        RetentionEnforcementOperator(task_id="e", as_of="next tuesday").execute(run.context("e"))

"""The DAG `aisec_retention_enforcement` run with dag.test() on a copy of the sample lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from builders import DAGS, lake_copy
from dag_runs import dag_from
from dag_runs import states as _states

from airflow_aisec.audit import AuditLog


@pytest.mark.integration
def test_retention_dag_purges_expired_rows_and_honours_the_legal_hold(
    airflow_db: Path, sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = lake_copy(sample_lake_dir, tmp_path)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={lake}")
    monkeypatch.setenv("AIRFLOW__AISEC__HOLDS", str(tmp_path / "holds.json"))
    chargebacks = {p.name: p.read_bytes() for p in (lake / "chargebacks").glob("*.csv")}
    orders_before = pq.read_table(lake / "orders").num_rows
    logical = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    run = dag_from(DAGS / "aisec_retention_enforcement.py").test(logical_date=logical)
    tasks = ("enforce_retention_files", "enforce_retention_part", "enforce_retention")
    assert _states(run) == dict.fromkeys(tasks, "success")
    mapped = [ti.map_index for ti in run.get_task_instances() if ti.task_id == "enforce_retention_part"]
    assert sorted(mapped) == list(range(len(mapped))) and len(mapped) > 1  # one task per part of a dataset

    cutoff = pa.scalar(dt.datetime(2019, 11, 1, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC"))
    orders = pq.read_table(lake / "orders")
    assert 0 < orders.num_rows < orders_before
    assert pc.all(pc.greater_equal(orders["ordered_at"], cutoff)).as_py()
    assert {p.name: p.read_bytes() for p in (lake / "chargebacks").glob("*.csv")} == chargebacks  # held
    with AuditLog.open() as log:
        entries = [e.data for e in log.entries() if e.action == "retention.delete"]
        assert log.verify().ok
    assert any(e["outcome"] == "success" and e.get("rows") for e in entries)
    assert any(e.get("dataset") == "chargebacks" and e["outcome"] == "skipped" for e in entries)

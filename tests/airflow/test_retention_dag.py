"""The DAG `aisec_retention_enforcement` run with dag.test() on a copy of the sample lake."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_aisec.audit import AuditLog

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.mark.integration
def test_retention_dag_purges_expired_rows_and_honours_the_legal_hold(
    airflow_db: Path, sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    lake = tmp_path / "lake"
    shutil.copytree(sample_lake_dir, lake)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={lake}")
    monkeypatch.setenv("AIRFLOW__AISEC__HOLDS", str(tmp_path / "holds.json"))
    chargebacks = {p.name: p.read_bytes() for p in (lake / "chargebacks").glob("*.csv")}
    orders_before = pq.read_table(lake / "orders").num_rows
    logical = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    dag = DagBag(dag_folder=str(DAGS / "aisec_retention_enforcement.py")).dags["aisec_retention_enforcement"]
    run = dag.test(logical_date=logical)
    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {"enforce_retention": "success"}

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

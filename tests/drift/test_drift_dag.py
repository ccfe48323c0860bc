"""``DriftCheckOperator`` and ``InputAnomalyOperator`` in a DAG run with ``dag.test()``: drift fails the
task, or skips it with ``soft_fail``; the result is in XCom and the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_aisec.audit import AuditLog


def write(folder: Path, shift: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    folder.mkdir()
    table = pa.table({"x": rng.normal(shift, 1, 4000), "c": rng.choice(["a", "b"], 4000)})
    pq.write_table(table, folder / "part-0.parquet")
    return str(folder)


DAG_FILE = Path(__file__).resolve().parents[1] / "airflow" / "dags" / "aisec_test_drift_check.py"


def _xcoms(run: Any) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, key="return_value")
        return {r.task_id: XComModel.deserialize_value(r) for r in rows}


@pytest.mark.integration
def test_drift_fails_the_task_or_skips_it_with_soft_fail(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    audit = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", audit)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={tmp_path}")
    conf = {
        "ref": write(tmp_path / "ref", 0, 1),
        "drifted": write(tmp_path / "cur", 1.5, 2),
        "steady": write(tmp_path / "ok", 0, 3),
        "report": str(tmp_path / "r.html"),
    }
    dag = DagBag(dag_folder=str(DAG_FILE)).dags["aisec_test_drift_check"]
    run = dag.test(run_conf=conf)

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {
        "drifted": "failed",
        "drifted_soft": "skipped",
        "steady": "success",
        "inputs": "success",
    }
    results = _xcoms(run)
    assert results["drifted"]["drifted_columns"] == ["x"] and not results["drifted_soft"]["passed"]
    assert results["steady"]["passed"] and results["steady"]["report"].endswith("r.html")
    assert "<svg" not in (tmp_path / "r.html").read_text()  # nothing drifted: no distribution to draw
    with AuditLog.open(audit) as log:
        entries = [e.data for e in log.entries() if e.action in ("drift.check", "anomaly.check")]
    outcomes = sorted((e["actor"]["task_id"], e["outcome"]) for e in entries)
    assert outcomes == [
        ("drifted", "failure"),
        ("drifted_soft", "failure"),
        ("inputs", "success"),
        ("steady", "success"),
    ]
    drifted = next(e for e in entries if e["actor"]["task_id"] == "drifted")
    assert drifted["details"]["columns"]["x"] == {"method": "wasserstein", "drifted": True}

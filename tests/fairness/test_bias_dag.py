"""``BiasCheckOperator`` run by Airflow with dag.test(): a failed, a soft-failed and a passed check."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from bias_data import ETHNICITIES

from airflow_aisec.audit import AuditLog

DAG_FILE = Path(__file__).resolve().parents[1] / "airflow" / "dags" / "aisec_test_bias_check.py"


def _xcoms(run: Any) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, key="return_value")
        return {r.task_id: XComModel.deserialize_value(r) for r in rows}


@pytest.mark.integration
def test_bias_check_fails_soft_fails_and_passes_with_its_result_in_xcom_and_the_audit_log(
    airflow_db: Path,
    lake: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    caplog.set_level(logging.DEBUG)
    dag = DagBag(dag_folder=str(DAG_FILE)).dags["aisec_test_bias_check"]
    run = dag.test(run_conf={"catalog": str(lake["catalog"]), "lake": str(lake["root"])})

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"gender_strict": "failed", "gender_soft": "skipped", "ethnicity": "success"}
    results = _xcoms(run)
    for task in ("gender_strict", "gender_soft"):
        assert results[task]["passed"] is False
        assert any(v.startswith("gender: selection_rate_ratio") for v in results[task]["violations"])
    passed = results["ethnicity"]["attributes"][0]
    assert results["ethnicity"]["passed"] and passed["labelled"] is False
    assert all(g["group"].startswith("group-") for g in passed["groups"])

    with AuditLog.open() as log:
        entries = [e.data for e in log.entries() if e.action == "bias.check"]
        assert log.verify().ok
    outcomes = {
        e["actor"]["task_id"]: e["outcome"] for e in entries if e["actor"].get("run_id") == run.run_id
    }
    assert outcomes == {"gender_strict": "failure", "gender_soft": "skipped", "ethnicity": "success"}
    logs = caplog.text + "".join(capfd.readouterr())
    assert "bias check failed: gender: selection_rate_ratio" in logs  # the task logs were captured
    shown = logs + json.dumps(results) + json.dumps(entries)
    assert not any(value in shown for value in ETHNICITIES)

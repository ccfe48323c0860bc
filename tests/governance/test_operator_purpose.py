"""Operators check the task's purpose before reading: ``aisec_purpose`` in a DAG's ``default_args``, run by
Airflow with dag.test()."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Any

import pytest

from airflow_aisec.audit import AuditLog
from airflow_aisec.exceptions import PurposeError
from airflow_aisec.operators.pii import PIIScanOperator

DAGS = Path(__file__).resolve().parent / "dags"
_BUNDLES = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"


@pytest.fixture(autouse=True)
def settings(tmp_path: Path, sample_lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example catalog over the shared sample lake (only read here), an audit log of the test's own, and
    this folder's DAGs in a bundle of their own (dag.test() runs only DAGs of a bundle)."""
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={sample_lake_dir}")
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    bundles = json.loads(os.environ[_BUNDLES])
    bundle = {
        "name": "governance-test-dags",
        "classpath": bundles[0]["classpath"],
        "kwargs": {"path": str(DAGS)},
    }
    monkeypatch.setenv(_BUNDLES, json.dumps([*bundles, bundle]))


def _scan_dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags[dag_id]


def _entries(run: Any) -> list[dict[str, Any]]:
    with AuditLog.open() as log:
        return [e.data for e in log.entries() if (e.data.get("actor") or {}).get("run_id") == run.run_id]


@pytest.mark.integration
def test_a_refused_purpose_fails_the_task_before_it_reads(airflow_db: Path) -> None:
    run = _scan_dag("aisec_test_purpose_refused").test()
    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {"scan_tickets": "failed"}
    entries = _entries(run)
    assert [e["action"] for e in entries] == ["purpose.check"]  # no scan: nothing was read
    [check] = entries
    assert check["outcome"] == "failure" and check["dataset"] == "support_tickets"
    assert check["details"]["purpose"] == "marketing.advertising"
    assert check["details"]["task"] == "aisec_test_purpose_refused.scan_tickets"


@pytest.mark.integration
def test_an_allowed_purpose_passes_and_is_recorded_before_the_scan(airflow_db: Path) -> None:
    run = _scan_dag("aisec_test_purpose_allowed").test()
    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {"scan_tickets": "success"}
    entries = _entries(run)
    assert [e["action"] for e in entries] == ["purpose.check", "pii.scan"]
    assert entries[0]["outcome"] == "success" and entries[0]["details"]["decision"] == "allowed"


def _context(**params: str) -> Any:
    ti = types.SimpleNamespace(dag_id="unit", run_id="manual__1", task_id="scan", map_index=-1, try_number=1)
    return {"ti": ti, "params": params}


def test_the_operator_argument_wins_over_params() -> None:
    context = _context(aisec_purpose="support")
    operator = PIIScanOperator(task_id="scan", dataset="orders", purpose="marketing", mode="patterns")
    with pytest.raises(
        PurposeError, match=r"^task unit.scan: reading dataset 'orders' for purpose 'marketing'"
    ):
        operator.execute(context)
    lenient = PIIScanOperator(task_id="scan", dataset="orders", mode="patterns")
    assert lenient._task_purpose(context) == "support"

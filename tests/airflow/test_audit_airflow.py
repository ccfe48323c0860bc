"""The audit log inside Airflow: the verify DAG, the listener and OpenLineage column lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from dag_runs import states as _states

from airflow_aisec.audit import AuditLog

DAGS = Path(__file__).resolve().parents[2] / "dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"


def _dag(dag_id: str, folder: Path = DAGS):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder)).dags[dag_id]


@pytest.mark.integration
def test_verify_dag_passes_then_catches_tampering(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A log of its own: the tampering below must not break the shared one other tests verify.
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("AIRFLOW__AISEC__TRUSTED_CHECKPOINT", str(tmp_path / "trusted.txt"))
    with AuditLog.open() as log:
        log.append("pii.scan", dataset="customers")
    run = _dag("aisec_audit_verify").test()
    assert _states(run) == {"verify_audit_log": "success"}
    trusted = tmp_path / "trusted.txt"
    assert trusted.read_text().count("\n") >= 4  # a signed note: origin, size, root, blank, signature

    import sqlite3

    with sqlite3.connect(tmp_path / "audit.db") as conn:
        conn.execute("DROP TRIGGER aisec_entries_no_delete")
        conn.execute("DELETE FROM aisec_entries WHERE idx = 0")
    run = _dag("aisec_audit_verify").test()
    assert _states(run) == {"verify_audit_log": "failed"}


@pytest.mark.integration
def test_listener_and_openlineage_record_a_masking_step(
    airflow_db: Path, tmp_path: Path, openlineage_events: Path
) -> None:
    import pyarrow.parquet as pq

    source = tmp_path / "raw.parquet"
    pq.write_table(pa.table({"id": [1, 2], "email": ["a@example.com", None]}), source)
    dag = _dag("aisec_test_lineage", TEST_DAGS)
    run = dag.test(run_conf={"source": str(source), "target": str(tmp_path / "masked.parquet")})
    assert _states(run) == {"mask": "success", "publish": "success"}

    with AuditLog.open() as log:
        entries = [e.data for e in log.entries() if (e.data.get("actor") or {}).get("run_id") == run.run_id]
    by_action = {e["action"]: e for e in entries}
    assert by_action["pii.mask"]["columns"] == ["email"]
    assert by_action["pii.mask"]["actor"]["task_id"] == "mask"
    assert by_action["task.outcome"]["outputs"][0]["dataset"] == "contacts_report"
    assert by_action["task.outcome"]["outcome"] == "success"
    assert "a@example.com" not in json.dumps(entries)

    events = [
        json.loads(line) for f in sorted(openlineage_events.glob("*")) for line in f.read_text().splitlines()
    ]
    complete = [
        e
        for e in events
        if e.get("eventType") == "COMPLETE" and e.get("job", {}).get("name") == "aisec_test_lineage.mask"
    ]
    assert complete, [e.get("job") for e in events]
    output = complete[-1]["outputs"][0]
    assert output["name"] == str(tmp_path / "masked.parquet")
    email = output["facets"]["columnLineage"]["fields"]["email"]
    assert email["transformationType"] == "MASKED"
    assert email["inputFields"][0]["transformations"][0]["masking"] is True
    assert output["facets"]["columnLineage"]["fields"]["id"]["transformationType"] == "IDENTITY"

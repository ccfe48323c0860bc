"""The erasure DAG with its approval, run by Airflow with dag.test(): the request is put to the privacy
office, and an answer from a user outside it, let through as an all-admins auth manager lets anyone, is
refused.

The answer is written the way Airflow's API writes one (the response on the task's human-in-the-loop detail,
then the parked task resumed with it), from a thread, while dag.test() waits for it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from builders import DAGS, SAMPLE, digests, lake_copy
from dag_runs import dag_from

from airflow_aisec.audit import AuditLog
from airflow_aisec.dsr.contract import APPROVAL_TASK, dag_id_for


@pytest.fixture
def lake(sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = lake_copy(sample_lake_dir, tmp_path)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={copy}")
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_APPROVAL", "True")
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("AIRFLOW__AISEC__HOLDS", str(tmp_path / "holds.json"))
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "root:admin,vic:viewer")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    return copy


def _answer_when_asked(dag_id: str, option: str, user: dict[str, str], asked: list[Any]) -> None:
    """Answer the first approval of ``dag_id`` parked for input as ``user``, as Airflow's API does; should
    that fail, fail the parked task, so dag.test() does not wait forever."""
    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    deadline = time.monotonic() + 300
    while True:
        with create_session() as session:
            ti = (
                session.query(TaskInstance)
                .filter_by(dag_id=dag_id, task_id=APPROVAL_TASK, state=TaskInstanceState.AWAITING_INPUT)
                .one_or_none()
            )
            detail = ti and session.query(HITLDetail).filter_by(ti_id=ti.id).one_or_none()
            if ti is not None and detail is not None:
                try:
                    asked.append(list(detail.assigned_users))
                    detail.responded_by = dict(user)
                    detail.responded_at = timezone.utcnow()
                    detail.chosen_options = [option]
                    detail.params_input = {}
                    handle_event_submit(
                        TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session
                    )
                except Exception:
                    ti.state = TaskInstanceState.FAILED
                    raise
                return
        if time.monotonic() > deadline:
            return
        time.sleep(0.5)


def _load_models() -> None:
    """Import and map Airflow's models before the answering thread queries them: a thread configuring the
    mappers while dag.test() imports a model of its own deadlocks on Python's import lock."""
    import importlib

    from airflow.models import import_all_models
    from sqlalchemy.orm import configure_mappers

    import_all_models()
    for module in ("airflow.models.dagbag", "airflow.providers.standard.operators.trigger_dagrun"):
        importlib.import_module(module)
    configure_mappers()


def test_an_approval_from_outside_the_privacy_office_is_refused_and_nothing_changes(
    airflow_db: Path, lake: Path, tmp_path: Path
) -> None:
    dag = dag_from(DAGS / f"{dag_id_for('erasure')}.py")
    subject = next(c for c in SAMPLE.customers if c.customer_id not in {
        r["customer_id"] for r in SAMPLE.rows("chargebacks")})  # fmt: skip
    before = digests(lake)
    _load_models()
    asked: list[Any] = []
    outsider = {"id": "vic", "name": "Vic"}
    answer = threading.Thread(target=_answer_when_asked, args=(dag.dag_id, "Approve", outsider, asked))
    answer.start()
    try:
        conf = {"identity_type": "customer_id", "identity_value": subject.customer_id,
                "request_id": "dag-refused-1", "reason": "ticket 4712"}  # fmt: skip
        run = dag.test(run_conf=conf)
    finally:
        answer.join(timeout=130)

    assert asked == [[{"id": "dpo", "name": "Data Protection Officer"}, {"id": "root", "name": "root"}]]
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert states == {("register", -1): "success", (APPROVAL_TASK, -1): "failed",
                      ("process_dataset", -1): "upstream_failed", ("complete", -1): "failed"}  # fmt: skip
    certificate = json.loads((tmp_path / "exports" / "certificates" / "dag-refused-1.json").read_text())
    assert certificate["certificate"]["status"] == "failed"  # every dataset "not processed"
    assert digests(lake) == before  # nothing erased
    with AuditLog.open() as log:
        entries = [e.data for e in log.entries() if (e.data.get("details") or {}).get("request_id")
                   == "dag-refused-1"]  # fmt: skip
    (approval,) = [e for e in entries if e["details"].get("stage") == "approval"]
    assert approval["details"]["decision"] == "refused" and approval["outcome"] == "failure"
    assert approval["details"]["decided_by"] == {"id": "vic", "name": "Vic", "in_office": False}
    assert not any(e["details"].get("stage") == "intent" for e in entries)

"""The example DAG `aisec_model_release` run end to end with dag.test() on a sample lake whose tickets were
masked by `aisec_privacy_pipeline`: train, sign, drift check, verify, publish, model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import DAGS, lake_copy

from airflow_aisec.audit import AuditLog
from airflow_aisec.audit.lineage import LineageGraph


def dag_from(path: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path)).dags[path.stem]


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.integration
def test_the_release_dag_trains_signs_checks_verifies_publishes_and_writes_the_card(
    airflow_db: Path, sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("AISEC_KEYRING", str(tmp_path / "keyring.json"))
    lake = lake_copy(sample_lake_dir, tmp_path)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={lake}")
    masking = dag_from(DAGS / "aisec_privacy_pipeline.py").test()
    assert set(states(masking).values()) == {"success"}

    run = dag_from(DAGS / "aisec_model_release.py").test()
    assert set(states(run).values()) == {"success"}, states(run)

    serving = lake / "serving" / "ticket-triage"
    served = (serving / "current").resolve()
    assert served.parent == serving / "releases" and (served / "model" / "model.joblib").is_file()
    assert (served / "model.sig").is_file()
    card = (serving / "ticket-triage.card.md").read_text()
    assert "| support_tickets_masked | trained on |" in card
    assert "support_tickets_landing" in card and "pii.mask #" in card  # masked from the landing copy
    assert "body: free_text" in card and "P2Y from opened_at" in card and "support" in card
    assert "| result | verified |" in card and "local:model-signing@v1" in card
    assert "holdout_accuracy" in card and "route incoming support tickets" in card
    assert "## Drift" in card and "columns checked | 3" in card
    html = (serving / "ticket-triage.card.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html

    with AuditLog.open(create=False) as log:
        entries = [e for e in log.entries() if (e.data.get("actor") or {}).get("run_id") == run.run_id]
        graph = LineageGraph.from_entries(log.entries())
    actions = [e.action for e in entries]
    wanted = ["model.sign", "drift.check", "model.verify", "model.card"]
    assert [a for a in actions if a in wanted] == [
        "model.sign",
        "drift.check",
        "model.verify",
        "model.verify",
        "model.card",
    ]
    upstream = [(s, t) for s, t, _ in graph.upstream("model://ticket-triage")]
    assert ("support_tickets_masked", "model://ticket-triage") in upstream
    assert ("support_tickets_landing", "support_tickets_masked") in upstream
    everything = json.dumps([e.data for e in entries]) + card + html
    assert "@example." not in everything  # the sample lake's customers' emails

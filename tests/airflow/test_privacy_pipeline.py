"""The example DAG `aisec_privacy_pipeline` run with dag.test(): land, scan, mask, publish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import DAGS, lake_copy
from dag_runs import dag_from
from dag_runs import states as _states

from airflow_aisec.audit import AuditLog
from airflow_aisec.audit.lineage import LineageGraph, to_openlineage


def _run(lake: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={lake}")
    run = dag_from(DAGS / "aisec_privacy_pipeline.py").test()
    return run, _states(run)


@pytest.mark.integration
def test_pipeline_masks_tickets_and_records_lineage(
    airflow_db: Path,
    sample_lake_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    openlineage_events: Path,
) -> None:
    # The published copy is not in the catalog: in the shared log, its edge would fail other tests' checks.
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    lake = lake_copy(sample_lake_dir, tmp_path)
    run, states = _run(lake, monkeypatch)
    assert states == {
        "land_raw_tickets": "success",
        "scan_for_undeclared_pii": "success",
        "mask_pii_files": "success",
        "mask_pii_group": "success",
        "mask_pii": "success",
        "encrypt_for_publishing_files": "success",
        "encrypt_for_publishing_group": "success",
        "encrypt_for_publishing": "success",
    }
    masked = "".join(p.read_text() for p in sorted((lake / "masked" / "support_tickets").glob("*.jsonl")))
    assert masked and "@example." not in masked and "<EMAIL_ADDRESS>" in masked
    published = sorted((lake / "published" / "support_tickets").glob("*.jsonl.aisec"))
    assert published and all(p.read_bytes().startswith(b"AISECENV") for p in published)
    assert b"<EMAIL_ADDRESS>" not in b"".join(p.read_bytes() for p in published)
    with AuditLog.open() as log:
        entries = [e for e in log.entries() if (e.data.get("actor") or {}).get("run_id") == run.run_id]
        graph = LineageGraph.from_entries(log.entries())
    actions = [e.action for e in entries]
    assert actions.count("pii.scan") == 1 and actions.count("pii.mask") == 1
    assert actions.count("dataset.encrypt") == 1
    assert actions.count("dataset.encrypt") == 1
    assert "task.outcome" in actions  # the landing task, recorded by the listener through its Asset outlet
    node = graph.resolve(str(lake / "published" / "support_tickets"))
    assert node is not None
    path = [(s, t) for s, t, _ in graph.upstream(node)]
    assert path == [
        ("support_tickets_masked", node),
        ("support_tickets_landing", "support_tickets_masked"),
        ("support_tickets", "support_tickets_landing"),
    ]  # landing -> masked -> published, every step an edge
    assert any(label.startswith("task.outcome") for label in graph.operations["support_tickets_landing"])
    assert "@example." not in json.dumps([e.data for e in entries])
    _emitted_names_agree_with_the_export(entries, run.dag_id, openlineage_events)


def _emitted_names_agree_with_the_export(entries: list[Any], dag_id: str, events_dir: Path) -> None:
    """What the operators emitted through the OpenLineage provider names each dataset as the export does."""
    events = [json.loads(line) for f in sorted(events_dir.glob("*")) for line in f.read_text().splitlines()]
    checked = 0
    for entry in entries:
        actor = entry.data.get("actor") or {}
        if entry.action not in ("pii.scan", "pii.mask", "dataset.encrypt"):
            continue
        job = f"{dag_id}.{actor['task_id']}"
        emitted = [e for e in events if e.get("eventType") == "COMPLETE" and e["job"]["name"] == job]
        assert emitted, job
        exported = to_openlineage(entry)
        for side in ("inputs", "outputs"):
            names = {(d["namespace"], d["name"]) for d in emitted[-1][side]}
            assert names == {(d["namespace"], d["name"]) for d in exported[side]}, (job, side)
        checked += 1
    assert checked == 3


@pytest.mark.integration
def test_pipeline_stops_on_undeclared_pii(
    airflow_db: Path, sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = lake_copy(sample_lake_dir, tmp_path)
    for path in (lake / "support_tickets").glob("*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for i, row in enumerate(rows):
            row["reply_to"] = f"someone{i}@example.net"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    _, states = _run(lake, monkeypatch)
    assert states["scan_for_undeclared_pii"] == "failed"
    assert states["mask_pii"] != "success"
    assert not (lake / "masked").exists()

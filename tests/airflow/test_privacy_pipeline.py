"""The example DAG `aisec_privacy_pipeline` run with dag.test(): land, scan, mask, publish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import DAGS, lake_copy
from dag_runs import dag_from
from dag_runs import states as _states

from airflow_aisec.audit import AuditLog
from airflow_aisec.audit.lineage import LineageGraph


def _run(lake: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={lake}")
    run = dag_from(DAGS / "aisec_privacy_pipeline.py").test()
    return run, _states(run)


@pytest.mark.integration
def test_pipeline_masks_tickets_and_records_lineage(
    airflow_db: Path, sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = lake_copy(sample_lake_dir, tmp_path)
    run, states = _run(lake, monkeypatch)
    assert states == {
        "land_raw_tickets": "success",
        "scan_for_undeclared_pii": "success",
        "mask_pii": "success",
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
    upstream = graph.upstream("support_tickets_masked")
    assert any(source == "support_tickets" for source, _, _ in upstream)
    assert "@example." not in json.dumps([e.data for e in entries])


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

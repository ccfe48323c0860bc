"""The view models of the integrity, lineage, requests and retention pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from review_support import run_actor

from airflow_aisec.audit import AuditLog
from airflow_aisec.retention.holds import HoldList
from airflow_aisec.review.integrity import integrity_view, record_verification
from airflow_aisec.review.lineage import LakeLineage
from airflow_aisec.review.requests import request_rows
from airflow_aisec.review.retention import holds, retention_runs


def test_verification_is_recorded_and_read_back(log: AuditLog, tmp_path: Path) -> None:
    log.append("catalog.validate")
    assert integrity_view(log, None).last is None
    log.checkpoint()
    report = log.verify()
    index = record_verification(log, report, [])
    view = integrity_view(log, str(tmp_path / "trusted.txt"))
    assert view.last is not None and view.last.index == index and view.last.outcome == "success"
    assert view.last.size == 1 and view.last.root == report.root.hex() and view.last.trusted_checkpoints == 0
    assert view.trusted is not None and not view.trusted.present
    assert view.checkpoint_size == view.size == 2  # the record is signed too


def test_a_trusted_checkpoint_is_opened_with_the_logs_key(log: AuditLog, tmp_path: Path) -> None:
    log.append("catalog.validate")
    log.checkpoint()
    latest = log.latest_checkpoint()
    assert latest is not None
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(latest[1])
    view = integrity_view(log, str(trusted))
    assert view.trusted is not None and view.trusted.size == 1 and view.trusted.problem is None
    trusted.write_text(latest[1].replace("\n\n", "\n\nx"))
    assert integrity_view(log, str(trusted)).trusted.problem is not None  # type: ignore[union-attr]


def test_lineage_marks_masked_and_encrypted_flows_and_links_runs(log: AuditLog) -> None:
    log.append(
        "pii.mask", inputs=[{"dataset": "raw"}], outputs=[{"dataset": "masked"}], actor=run_actor("p", "r1")
    )
    log.append("dataset.encrypt", inputs=[{"dataset": "masked"}], outputs=[{"dataset": "sealed"}])
    log.append("dataset.write", inputs=[{"dataset": "sealed"}], outputs=[{"dataset": "report"}])
    lake = LakeLineage.from_entries(log.entries())
    whole = lake.view()
    kinds = {(e.source, e.target): e.kind for e in whole.edges}
    assert kinds == {
        ("raw", "masked"): "masked",
        ("masked", "sealed"): "encrypted",
        ("sealed", "report"): "plain",
    }
    assert whole.masked == {"masked"} and "sealed" in whole.encrypted
    runs = {e.source: e.runs for e in whole.edges}
    assert runs["masked"] == [] and runs["raw"][0].run_id == "r1"
    near = lake.view("raw", depth=1)
    assert near.datasets == ["masked", "raw"] and len(near.edges) == 1


def test_requests_list_overdue_first_then_open_then_closed(log: AuditLog) -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    for rid, deadline in (
        ("late", "2026-05-01"),
        ("soon", "2026-06-10"),
        ("later", "2026-07-01"),
        ("done", "2026-06-05"),
    ):
        log.append("dsr.erasure", subject="S-" + rid, details={
            "request_id": rid, "stage": "request", "type": "erasure",
            "received_at": "2026-04-01T00:00:00+00:00", "deadline": f"{deadline}T00:00:00+00:00",
        })  # fmt: skip
    log.append("dsr.erasure", details={"request_id": "done", "stage": "complete", "status": "completed"})
    rows = request_rows(log, now)
    assert [r.request_id for r in rows] == ["late", "soon", "later", "done"]
    assert rows[0].status == "overdue" and rows[1].days_left == 9 and rows[-1].status == "completed"
    assert all(r.subject and r.subject.startswith("hmac-sha256:") for r in rows)


def test_retention_runs_count_what_each_run_purged_and_holds_list_pseudonyms(
    log: AuditLog, tmp_path: Path
) -> None:
    actor = run_actor("aisec_retention_enforcement", "run-1")
    log.append(
        "retention.delete",
        dataset="orders",
        outcome="intent",
        details={"file_action": "rewrite"},
        actor=actor,
    )
    removed = {"action": "rewrite", "rows_removed": 4, "rows_held": 1}
    log.append("retention.delete", dataset="orders", details=removed, actor=actor)
    log.append("retention.delete", dataset="chargebacks", outcome="skipped",
               details={"legal_hold": "litigation 2026-17"}, actor=actor)  # fmt: skip
    [run] = retention_runs(log)
    assert run.run_id == "run-1" and run.rows_removed == 4
    assert run.datasets["orders"].files_rewritten == 1 and run.datasets["orders"].rows_held == 1
    assert run.datasets["chargebacks"].skipped == "legal hold: litigation 2026-17"
    held = HoldList(tmp_path / "holds.json")
    pseudonym = log.pseudonym("C0042")
    held.add(pseudonym, "dispute", dt.date(2026, 1, 31))
    [row] = holds(None, held, dt.date(2026, 2, 1))
    assert (row.scope, row.target, row.active) == ("subject", pseudonym, False)

"""The lineage and requests pages read a log through its search terms and show what reading every entry
shows; they read only the entries they need."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from review_support import run_actor

from airflow_aisec.audit import AuditLog
from airflow_aisec.dsr import tracking
from airflow_aisec.review.lineage import LakeLineage
from airflow_aisec.review.requests import request_rows


def _request(log: AuditLog, rid: str, deadline: str) -> None:
    log.append("dsr.access", subject="S-" + rid, details={
        "request_id": rid, "stage": "request", "type": "access",
        "received_at": "2026-04-01T00:00:00+00:00", "deadline": f"{deadline}T00:00:00+00:00",
    })  # fmt: skip


def _mixed(log: AuditLog) -> None:
    for i in range(40):
        log.append(
            "pii.mask",
            dataset="raw",
            inputs=[{"dataset": "raw", "uri": f"file:///lake/raw/{i}.parquet"}],
            outputs=[{"dataset": "masked"}],
            actor=run_actor("p", f"r{i % 9}"),
        )
        if i % 10 == 0:
            _request(log, f"q{i}", "2026-06-10")
    log.append("dataset.encrypt", inputs=[{"dataset": "masked"}], outputs=[{"dataset": "sealed"}])
    log.append("dsr.access", details={"request_id": "q10", "stage": "complete", "status": "completed"})
    log.append("dsr.index", details={"datasets": 2})
    log.append("retention.delete", dataset="raw", rows=3)


def test_the_lineage_page_from_the_index_shows_what_reading_every_entry_shows(log: AuditLog) -> None:
    _mixed(log)
    indexed, full = LakeLineage.from_log(log), LakeLineage.from_entries(log.entries())
    assert indexed == full
    for focus in (None, "masked"):
        a, b = indexed.view(focus), full.view(focus)
        assert (a.datasets, a.edges, a.masked, a.encrypted, a.operations) == (
            b.datasets, b.edges, b.masked, b.encrypted, b.operations,
        )  # fmt: skip
    edge = next(e for e in indexed.view().edges if e.source == "raw")
    assert edge.count == 40 and edge.entries == sorted(edge.entries) and len(edge.entries) == 5
    assert [r.run_id for r in edge.runs] == ["r3", "r2", "r1", "r0", "r8"]


def test_the_requests_page_from_the_index_lists_what_reading_every_entry_lists(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mixed(log)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    full = tracking.requests(log, now)
    read: list[Any] = []
    original = type(log.store).entries
    monkeypatch.setattr(type(log.store), "entries", lambda self, *a: read.append(a) or original(self, *a))
    rows = request_rows(log, now)
    assert read == []  # no pass over the whole log
    assert [(r.request_id, r.status) for r in rows] == [("q0", "open"), ("q20", "open"), ("q30", "open"), (
        "q10", "completed")]  # fmt: skip
    assert {r.request_id for r in rows} == {f["request_id"] for f in full}
    assert {r.request_id: r.entry for r in rows} == {f["request_id"]: f["entry"] for f in full}

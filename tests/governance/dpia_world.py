"""A catalog and an audit log made with the real APIs for the DPIA and records-of-processing tests: what each
test expects the assessment to find is written here once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from builders import catalog_for, open_log

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.governance import decide_purpose, record_purpose
from airflow_aisec.review.integrity import record_verification

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
SUBJECT = "alice.martin@example.com"
"""A raw subject identifier the log is given: no output may contain it."""
ROWS = 2_500_000


def edit(data: Any) -> None:
    """The example catalog with a controller, subject categories, a health column and declared recipients."""
    data["controller"] = {"name": "Example Shop SAS", "contact": "privacy@example.com", "dpo": "Dana Lee"}
    data["subjects"]["categories"] = ["customers", "support requesters"]
    data["datasets"]["customers"]["columns"]["allergies"] = {
        "pii": "MEDICAL_NOTE",
        "special_category": "health",
    }
    data["datasets"]["orders"]["recipients"] = ["<script>alert(1)</script> Carrier Ltd"]
    data["datasets"]["chargebacks"]["uri"] = "s3://fraud-lake/chargebacks"


def world_catalog(tmp_path: Path, change: Any = None) -> Catalog:
    """The edited example catalog over a lake in ``tmp_path`` (the assessment reads no data file)."""

    def both(data: Any) -> None:
        edit(data)
        if change is not None:
            change(data)

    return catalog_for(tmp_path / "lake", tmp_path, both)


def world_log(tmp_path: Path, catalog: Catalog) -> AuditLog:
    """An audit log recording an inventory, purpose checks, a masking, an overdue erasure request, a recent
    retention run on customers only, and a successful verification."""
    log = open_log(tmp_path, str(tmp_path / "keyring.json"))
    log.append("dataset.inventory", dataset="customers", rows=ROWS)
    for dataset, purpose in (
        ("customers", "billing"),
        ("customers", "billing"),
        ("orders", "marketing.advertising"),
    ):
        record_purpose(log, decide_purpose(catalog, dataset, purpose, task="reports.weekly", require=False))
    log.append(
        "pii.mask",
        dataset="support_tickets",
        columns=["body"],
        inputs=[{"uri": "file:///lake/landing/t.jsonl", "dataset": "support_tickets_landing"}],
        outputs=[{"uri": "file:///lake/masked/t.jsonl", "dataset": "support_tickets_masked"}],
    )
    received = NOW - dt.timedelta(days=45)
    log.append(
        "dsr.erasure",
        subject=SUBJECT,
        details={
            "request_id": "req-1",
            "stage": "request",
            "type": "erasure",
            "received_at": received.isoformat(),
            "deadline": (received + dt.timedelta(days=30)).isoformat(),
        },
    )
    log.append(
        "retention.delete",
        dataset="customers",
        details={"action": "rewrite", "rows_removed": 12, "rule": "P3Y"},
    )
    log.checkpoint()
    record_verification(log, log.verify(), [])
    return log

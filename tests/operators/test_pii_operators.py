"""``PIIScanOperator`` and ``PIIMaskOperator`` executed directly, with the pattern engine (no NER model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from task_runs import AuditReader, TaskRun

from airflow_aisec.exceptions import CatalogError, PIIError
from airflow_aisec.operators.pii import PIIMaskOperator, PIIScanOperator


def _add_reply_to(lake: Path) -> None:
    """An e-mail address in a column of the support tickets that the catalog does not declare."""
    for path in (lake / "support_tickets").glob("*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text(
            "".join(json.dumps({**row, "reply_to": f"r{i}@example.net"}) + "\n" for i, row in enumerate(rows))
        )


def test_scan_returns_entities_per_column_and_records_them(run: TaskRun, audit: AuditReader) -> None:
    operator = PIIScanOperator(task_id="scan", dataset="customers", mode="patterns", sample=50)

    result = operator.execute(run.context("scan"))

    assert result["columns"]["email"]["entity"] == "EMAIL_ADDRESS" and result["undeclared"] == []
    (entry,) = audit.entries("pii.scan")
    assert entry.data["dataset"] == "customers" and entry.data["outcome"] == "success"
    assert entry.data["details"]["entities"]["email"] == "EMAIL_ADDRESS"
    assert "@" not in json.dumps(entry.data) and "@" not in json.dumps(result)  # names and types, no values


def test_scan_fails_on_undeclared_pii_after_recording_it(
    lake: Path, run: TaskRun, audit: AuditReader
) -> None:
    _add_reply_to(lake)
    operator = PIIScanOperator(task_id="scan", dataset="support_tickets", mode="patterns")

    with pytest.raises(PIIError, match=r"support_tickets: PII not declared .* reply_to \(EMAIL_ADDRESS\)"):
        operator.execute(run.context("scan"))

    (entry,) = audit.entries("pii.scan")
    assert entry.data["outcome"] == "failure" and entry.data["details"]["undeclared"] == ["reply_to"]
    lenient = PIIScanOperator(
        task_id="scan2", dataset="support_tickets", mode="patterns", fail_on_undeclared=False
    ).execute(run.context("scan2"))
    assert lenient["undeclared"] == ["reply_to"]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"dataset": "customers", "mode": "regex"}, PIIError, "unknown mode 'regex': use ner or patterns"),
        ({"dataset": "customer", "mode": "patterns"}, PIIError, "customer"),
        ({"dataset": "customers", "catalog": "/nonexistent/c.yaml"}, CatalogError, "cannot read catalog"),
    ],
)
def test_scan_refuses_bad_arguments(
    run: TaskRun, arguments: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        PIIScanOperator(task_id="scan", **arguments).execute(run.context("scan"))


def test_mask_applies_the_catalog_rules_and_records_counts(
    tmp_path: Path, run: TaskRun, audit: AuditReader
) -> None:
    operator = PIIMaskOperator(
        task_id="mask", dataset="support_tickets", output_uri=str(tmp_path / "masked"), mode="patterns"
    )

    result = operator.execute(run.context("mask"))

    masked = "".join(p.read_text() for p in sorted((tmp_path / "masked").glob("*.jsonl")))
    assert result["rows"] == masked.count("\n") > 0 and len(result["files"]) >= 1
    assert "@example." not in masked and "<EMAIL_ADDRESS>" in masked
    assert result["masked"]["body"]
    (entry,) = audit.entries("pii.mask")
    assert entry.data["dataset"] == "support_tickets" and entry.data["rows"] == result["rows"]
    assert len(entry.data["outputs"]) == len(result["files"])
    assert operator.lineage.outputs[0].dataset == "support_tickets_masked"


def test_mask_without_a_catalog_dataset_follows_the_column_rules(
    lake: Path, tmp_path: Path, run: TaskRun, audit: AuditReader
) -> None:
    operator = PIIMaskOperator(
        task_id="mask", input_uri=str(lake / "orders"), output_uri=str(tmp_path / "out"),
        columns={"shipping_address": "redact"},
    )  # fmt: skip

    result = operator.execute(run.context("mask"))

    assert result["rows"] > 0 and set(result["masked"]) == {"shipping_address"}
    (entry,) = audit.entries("pii.mask")
    assert entry.data.get("dataset") is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"dataset": "orders", "columns": {"x": "redact"}}, "the catalog's mask rules apply"),
        ({}, "without a catalog dataset, input_uri names the data to mask"),
        ({"input_uri": "/x", "catalog": "/c.yaml"}, "catalog= needs dataset="),
        ({"dataset": "chargebacks"}, "declares no PII column to mask"),
    ],
)
def test_mask_refuses_bad_arguments(
    tmp_path: Path, run: TaskRun, audit: AuditReader, arguments: dict[str, object], message: str
) -> None:
    operator = PIIMaskOperator(task_id="mask", output_uri=str(tmp_path / "out"), mode="patterns", **arguments)

    with pytest.raises(PIIError, match=message):
        operator.execute(run.context("mask"))
    assert not (tmp_path / "out").exists()

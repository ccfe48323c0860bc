"""The records of processing (GDPR Art. 30(1)) as CSV and JSON, and ``aisec ropa`` / ``aisec dpia`` on the
command line: the audit log only read, files written, nothing but names printed or logged."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from dpia_world import NOW, SUBJECT, world_catalog, world_log
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.cli.main import app
from airflow_aisec.governance.dpia import Assessment
from airflow_aisec.governance.dpia.ropa import COLUMNS, to_csv, to_json
from airflow_aisec.review.assessment import assess

runner = CliRunner()


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return world_catalog(tmp_path)


@pytest.fixture
def log(tmp_path: Path, catalog: Catalog) -> Iterator[AuditLog]:
    with world_log(tmp_path, catalog) as audit:
        yield audit


@pytest.fixture
def assessment(catalog: Catalog, log: AuditLog) -> Assessment:
    return assess(catalog, log, now=NOW)


def test_the_csv_has_the_article_30_columns_and_one_row_per_purpose(assessment: Assessment) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(assessment))))
    assert tuple(rows[0]) == COLUMNS
    assert [r["activity"] for r in rows] == ["billing", "fraud", "support"]
    billing = rows[0]
    assert billing["controller"] == "Example Shop SAS" and billing["dpo"] == "Dana Lee"
    assert billing["data_subjects"] == "customers; support requesters"
    assert billing["datasets"] == "customers; orders"
    assert "health (Art. 9)" in billing["personal_data"] and "contact details" in billing["personal_data"]
    assert billing["retention"] == "customers: P3Y after created_at; orders: P7Y after ordered_at"
    assert "encryption at rest of customers: email, phone, full_name" in billing["security_measures"]


def test_recipients_are_declared_ones_and_the_datasets_the_data_flows_to(assessment: Assessment) -> None:
    activities = {a["activity"]: a for a in to_json(assessment)["activities"]}
    assert activities["billing"]["recipients"] == ["<script>alert(1)</script> Carrier Ltd"]
    assert "dataset support_tickets_masked" in activities["support"]["recipients"]


def test_locations_come_from_the_uri_when_the_catalog_declares_none(assessment: Assessment) -> None:
    activities = {a["activity"]: a for a in to_json(assessment)["activities"]}
    assert activities["fraud"]["locations"] == ["S3 bucket fraud-lake (region of the AWS connection)"]
    assert activities["fraud"]["transfers"] == activities["fraud"]["locations"]
    assert activities["billing"]["locations"] == ["local file system"]


def test_the_json_lists_the_same_fields_as_lists(assessment: Assessment) -> None:
    document = to_json(assessment)
    assert document["columns"] == list(COLUMNS)
    for activity in document["activities"]:
        assert list(activity) == list(COLUMNS)
        assert isinstance(activity["datasets"], list) and isinstance(activity["controller"], str)


def test_aisec_ropa_and_dpia_write_their_files_and_leave_the_log_as_it_was(
    catalog: Catalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with world_log(tmp_path, catalog) as log:
        size = log.size()
    base = ["--catalog", catalog.source, "--log", f"sqlite:///{tmp_path / 'audit.db'}"]
    base += ["--keyring", str(tmp_path / "keyring.json"), "--verbose"]
    variables = ["--var", f"lake={tmp_path / 'lake'}"]
    with caplog.at_level(logging.DEBUG):
        ropa = runner.invoke(app, [*base, "ropa", "--out", str(tmp_path / "out"), *variables])
        dpia = runner.invoke(
            app, [*base, "dpia", "--out", str(tmp_path / "out"), "--format", "md,cnil", "--json", *variables]
        )
    assert ropa.exit_code == 0, ropa.output
    assert dpia.exit_code == 0, dpia.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["dpia-cnil.json", "dpia.md", "ropa.csv", "ropa.json"]
    printed = json.loads(dpia.stdout)
    assert {r["risk"] for r in printed["risks"]} >= {"special_categories", "overdue_requests"}
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=str(tmp_path / "keyring.json")) as again:
        assert again.size() == size
    for text in (ropa.output, dpia.output, caplog.text):
        assert SUBJECT not in text and "alice" not in text.lower()


def test_aisec_dpia_refuses_an_unknown_format_before_reading_anything(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dpia", "--out", str(tmp_path / "out"), "--format", "docx"])
    assert result.exit_code == 2 and "docx" in result.output
    assert not (tmp_path / "out").exists()

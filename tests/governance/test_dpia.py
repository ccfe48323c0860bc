"""The DPIA: the four parts of GDPR Art. 35(7), risks scored from a real catalog and audit log with the
reason for each score, necessity per purpose, and nothing but names and counts in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from dpia_world import NOW, ROWS, world_catalog, world_log

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.exceptions import ConfigError
from airflow_aisec.governance.dpia import Assessment, Risk, load_findings
from airflow_aisec.governance.dpia.document import SECTIONS
from airflow_aisec.governance.dpia.render import to_html, to_markdown
from airflow_aisec.review.assessment import assess


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return world_catalog(tmp_path)


@pytest.fixture
def log(tmp_path: Path, catalog: Catalog) -> Iterator[AuditLog]:
    with world_log(tmp_path, catalog) as audit:
        yield audit


@pytest.fixture
def findings(tmp_path: Path) -> Path:
    path = tmp_path / "findings.json"
    found = [
        {"rule": "owner-required", "severity": "error", "dataset": "orders", "path": "datasets.orders",
         "file": "catalog.yaml", "line": 40, "message": "dataset orders has no owner"},
    ]  # fmt: skip
    path.write_text(json.dumps({"passed": False, "findings": found}))
    return path


@pytest.fixture
def assessment(catalog: Catalog, log: AuditLog, findings: Path) -> Assessment:
    return assess(catalog, log, load_findings(findings), now=NOW)


def _risk(assessment: Assessment, key: str) -> Risk:
    return next(r for r in assessment.risks if r.key == key)


def test_the_dpia_has_the_four_parts_of_article_35_7_in_order(assessment: Assessment) -> None:
    for text in (to_markdown(assessment), to_html(assessment)):
        positions = [text.index(section.split(" (Art.")[0]) for section in SECTIONS]
        assert positions == sorted(positions)
    markdown = to_markdown(assessment)
    assert "Example Shop SAS" in markdown and "Annex: compliance check" in markdown


def test_special_categories_score_maximum_severity_with_the_column_named(assessment: Assessment) -> None:
    risk = _risk(assessment, "special_categories")
    assert risk.severity == 4 and "customers.allergies" in risk.severity_reasons[0]
    assert risk.likelihood == 4  # the health column is neither encrypted nor masked
    assert "0/1 (0%)" in risk.likelihood_reasons[0]


def test_volume_comes_from_the_newest_inventory_in_the_audit_log(assessment: Assessment) -> None:
    risk = _risk(assessment, "volume")
    assert risk.severity == 4
    assert f"{ROWS:,} rows (dataset.inventory #0)" in risk.severity_reasons[0]
    customers = next(d for d in assessment.datasets if d.name == "customers")
    assert customers.rows == ROWS


def test_free_text_counts_only_the_copy_a_recorded_masking_wrote(assessment: Assessment) -> None:
    risk = _risk(assessment, "free_text")
    assert "1/3 (33%)" in risk.likelihood_reasons[0] and risk.likelihood == 4
    masked = {d.name: d.masked for d in assessment.datasets}
    assert masked["support_tickets_masked"] == ("body",) and masked["support_tickets"] == ()


def test_an_overdue_request_and_unenforced_retention_raise_their_risks(assessment: Assessment) -> None:
    requests = _risk(assessment, "overdue_requests")
    assert (
        requests.likelihood == 3
        and "1 request(s) past their statutory deadline" in requests.likelihood_reasons[0]
    )
    retention = assessment.evidence.retention
    assert not retention["customers"].overdue  # a run was recorded just now
    assert retention["orders"].overdue and retention["orders"].reason == "no retention run recorded"
    assert not retention["chargebacks"].overdue  # under legal hold
    assert "orders: no retention run recorded" in _risk(assessment, "overdue_retention").likelihood_reasons


def test_compliance_errors_and_refused_reads_make_the_compliance_risk_likely(assessment: Assessment) -> None:
    risk = _risk(assessment, "compliance")
    assert risk.likelihood == 4 and risk.datasets == ("orders",)
    assert "1 read(s) refused by purpose checks" in risk.likelihood_reasons


def test_every_score_is_on_the_scale_and_the_risks_come_highest_first(assessment: Assessment) -> None:
    assert all(1 <= r.likelihood <= 4 and 1 <= r.severity <= 4 for r in assessment.risks)
    assert [r.score for r in assessment.risks] == sorted((r.score for r in assessment.risks), reverse=True)
    assert all(r.likelihood_reasons and r.severity_reasons for r in assessment.risks)


def test_necessity_shows_what_a_purpose_read_and_flags_pii_it_never_read(assessment: Assessment) -> None:
    billing = next(p for p in assessment.purposes if p.purpose == "billing")
    assert set(billing.may_read) == {"customers", "orders"}
    [used] = [u for u in billing.used if u.dataset == "customers"]
    assert used.allowed_reads == 2 and "email" in used.columns_read
    assert billing.unused_pii == ("orders.shipping_address",)
    support = next(p for p in assessment.purposes if p.purpose == "support")
    assert "support_tickets.body" in support.unused_pii


def test_measures_show_encryption_retention_requests_verification_and_purpose_checks(
    assessment: Assessment,
) -> None:
    measures = {m.key: m for m in assessment.measures}
    assert set(measures) == {
        "encryption",
        "masking",
        "retention",
        "dsr_process",
        "audit_log",
        "purpose_checks",
    }
    assert measures["audit_log"].status == "verified"
    assert measures["dsr_process"].details[1] == "0 answered, 0 open, 1 overdue"
    assert measures["purpose_checks"].details[0] == "2 read(s) allowed for a purpose and 1 refused"


def test_the_html_page_is_self_contained_and_escapes_catalog_text(assessment: Assessment) -> None:
    page = to_html(assessment)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; Carrier Ltd" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page
    assert "\\<script\\>" in to_markdown(assessment)


def test_a_database_password_never_reaches_the_report() -> None:
    from airflow_aisec.governance.dpia.assessment import _without_credentials

    assert _without_credentials("postgresql://aisec:s3cret@db:5432/audit") == "postgresql://db:5432/audit"
    assert _without_credentials("sqlite:////var/lib/audit.db") == "sqlite:////var/lib/audit.db"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "not JSON"),
        ('{"findings": []}', "'passed'"),
        ('{"passed": true, "findings": [1]}', r"findings\[0\]"),
    ],
)
def test_a_findings_file_that_is_no_compliance_result_is_refused_naming_it(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem) as raised:
        load_findings(path)
    assert str(path) in str(raised.value)

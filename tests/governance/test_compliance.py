"""The compliance gate's rules: each fires on a catalog made to break it, and none on the example catalog."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import DAGS, EXAMPLE, catalog_file

from airflow_aisec.catalog import validate_catalog
from airflow_aisec.catalog.models import Column
from airflow_aisec.governance.compliance import (
    CATALOG_INVALID,
    DAG_POLICY,
    NO_RETENTION,
    PII_UNPROTECTED,
    RULES,
    SPECIAL_UNENCRYPTED,
    UNDECLARED_PII,
    ComplianceReport,
    check_catalog,
    dag_files,
    dag_findings,
    scan_findings,
    special_category,
)

VARS = {"lake": "/data/lake"}


def _check(tmp_path: Path, edit: Callable[[Any], None]) -> ComplianceReport:
    return check_catalog(validate_catalog(catalog_file(tmp_path, edit), VARS))


def _columns(data: Any, dataset: str) -> Any:
    return data["datasets"][dataset]["columns"]


def test_the_example_catalog_passes_every_catalog_rule() -> None:
    report = check_catalog(validate_catalog(EXAMPLE, VARS))
    assert report.passed and report.findings == []
    datasets = ["chargebacks", "customers", "orders", "support_tickets", "support_tickets_landing"]
    assert report.checked[PII_UNPROTECTED][:5] == datasets
    assert report.checked[CATALOG_INVALID] == [str(EXAMPLE)]


def _unknown_erasure(d: Any) -> None:
    d["datasets"]["orders"]["erasure"] = "shred"


def _unmasked_address(d: Any) -> None:
    del _columns(d, "orders")["shipping_address"]["mask"]


def _tickets_kept_forever(d: Any) -> None:
    del d["datasets"]["support_tickets"]["retention"]


def _health_entity_masked_not_encrypted(d: Any) -> None:
    _columns(d, "customers")["diagnosis"] = {"pii": "HEALTH_CONDITION", "mask": {"strategy": "redact"}}


def _flagged_free_text(d: Any) -> None:
    _columns(d, "support_tickets")["body"]["special_category"] = "trade_union"


def _nrp_masked(d: Any) -> None:
    _columns(d, "customers")["faith"] = {"pii": "NRP", "mask": {"strategy": "redact"}}


@pytest.mark.parametrize(
    ("edit", "rule", "path"),
    [
        (_unknown_erasure, CATALOG_INVALID, "datasets.orders.erasure"),
        (_unmasked_address, PII_UNPROTECTED, "datasets.orders.columns.shipping_address"),
        (_tickets_kept_forever, NO_RETENTION, "datasets.support_tickets"),
        (_health_entity_masked_not_encrypted, SPECIAL_UNENCRYPTED, "datasets.customers.columns.diagnosis"),
        (_flagged_free_text, SPECIAL_UNENCRYPTED, "datasets.support_tickets.columns.body"),
        (_nrp_masked, SPECIAL_UNENCRYPTED, "datasets.customers.columns.faith"),
    ],
)
def test_a_catalog_breaking_a_rule_fails_that_rule_alone_at_the_field_and_line(
    tmp_path: Path, edit: Callable[[Any], None], rule: str, path: str
) -> None:
    report = _check(tmp_path, edit)
    assert not report.passed
    [finding] = report.findings
    assert (finding.rule, finding.severity, finding.path) == (rule, "error", path)
    assert finding.dataset == path.split(".")[1]
    assert finding.file == str(tmp_path / "catalog.yaml")
    lines = (tmp_path / "catalog.yaml").read_text().splitlines()
    assert finding.line is not None and path.split(".")[-1] in lines[finding.line - 1]


def test_each_message_names_what_to_change(tmp_path: Path) -> None:
    [unmasked] = _check(tmp_path, _unmasked_address).findings
    assert (
        "shipping_address (LOCATION)" in unmasked.message
        and "datasets.orders.encryption.columns" in unmasked.message
    )
    [forever] = _check(tmp_path, _tickets_kept_forever).findings
    assert "retention: {column: ..., keep_for: ...}" in forever.message
    [special] = _check(tmp_path, _health_entity_masked_not_encrypted).findings
    assert "(health)" in special.message and "encryption.columns" in special.message


def test_an_encrypted_special_category_column_passes(tmp_path: Path) -> None:
    def encrypted_diagnosis(d: Any) -> None:
        _columns(d, "customers")["diagnosis"] = {"pii": "HEALTH_CONDITION", "special_category": "health"}
        d["datasets"]["customers"]["encryption"]["columns"].append("diagnosis")

    report = _check(tmp_path, encrypted_diagnosis)
    assert report.passed and report.findings == []


def test_a_dataset_without_pii_needs_no_retention(tmp_path: Path) -> None:
    report = _check(tmp_path, lambda d: d["datasets"]["chargebacks"].pop("retention"))
    assert report.passed and report.findings == []


def test_special_category_on_a_column_without_pii_is_a_catalog_error(tmp_path: Path) -> None:
    def flag_amount(d: Any) -> None:
        _columns(d, "orders")["amount"] = {"special_category": "health"}

    [finding] = _check(tmp_path, flag_amount).findings
    assert finding.rule == CATALOG_INVALID and finding.path == "datasets.orders.columns.amount"
    assert "name the entity" in finding.message


def test_a_catalog_that_does_not_parse_fails_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("version: 1\ndatasets: [\n")
    report = check_catalog(validate_catalog(path, VARS))
    assert not report.passed
    assert {f.rule for f in report.findings} == {CATALOG_INVALID}
    assert "line" in report.findings[0].message


@dataclasses.dataclass(frozen=True)
class _Violation:
    file: str
    dag_id: str
    task_id: str | None
    rule: str
    message: str


def test_dag_violations_are_findings_at_the_line_of_their_task() -> None:
    violation = _Violation(
        "aisec_privacy_pipeline.py", "aisec_privacy_pipeline", "mask_pii", "AISEC-P001", "declare a purpose"
    )
    [finding] = dag_findings([violation], DAGS)
    assert (finding.rule, finding.severity, finding.dag_id) == (DAG_POLICY, "error", "aisec_privacy_pipeline")
    assert finding.file == str(DAGS / "aisec_privacy_pipeline.py")
    lines = (DAGS / "aisec_privacy_pipeline.py").read_text().splitlines()
    assert finding.line is not None and '"mask_pii"' in lines[finding.line - 1]
    assert finding.message == "DAG aisec_privacy_pipeline, task mask_pii: AISEC-P001: declare a purpose"
    assert finding.file in dag_files(DAGS)


def test_a_dag_file_that_does_not_import_is_a_finding_about_the_file() -> None:
    [finding] = dag_findings([_Violation("broken.py", "", None, "AISEC-P000", "fix the file")], DAGS)
    assert finding.dag_id is None and finding.line is None
    assert finding.message == "broken.py: AISEC-P000: fix the file" and finding.subject == "broken.py"


def test_undeclared_pii_is_a_finding_at_the_datasets_columns() -> None:
    report = validate_catalog(EXAMPLE, VARS)
    [finding] = scan_findings(report, "orders", {"contact": "EMAIL_ADDRESS"})
    assert (finding.rule, finding.path) == (UNDECLARED_PII, "datasets.orders.columns.contact")
    assert finding.line == report.lines[("datasets", "orders", "columns")]
    assert "add contact: {pii: EMAIL_ADDRESS}" in finding.message


def test_findings_have_the_json_shape_other_tools_read(tmp_path: Path) -> None:
    report = _check(tmp_path, _unmasked_address)
    document = report.as_dict()
    assert document["passed"] is False
    [finding] = document["findings"]  # type: ignore[misc]
    assert set(finding) == {"rule", "severity", "dataset", "path", "file", "line", "message"}


def test_rule_ids_are_stable() -> None:
    assert list(RULES) == [f"AISEC-C00{i}" for i in range(1, 7)]
    assert all(rule.help and rule.summary for rule in RULES.values())


@pytest.mark.parametrize(
    ("entity", "category"),
    [
        ("MEDICAL_CONDITION", "health"),
        ("MEDICAL_RECORD", "health"),
        ("RACIAL_ORIGIN", "ethnicity"),
        ("PHILOSOPHICAL_BELIEF", "religion"),
        ("SEX_LIFE", "sexual_orientation"),
        ("MEDICAL_LICENSE", None),
        ("PHONE_NUMBER", None),
    ],
)
def test_the_special_categories_of_article_9_are_known_by_their_entity_names(
    entity: str, category: str | None
) -> None:
    assert special_category(Column(pii=entity)) == category

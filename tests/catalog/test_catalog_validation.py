"""The catalog loader accepts the example and names file, field path and value of every problem."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from airflow_aisec.catalog import load_catalog, validate_catalog
from airflow_aisec.catalog.problems import Report
from airflow_aisec.exceptions import CatalogError

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
VARS = {"lake": "/data/lake"}


def write_variant(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(EXAMPLE.read_text())
    edit(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def messages(report: Report) -> list[str]:
    return [str(p) for p in report.errors]


def test_example_catalog_is_valid_without_warnings() -> None:
    report = validate_catalog(EXAMPLE, VARS)
    assert report.ok, messages(report)
    assert report.warnings == []
    catalog = report.catalog
    assert catalog is not None
    assert catalog.datasets["customers"].uri == "/data/lake/customers"
    assert catalog.summary() == {
        "datasets": 6,
        "pii_columns": 8,
        "reviewed_not_pii_columns": 0,
        "identities": ["customer_id", "email"],
        "retention_rules": 6,
        "legal_holds": 1,
        "encrypted_columns": 3,
    }
    hold = catalog.datasets["chargebacks"].legal_hold
    assert hold is not None and hold.until == dt.date(2027, 6, 30)
    assert hold.active(dt.date(2027, 6, 30)) and not hold.active(dt.date(2027, 7, 1))


def test_retention_cutoff_subtracts_calendar_years() -> None:
    catalog = load_catalog(EXAMPLE, VARS)
    retention = catalog.datasets["customers"].retention
    assert retention is not None
    as_of = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert retention.cutoff(as_of) == dt.datetime(2023, 3, 1, tzinfo=dt.UTC)


def test_unknown_dataset_in_reference_is_named_with_file_path_and_value(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path, lambda d: d["datasets"]["orders"]["references"].update(customer_id="customer.customer_id")
    )
    report = validate_catalog(path, VARS)
    assert not report.ok
    [problem] = report.errors
    assert str(problem).startswith(
        f"{path}: datasets.orders.references.customer_id: unknown dataset 'customer'"
    )
    assert problem.line is not None and problem.line > 1


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("version: 1\nsubjects:\n  identities: [a, b\nkeys: {}\n")
    report = validate_catalog(path, VARS)
    [problem] = report.errors
    assert "YAML syntax error" in str(problem)
    assert "line 4" in str(problem) or "line 3" in str(problem)
    assert report.catalog is None


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["datasets"]["orders"]["references"].update(customer_id="customers.cust_id"),
            "datasets.orders.references.customer_id: unknown column 'cust_id' in dataset 'customers'",
        ),
        (
            lambda d: d["datasets"]["orders"]["references"].update(buyer="customers.customer_id"),
            "datasets.orders.references.buyer: column 'buyer' is not among the columns of dataset 'orders'",
        ),
        (
            lambda d: d["datasets"]["customers"]["identity"].update(email="mail"),
            "datasets.customers.identity.email: column 'mail' is not among the columns of dataset",
        ),
        (
            lambda d: d["datasets"]["customers"]["identity"].update(passport="email"),
            "datasets.customers.identity.passport: unknown identity type 'passport'",
        ),
        (
            lambda d: d["datasets"]["orders"]["retention"].update(column="created"),
            "datasets.orders.retention.column: column 'created' is not among the columns of dataset 'orders'",
        ),
        (
            lambda d: d["datasets"]["orders"]["retention"].update(keep_for="7 years"),
            "datasets.orders.retention.keep_for: invalid ISO-8601 duration '7 years'",
        ),
        (
            lambda d: d["datasets"]["orders"]["retention"].update(keep_for="P0D"),
            "datasets.orders.retention.keep_for: duration 'P0D' must be positive",
        ),
        (
            lambda d: d["datasets"]["customers"]["encryption"].update(columns=["email", "ssn"]),
            "datasets.customers.encryption.columns.1: column 'ssn' is not among the columns of dataset",
        ),
        (
            lambda d: d["datasets"]["customers"]["encryption"].update(key="no-such-key"),
            "datasets.customers.encryption.key: key 'no-such-key' is not declared under keys",
        ),
        (
            lambda d: d["datasets"]["chargebacks"]["legal_hold"].update(until="2027-02-30"),
            "datasets.chargebacks.legal_hold.until: invalid date '2027-02-30'",
        ),
        (
            lambda d: d["datasets"]["chargebacks"]["legal_hold"].update(until="next summer"),
            "datasets.chargebacks.legal_hold.until: invalid date 'next summer'",
        ),
        (
            lambda d: d["datasets"]["chargebacks"].update(format="xml"),
            "datasets.chargebacks.format: unknown value 'xml' (expected 'parquet', 'csv' or 'jsonl')",
        ),
        (
            lambda d: d["datasets"]["orders"].update(erasure="shred"),
            "datasets.orders.erasure: unknown value 'shred'",
        ),
        (
            lambda d: d["datasets"]["customers"]["columns"]["birth_date"]["mask"].update(strategy="blur"),
            "datasets.customers.columns.birth_date.mask.strategy: unknown value 'blur'",
        ),
        (
            lambda d: d["datasets"]["chargebacks"].update(legal_hld={"reason": "x", "until": "2027-01-01"}),
            "datasets.chargebacks.legal_hld: unknown field",
        ),
        (
            lambda d: d["subjects"].update(pseudonym_key="missing"),
            "subjects.pseudonym_key: key 'missing' is not declared under keys",
        ),
        (
            lambda d: d["keys"].update({"kms": {"provider": "aws-kms"}}),
            "keys.kms.key_id: an aws-kms key needs key_id",
        ),
        (
            lambda d: d["datasets"]["orders"].update(uri="gs://bucket/orders"),
            "datasets.orders.uri: unsupported location 'gs://bucket/orders'",
        ),
        (
            lambda d: d["datasets"]["orders"].pop("format"),
            "datasets.orders.format: required field missing",
        ),
        (
            lambda d: d.update(version=2),
            "version: unknown value 2 (expected 1)",
        ),
    ],
)
def test_each_broken_variant_is_reported(tmp_path: Path, edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = write_variant(tmp_path, edit)
    report = validate_catalog(path, VARS)
    assert not report.ok
    assert any(m.startswith(f"{path}: {expected}") for m in messages(report)), messages(report)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def break_many(d: dict) -> None:  # type: ignore[type-arg]
        d["datasets"]["orders"]["references"]["customer_id"] = "customer.customer_id"
        d["datasets"]["orders"]["retention"]["keep_for"] = "forever"
        d["datasets"]["chargebacks"]["format"] = "xls"
        d["datasets"]["customers"]["encryption"]["key"] = "nope"
        d["datasets"]["chargebacks"]["legal_hold"]["until"] = "2027-13-01"

    report = validate_catalog(write_variant(tmp_path, break_many), VARS)
    fields = {".".join(p.path) for p in report.errors}
    assert fields >= {
        "datasets.orders.references.customer_id",
        "datasets.orders.retention.keep_for",
        "datasets.chargebacks.format",
        "datasets.customers.encryption.key",
        "datasets.chargebacks.legal_hold.until",
    }


def test_pii_dataset_without_retention_is_a_warning(tmp_path: Path) -> None:
    report = validate_catalog(
        write_variant(tmp_path, lambda d: d["datasets"]["orders"].pop("retention")), VARS
    )
    assert report.ok
    [warning] = report.warnings
    assert "datasets.orders: dataset holds PII but has no retention rule" in str(warning)


def test_pii_dataset_unreachable_from_identities_is_a_warning(tmp_path: Path) -> None:
    report = validate_catalog(
        write_variant(tmp_path, lambda d: d["datasets"]["support_tickets"].pop("references")), VARS
    )
    assert report.ok
    [warning] = report.warnings
    assert "datasets.support_tickets: dataset holds PII but is not reachable from any identity" in str(
        warning
    )


def test_undefined_variable_names_the_field_and_the_flag(tmp_path: Path) -> None:
    report = validate_catalog(EXAMPLE, {})
    assert not report.ok
    assert any(
        "datasets.customers.uri: undefined variable {lake}" in m and "--var lake=" in m
        for m in messages(report)
    )


def test_reference_cycle_is_an_error(tmp_path: Path) -> None:
    def cycle(d: dict) -> None:  # type: ignore[type-arg]
        d["datasets"]["customers"]["columns"]["last_order"] = {}
        d["datasets"]["customers"]["references"] = {"last_order": "orders.order_id"}

    report = validate_catalog(write_variant(tmp_path, cycle), VARS)
    assert any("reference cycle" in m for m in messages(report)), messages(report)


def test_load_catalog_raises_with_every_error(tmp_path: Path) -> None:
    path = write_variant(tmp_path, lambda d: d["datasets"]["orders"].update(format="xml", erasure="x"))
    with pytest.raises(CatalogError) as raised:
        load_catalog(path, VARS)
    assert len(raised.value.problems) == 2
    assert isinstance(raised.value, ValueError)


def test_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    report = validate_catalog(tmp_path / "absent.yaml", VARS)
    assert not report.ok
    assert "cannot read catalog" in messages(report)[0]


def test_pii_none_marks_a_reviewed_column_that_no_reader_takes_for_an_entity(tmp_path: Path) -> None:
    def review(d: dict) -> None:  # type: ignore[type-arg]
        d["datasets"]["orders"]["columns"]["order_id"] = {"pii": "none"}
        d["datasets"]["chargebacks"]["columns"]["reason"] = {"pii": "NONE"}

    report = validate_catalog(write_variant(tmp_path, review), VARS)
    assert report.ok and report.catalog is not None, messages(report)
    orders = report.catalog.datasets["orders"]
    assert orders.columns["order_id"].pii is None and orders.columns["order_id"].reviewed
    assert orders.reviewed_columns == ["order_id"] and "order_id" not in orders.pii_columns
    assert not orders.columns["amount"].reviewed
    summary = report.catalog.summary()
    assert summary["pii_columns"] == 8 and summary["reviewed_not_pii_columns"] == 2


def test_pii_none_with_a_mask_is_an_error(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        lambda d: d["datasets"]["orders"]["columns"].update(
            order_id={"pii": "none", "mask": {"strategy": "drop"}}
        ),
    )
    report = validate_catalog(path, VARS)
    assert not report.ok
    [error] = messages(report)
    assert error.startswith(f"{path}: datasets.orders.columns.order_id: pii: none says the column holds no")


def test_a_dataset_whose_columns_are_reviewed_as_not_pii_needs_no_retention_rule(tmp_path: Path) -> None:
    def review(d: dict) -> None:  # type: ignore[type-arg]
        d["datasets"]["orders"]["columns"]["shipping_address"] = {"pii": "none"}
        d["datasets"]["orders"].pop("retention")

    report = validate_catalog(write_variant(tmp_path, review), VARS)
    assert report.ok and report.warnings == [], [str(w) for w in report.warnings]
    assert report.catalog is not None and report.catalog.datasets["orders"].pii_columns == {}

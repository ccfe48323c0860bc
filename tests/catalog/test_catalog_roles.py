"""The catalog names who answers for each dataset (owner, steward) and the privacy office that decides
data-subject requests; what is missing or malformed is reported with file, field path and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_aisec.catalog import validate_catalog
from airflow_aisec.catalog.problems import Report
from airflow_aisec.dsr.approvers import Approver, Approvers

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
VARS = {"lake": "/data/lake"}


def _report(tmp_path: Path, edit: Any) -> Report:
    data = yaml.safe_load(EXAMPLE.read_text())
    edit(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return validate_catalog(path, VARS)


def _office(office: Any) -> Any:
    return lambda d: d.update(privacy_office=office)


def test_the_example_names_owners_a_steward_and_the_privacy_office() -> None:
    report = validate_catalog(EXAMPLE, VARS)
    assert report.ok and report.catalog is not None
    catalog = report.catalog
    customers = catalog.datasets["customers"]
    assert customers.owner is not None and customers.owner.name == "crm-team"
    assert customers.owner.email == "crm-team@example.com"
    assert customers.steward is not None and customers.steward.name == "Dana Lee"
    landing = catalog.datasets["support_tickets_landing"].owner
    assert landing is not None and (landing.name, landing.email) == ("data-platform", None)  # a plain name
    office = catalog.privacy_office
    assert office is not None and office.roles == ["ADMIN"]
    assert [(u.id, u.display_name) for u in office.users] == [("dpo", "Data Protection Officer")]


def test_a_pii_dataset_without_an_owner_is_a_warning_with_its_line(tmp_path: Path) -> None:
    report = _report(tmp_path, lambda d: d["datasets"]["orders"].pop("owner"))
    assert report.ok
    [warning] = report.warnings
    assert str(warning).startswith(f"{tmp_path / 'catalog.yaml'}: datasets.orders.owner: dataset holds PII")
    assert "names no owner" in warning.message and warning.line is not None


def test_a_dataset_without_pii_needs_no_owner(tmp_path: Path) -> None:
    report = _report(tmp_path, lambda d: d["datasets"]["chargebacks"].pop("owner"))
    assert report.ok and report.warnings == []


def test_a_catalog_without_a_privacy_office_stays_valid_and_is_warned(tmp_path: Path) -> None:
    report = _report(tmp_path, lambda d: d.pop("privacy_office"))
    assert report.ok and report.catalog is not None and report.catalog.privacy_office is None
    [warning] = report.warnings
    assert ".".join(warning.path) == "privacy_office"
    assert "any Airflow user allowed to answer the DAGs' approvals may approve" in warning.message


@pytest.mark.parametrize(
    ("office", "field", "message"),
    [
        ({"name": "Privacy"}, "privacy_office", "a privacy office needs users or roles"),
        ({"users": ["dpo", {"id": "dpo"}]}, "privacy_office", "'dpo' listed more than once"),
        ({"users": [{"id": ""}]}, "privacy_office.users.0.id", "at least 1 character"),
        ({"roles": [" "]}, "privacy_office.roles", "a role must be a non-empty name"),
        ({"users": ["dpo"], "email": "privacy office"}, "privacy_office.email", "email must be an address"),
        ({"users": ["dpo"], "team": "x"}, "privacy_office.team", "unknown field"),
    ],
)
def test_a_malformed_privacy_office_is_an_error_naming_the_field(
    tmp_path: Path, office: Any, field: str, message: str
) -> None:
    report = _report(tmp_path, _office(office))
    assert not report.ok
    [error] = report.errors
    assert ".".join(error.path) == field and message in error.message, str(error)
    assert error.line is not None


def test_a_malformed_owner_is_an_error_and_the_rest_is_still_checked(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["datasets"]["orders"]["owner"] = {"email": "billing@example.com"}
        d["datasets"]["customers"]["steward"] = {"name": "Dana", "email": "dana at example"}

    report = _report(tmp_path, edit)
    problems = {".".join(e.path): e.message for e in report.errors}
    assert problems["datasets.orders.owner.name"] == "required field missing"
    assert "email must be an address" in problems["datasets.customers.steward.email"]
    assert not any("names no owner" in w.message for w in report.warnings)  # reported once, as an error


def test_the_office_comes_to_its_users_and_the_users_its_roles_resolve_to() -> None:
    report = validate_catalog(EXAMPLE, VARS)
    assert report.catalog is not None
    root, ops = Approver("root", "root"), Approver("ops", "Ops")

    approvers = Approvers.of(report.catalog.privacy_office, {"admin": [root], "OP": [ops, root]})

    assert approvers.ids == ["dpo", "root"] and approvers.unresolved_roles == ()
    assert approvers.assigned_users() == [
        {"id": "dpo", "name": "Data Protection Officer"}, {"id": "root", "name": "root"},
    ]  # fmt: skip
    assert Approvers.of(report.catalog.privacy_office, {}).unresolved_roles == ("ADMIN",)


def test_only_the_id_airflow_reports_puts_a_decider_in_the_office() -> None:
    report = validate_catalog(EXAMPLE, VARS)
    assert report.catalog is not None
    approvers = Approvers.of(report.catalog.privacy_office, {})

    assert approvers.decider({"id": "dpo", "name": "Someone"}).in_office is True
    assert approvers.decider({"id": "other", "name": "dpo"}).in_office is False
    assert approvers.decider("dpo").in_office is False  # a bare name says nothing of who it is
    assert approvers.decider(None).as_dict() == {"id": None, "name": None, "in_office": False}
    assert Approvers.of(None).decider({"id": 7, "name": "Ada"}).as_dict() == {
        "id": "7", "name": "Ada", "in_office": None,
    }  # fmt: skip

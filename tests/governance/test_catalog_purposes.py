"""Catalog validation of purposes: unknown ones are reported with file, path and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from builders import EXAMPLE

from airflow_aisec.catalog import validate_catalog

VARS = {"lake": "/data/lake"}


def _report(tmp_path: Path, edit: Any) -> Any:
    data = yaml.safe_load(EXAMPLE.read_text())
    edit(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return validate_catalog(path, VARS)


def test_the_example_declares_every_purpose_it_uses() -> None:
    report = validate_catalog(EXAMPLE, VARS)
    assert report.ok and report.warnings == []
    assert report.catalog is not None
    assert report.catalog.purposes["billing"].parent == "essential.service.payment_processing"


def test_a_catalog_without_declared_purposes_stays_valid_and_is_warned(tmp_path: Path) -> None:
    report = _report(tmp_path, lambda d: d.pop("purposes"))
    assert report.ok
    warned = {".".join(w.path): w.message for w in report.warnings}
    assert "unknown purpose 'billing'" in warned["datasets.customers.purposes.0"]
    assert "declare it there" in warned["datasets.customers.purposes.0"]
    assert len(warned) == 7  # every use of billing, support and fraud in the six datasets


def test_an_unknown_purpose_is_an_error_once_the_catalog_declares_purposes(tmp_path: Path) -> None:
    report = _report(tmp_path, lambda d: d["datasets"]["orders"].update(purposes=["biling"]))
    assert not report.ok
    [error] = report.errors
    assert str(error).startswith(f"{tmp_path / 'catalog.yaml'}: datasets.orders.purposes.0: unknown purpose")
    assert "'biling'" in str(error) and "did you mean 'billing'?" in str(error)
    assert error.line is not None


def test_fides_data_uses_need_no_declaration(tmp_path: Path) -> None:
    report = _report(
        tmp_path, lambda d: d["datasets"]["orders"].update(purposes=["essential.service", "analytics"])
    )
    assert report.ok and report.warnings == []


def test_declared_purposes_are_checked(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["purposes"].update(
            {
                "essential.service": {"description": "clash"},
                "Bad Name": {},
                "loyalty": {"parent": "marketing.loyality"},
                "ring_a": {"parent": "ring_b"},
                "ring_b": {"parent": "ring_a"},
            }
        )

    problems = {".".join(e.path): e.message for e in _report(tmp_path, edit).errors}
    assert "is a Fides data use already" in problems["purposes.essential.service"]
    assert "lower-case words" in problems["purposes.Bad Name"]
    assert "unknown parent 'marketing.loyality'" in problems["purposes.loyalty.parent"]
    assert "above itself" in problems["purposes.ring_a.parent"]


def test_a_deprecated_fides_data_use_is_a_warning_naming_its_successor(tmp_path: Path) -> None:
    report = _report(tmp_path, lambda d: d["datasets"]["orders"].update(purposes=["personalize.profiling"]))
    assert report.ok
    [warning] = report.warnings
    assert "deprecated Fides data use: use 'personalize.content.profiling'" in str(warning)

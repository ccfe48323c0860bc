"""Paths to nested fields in a catalog: checked at load, allowed for PII and free text, refused for keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_aisec.catalog import validate_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
VARS = {"lake": "/data/lake"}


def report_of(tmp_path: Path, **columns: Any) -> list[str]:
    """The errors of the example catalog with ``columns`` added to ``support_tickets``."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["datasets"]["support_tickets"]["columns"].update(columns)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return [str(p) for p in validate_catalog(path, VARS).errors]


def test_pii_and_free_text_paths_are_accepted(tmp_path: Path) -> None:
    errors = report_of(
        tmp_path,
        **{
            "payload.ip": {"pii": "IP_ADDRESS"},
            "items[].email": {"pii": "EMAIL_ADDRESS", "mask": {"strategy": "redact"}},
            "tags[]": {"pii": "PERSON"},
            "order.lines[].contact.phone": {"pii": "PHONE_NUMBER"},
            "notes[].body": {"pii": "free_text"},
        },
    )
    assert errors == []


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("items[0].email", "only '[]' is allowed"),
        ("payload..ip", "part 2 is empty"),
        ("items.[].email", "starts with '['"),
    ],
)
def test_a_malformed_path_is_an_error_naming_it(tmp_path: Path, path: str, reason: str) -> None:
    errors = report_of(tmp_path, **{path: {"pii": "EMAIL_ADDRESS"}})
    assert len(errors) == 1
    assert f"datasets.support_tickets.columns.{path}" in errors[0]
    assert reason in errors[0]


def test_a_pii_path_inside_a_pii_column_is_an_error(tmp_path: Path) -> None:
    errors = report_of(tmp_path, payload={"pii": "PERSON"}, **{"payload.ip": {"pii": "IP_ADDRESS"}})
    assert len(errors) == 1 and "'payload.ip' is inside 'payload'" in errors[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_key", "meta.id"),
        ("identity", {"email": "contact.email"}),
        ("references", {"owner.id": "customers.customer_id"}),
        ("retention", {"column": "meta.opened_at", "keep_for": "P2Y"}),
    ],
)
def test_keys_and_links_must_be_top_level_columns(tmp_path: Path, field: str, value: Any) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    tickets = data["datasets"]["support_tickets"]
    tickets[field] = value
    tickets["columns"].update({"meta.id": {}, "contact.email": {}, "owner.id": {}, "meta.opened_at": {}})
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    errors = [str(p) for p in validate_catalog(path, VARS).errors]
    assert any("must be a top-level column, not a path" in e and field in e for e in errors), errors


def test_inventory_takes_a_declared_path_as_its_column(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_aisec.catalog.models import Dataset
    from airflow_aisec.inventory import inventory_dataset

    folder = tmp_path / "events"
    folder.mkdir()
    table = pa.table({"id": [1], "payload": pa.array([{"ip": "10.0.0.1"}]), "extra": ["x"]})
    pq.write_table(table, folder / "part-0.parquet")
    columns: dict[str, Any] = {"id": {}, "payload.ip": {"pii": "IP_ADDRESS"}, "gone.x": {"pii": "PERSON"}}
    found = inventory_dataset(Dataset(name="events", uri=str(folder), format="parquet", columns=columns))
    assert found.missing_columns == ["gone.x"]
    assert found.undeclared_columns == ["extra"]

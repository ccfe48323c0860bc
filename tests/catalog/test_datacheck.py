"""The catalog checked against the data: every declared column in every file, with its declared type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from airflow_aisec.catalog import load_catalog, validate_catalog
from airflow_aisec.catalog.datacheck import DataCheck, add_to_report, check_data, encrypted_schemas
from airflow_aisec.io import Location
from airflow_aisec.io.storage import S3Options, s3_client

EMAIL = "zoe.muller@example.com"


def _catalog(tmp_path: Path, datasets: dict[str, Any], **top: Any) -> Path:
    document = {
        "version": 1,
        "subjects": {"identities": ["email"]},
        "keys": {"aisec-pseudonyms": {"provider": "local"}, **top.pop("keys", {})},
        "datasets": datasets,
        **top,
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _people(root: Path) -> None:
    (root / "people").mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "id": pa.array([1, 2], pa.int32()),
                "email": [EMAIL, None],
                "payload": [{"ip": "192.0.2.7", "agent": "x"}, None],
                "items": [[{"email": EMAIL}], []],
                "notes": ["call back", None],
            }
        ),
        root / "people" / "part-0.parquet",
    )
    (root / "calls").mkdir()
    (root / "calls" / "2024.csv").write_text(
        f"id,caller,called_on\n1,{EMAIL},2024-01-01\n2x,{EMAIL},2024-01-02\n", encoding="utf-8"
    )
    (root / "events").mkdir()
    (root / "events" / "e.jsonl").write_text(
        json.dumps({"id": 1, "payload": {"ip": "192.0.2.7"}, "email": EMAIL}) + "\n", encoding="utf-8"
    )


def _datasets(root: str) -> dict[str, Any]:
    return {
        "people": {
            "uri": f"{root}/people",
            "format": "parquet",
            "identity": {"email": "emial"},
            "columns": {
                "id": {"type": "int64"},
                "emial": {"pii": "EMAIL_ADDRESS"},
                "payload.ip": {"pii": "IP_ADDRESS"},
                "payload.mac": {"pii": "IP_ADDRESS"},
                "items[].email": {"pii": "EMAIL_ADDRESS", "type": "string"},
            },
            "retention": {"column": "id", "keep_for": "P1Y"},
        },
        "calls": {
            "uri": f"{root}/calls",
            "format": "csv",
            "references": {"caller": "people.emial"},
            "columns": {
                "id": {"type": "int"},
                "caller": {"pii": "EMAIL_ADDRESS"},
                "called_on": {"type": "date"},
            },
        },
        "events": {
            "uri": f"{root}/events",
            "format": "jsonl",
            "identity": {"email": "email"},
            "columns": {
                "id": {"type": "string"},
                "email": {"pii": "EMAIL_ADDRESS"},
                "payload.ip": {"pii": "IP_ADDRESS"},
            },
        },
        "archive": {"uri": f"{root}/archive", "format": "parquet", "columns": {"id": {}}},
    }


def _by_kind(check: DataCheck) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for problem in check.problems:
        found.setdefault((problem.dataset, problem.kind), []).append(problem.message)
    return found


def test_a_real_lake_reports_every_mismatch_by_dataset_and_file(tmp_path: Path) -> None:
    _people(tmp_path / "lake")
    catalog = load_catalog(_catalog(tmp_path, _datasets(str(tmp_path / "lake"))))

    check = check_data(catalog)
    found = _by_kind(check)

    assert found[("people", "missing_column")] == [
        "column emial is not in the data (did you mean 'email'?)",
        "column payload.mac: not in the data: payload has no field mac; fields: ip, agent",
    ]
    assert found[("people", "type_mismatch")] == ["column id: declared int64, but the data holds int32"]
    assert found[("calls", "type_mismatch")] == [
        "column id: declared int, but the data holds string (first at line 3)"
    ]
    assert found[("archive", "location")][0].startswith(
        f"file://{tmp_path}/lake/archive: the location does not exist"
    )
    # Columns of the data the catalog does not list are information, not errors.
    assert found[("people", "unlisted_column")] == [
        "column 'email' (string) is in the data but not in the catalog",
        "column 'notes' (string) is in the data but not in the catalog",
    ]
    assert all(p.severity == "info" for p in check.problems if p.kind == "unlisted_column")
    assert ("events", "missing_column") not in found and ("events", "type_mismatch") not in found
    assert [p.file for p in check.problems if p.kind == "type_mismatch" and p.dataset == "calls"] == [
        f"file://{tmp_path}/lake/calls/2024.csv"
    ]
    assert check.files["people"] == [f"file://{tmp_path}/lake/people/part-0.parquet"]
    assert not check.ok
    assert EMAIL not in json.dumps(check.as_dict())


def test_a_lake_that_matches_its_catalog_passes(tmp_path: Path) -> None:
    _people(tmp_path / "lake")
    datasets = _datasets(str(tmp_path / "lake"))
    people = datasets["people"]["columns"]
    people["email"] = people.pop("emial")
    people["id"]["type"] = "int"
    del people["payload.mac"]
    datasets["people"]["identity"] = {"email": "email"}
    datasets["calls"]["references"] = {"caller": "people.email"}
    datasets["calls"]["columns"]["id"]["type"] = "string"
    datasets["archive"]["may_be_empty"] = True
    catalog = load_catalog(_catalog(tmp_path, datasets))

    check = check_data(catalog)

    assert check.ok, check.of("error")
    assert [p.kind for p in check.problems if p.dataset == "archive"] == ["empty"]


def test_errors_land_in_the_catalog_report_at_the_line_of_the_column(tmp_path: Path) -> None:
    _people(tmp_path / "lake")
    report = validate_catalog(str(_catalog(tmp_path, _datasets(str(tmp_path / "lake")))))
    assert report.ok and report.catalog is not None

    add_to_report(report, check_data(report.catalog))

    emial = next(p for p in report.errors if p.path == ("datasets", "people", "columns", "emial"))
    assert emial.line is not None and "emial:" in Path(report.source).read_text().splitlines()[emial.line - 1]
    assert str(emial).endswith(
        f"dataset people: file://{tmp_path}/lake/people/part-0.parquet: column emial is not in the data "
        f"(did you mean 'email'?) (line {emial.line})"
    )


def test_an_unreadable_file_is_reported_with_its_line_and_the_rest_is_still_checked(tmp_path: Path) -> None:
    _people(tmp_path / "lake")
    calls, events = tmp_path / "lake" / "calls", tmp_path / "lake" / "events"
    (calls / "2025.csv").write_text(f"id,caller,called_on\n3,{EMAIL}\n", encoding="utf-8")
    (calls / "2026.csv").write_bytes(f"id,caller,called_on\n4,{EMAIL}\xff,x\n".encode("latin-1"))
    (events / "f.jsonl").write_text(f'{{"id": 2, "email": "{EMAIL}"\n', encoding="utf-8")
    catalog = load_catalog(_catalog(tmp_path, _datasets(str(tmp_path / "lake"))))

    check = check_data(catalog)
    found = _by_kind(check)

    assert found[("calls", "unreadable")] == [
        "line 2: 2 field(s) where the header has 3",
        "line 2: bytes that are not UTF-8 text (byte 25 of the line)",
    ]
    assert found[("events", "unreadable")] == [
        "line 1: not valid JSON (Expecting ',' delimiter at character 44)"
    ]
    assert EMAIL not in json.dumps(check.as_dict())
    assert ("calls", "type_mismatch") in found  # the other file of the dataset was checked


def test_encrypted_parquet_footers_are_read_with_the_catalog_key_or_reported_as_not_checkable(
    tmp_path: Path,
) -> None:
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.crypto.parquet import encrypt_parquet_file
    from airflow_aisec.crypto.providers import LocalKeyProvider

    ring = tmp_path / "keys" / "ring.json"
    ring.parent.mkdir()
    provider = LocalKeyProvider(ring)
    provider.create("pii-columns")
    _people(tmp_path / "plain")
    (tmp_path / "lake" / "people").mkdir(parents=True)
    encrypt_parquet_file(
        Location.parse(tmp_path / "plain" / "people" / "part-0.parquet"),
        Location.parse(tmp_path / "lake" / "people" / "part-0.parquet"),
        provider,
        "pii-columns",
        ["email"],
    )
    datasets = {"people": _datasets(str(tmp_path / "lake"))["people"]}
    datasets["people"]["encryption"] = {"key": "pii-columns", "columns": ["emial"]}
    catalog = load_catalog(_catalog(tmp_path, datasets, keys={"pii-columns": {"provider": "local"}}))

    without_keys = check_data(catalog)
    with_keys = check_data(catalog, encrypted_schema=encrypted_schemas(KeySource(catalog, ring)))
    wrong_keys = KeySource(catalog, tmp_path / "none.json")
    wrong_ring = check_data(catalog, encrypted_schema=encrypted_schemas(wrong_keys))

    assert [(p.kind, p.severity) for p in without_keys.problems] == [("encrypted", "warning")]
    assert "footer is encrypted" in without_keys.problems[0].message and without_keys.ok
    assert (
        "column emial is not in the data (did you mean 'email'?)"
        in _by_kind(with_keys)[("people", "missing_column")]
    )
    assert [p.kind for p in wrong_ring.problems] == ["encrypted"]
    assert "cannot be read" in wrong_ring.problems[0].message


@pytest.mark.integration
def test_s3_datasets_are_checked_from_their_footers_and_headers(
    tmp_path: Path, s3_options: S3Options, bucket: str
) -> None:
    _people(tmp_path / "lake")
    client = s3_client(s3_options)
    for path in (tmp_path / "lake").rglob("*.*"):
        client.put_object(
            Bucket=bucket, Key=f"lake/{path.relative_to(tmp_path / 'lake')}", Body=path.read_bytes()
        )
    catalog = load_catalog(_catalog(tmp_path, _datasets(f"s3://{bucket}/lake")))

    found = _by_kind(check_data(catalog, s3_options))

    assert found[("people", "missing_column")][0] == "column emial is not in the data (did you mean 'email'?)"
    assert found[("calls", "type_mismatch")] == [
        "column id: declared int, but the data holds string (first at line 3)"
    ]
    assert "no .parquet object under this prefix" in found[("archive", "location")][0]

"""Requests on a dataset whose PII sits inside struct and list columns: an anonymizing erasure masks the
subject's nested fields in their rows only, a rectification sets a nested field of their rows only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dsr_support import OTHER, SAMPLE, SUBJECT, by_dataset, catalog_for, dataset_table, run

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.crypto.datasets import encrypt_files, reader_for
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.crypto.parquet import is_encrypted_parquet
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.exceptions import DsrError
from airflow_aisec.io import Location, list_files

CONTACT = pa.struct([("email", pa.string()), ("phone", pa.string()), ("city", pa.string())])
DEVICE = pa.struct([("ip", pa.string()), ("model", pa.string())])
NOTE = pa.struct([("at", pa.int64()), ("body", pa.string())])
NEW_PHONE = "+44 20 7946 0999"
ALIAS = "Grimbold"  # the subject's nickname: only in their own row, and no model knows it as a name


def _profiles() -> pa.Table:
    """One profile per customer of the first ten, the subject's included, plus one with nulls everywhere."""
    people = [SUBJECT, *[c for c in SAMPLE.customers[:10] if c.customer_id != SUBJECT.customer_id]]
    rows: list[dict[str, Any]] = []
    for i, person in enumerate(people):
        mine = person.customer_id == SUBJECT.customer_id
        rows.append(
            {
                "profile_id": f"p{i}",
                "customer_id": person.customer_id,
                "contact": {"email": person.email, "phone": person.phone, "city": "Lyon"},
                "devices": [
                    {"ip": f"10.0.{i}.1", "model": "phone"},
                    None,
                    {"ip": f"10.0.{i}.2", "model": "pc"},
                ],
                "aliases": [ALIAS if mine else f"nick{i}", None],
                "notes": [
                    {"at": 1, "body": f"{ALIAS} asked for a refund" if mine else "asked for an invoice"},
                    {"at": 2, "body": f"copied {SUBJECT.email} in" if person == OTHER else "ok"},
                ],
                "plan": "gold",
                "updated_at": dt.datetime(2026, 1, 1),
            }
        )
    rows.append(
        {
            "profile_id": "p-empty",
            "customer_id": OTHER.customer_id,
            "contact": None,
            "devices": None,
            "aliases": [],
            "notes": None,
            "plan": None,
            "updated_at": dt.datetime(2026, 1, 1),
        }
    )
    schema = pa.schema(
        [
            ("profile_id", pa.string()),
            ("customer_id", pa.string()),
            ("contact", CONTACT),
            ("devices", pa.list_(DEVICE)),
            ("aliases", pa.list_(pa.string())),
            ("notes", pa.list_(NOTE)),
            ("plan", pa.string()),
            ("updated_at", pa.timestamp("us")),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _with_profiles(lake: Path, tmp_path: Path, encrypted: bool = False) -> Catalog:
    """The example catalog with a ``profiles`` dataset of nested PII (anonymized on erasure), its ``contact``
    column encrypted at rest if asked."""
    folder = lake / "profiles"
    folder.mkdir()
    pq.write_table(_profiles(), folder / "part-0.parquet")

    def add(data: dict[str, Any]) -> None:
        data["datasets"]["profiles"] = {
            "uri": "{lake}/profiles",
            "format": "parquet",
            "primary_key": "profile_id",
            "references": {"customer_id": "customers.customer_id"},
            "columns": {
                "profile_id": {},
                "customer_id": {},
                "contact.email": {"pii": "EMAIL_ADDRESS"},
                "contact.phone": {"pii": "PHONE_NUMBER"},
                "devices[].ip": {"pii": "IP_ADDRESS"},
                "aliases[]": {"pii": "PERSON"},
                "notes[].body": {"pii": "free_text"},
                "plan": {},
                "updated_at": {},
            },
            "retention": {"column": "updated_at", "keep_for": "P3Y"},
            "erasure": "anonymize",
            "purposes": ["support"],
        }
        if encrypted:
            data["datasets"]["profiles"]["columns"]["contact"] = {}
            data["datasets"]["profiles"]["encryption"] = {"key": "pii-columns", "columns": ["contact"]}

    return catalog_for(lake, tmp_path, add)


@pytest.fixture
def profiles(lake: Path, tmp_path: Path) -> Catalog:
    """The example catalog with a plain ``profiles`` dataset of nested PII."""
    return _with_profiles(lake, tmp_path)


def _row(table: pa.Table, profile_id: str) -> dict[str, Any]:
    return next(r for r in table.to_pylist() if r["profile_id"] == profile_id)


def _not_theirs(table: pa.Table) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(table.column("profile_id"), pa.array(["p0"]))))


def test_anonymizing_erasure_masks_the_subjects_nested_pii_and_nothing_else(
    profiles: Catalog, lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    before = dataset_table(lake, "profiles")
    request = make_request(profiles, "erasure", "customer_id", SUBJECT.customer_id, request_id="nested-erase")
    document = run(profiles, request, ring, log, tmp_path)

    after = dataset_table(lake, "profiles")
    assert after.schema == before.schema and after.num_rows == before.num_rows
    mine = _row(after, "p0")
    assert mine["customer_id"] is None  # unlinked
    assert mine["contact"] == {"email": "<EMAIL_ADDRESS>", "phone": "<PHONE_NUMBER>", "city": "Lyon"}
    assert mine["devices"] == [
        {"ip": "<IP_ADDRESS>", "model": "phone"},
        None,
        {"ip": "<IP_ADDRESS>", "model": "pc"},
    ]
    assert mine["aliases"] == ["<PERSON>", None]
    # The alias is masked in their own note (row context), whatever the model thinks of the word.
    assert mine["notes"][0] == {"at": 1, "body": "<PERSON> asked for a refund"}
    assert (mine["plan"], mine["updated_at"]) == ("gold", dt.datetime(2026, 1, 1))
    # Someone else's note quoting the subject's e-mail loses the address, and only that.
    quoting = next(r for r in after.to_pylist() if r["customer_id"] == OTHER.customer_id and r["notes"])
    assert quoting["notes"][1]["body"] == "copied <REDACTED> in"
    untouched = _not_theirs(before).to_pylist()
    for old, new in zip(untouched, _not_theirs(after).to_pylist(), strict=True):
        if old["customer_id"] == OTHER.customer_id and old["notes"]:
            old["notes"][1]["body"] = "copied <REDACTED> in"
        assert new == old
    text = str(after.to_pylist())
    for secret in (SUBJECT.email, SUBJECT.phone, ALIAS, "10.0.0.1", "10.0.0.2"):
        assert secret not in text, secret
    outcome = by_dataset(document)["profiles"]
    assert (outcome["strategy"], outcome["status"], outcome["rows_affected"]) == ("anonymize", "changed", 1)
    assert outcome["verification"]["mentions_remaining"] == 0
    assert verify_certificate(document, log).ok


def test_rectification_sets_a_nested_field_of_the_subjects_rows_only(
    profiles: Catalog, lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    before = dataset_table(lake, "profiles")
    request = make_request(
        profiles, "rectification", "email", SUBJECT.email, request_id="nested-rect",
        changes={"contact.phone": NEW_PHONE},
    )  # fmt: skip
    document = run(profiles, request, ring, log, tmp_path)

    after = dataset_table(lake, "profiles")
    assert after.schema == before.schema
    expected = _row(before, "p0")
    expected["contact"]["phone"] = NEW_PHONE
    assert _row(after, "p0") == expected
    assert _not_theirs(after).equals(_not_theirs(before))
    outcome = by_dataset(document)["profiles"]
    assert (outcome["status"], outcome["rows_affected"]) == ("changed", 1)
    assert outcome["verification"]["rows_not_corrected"] == 0
    assert verify_certificate(document, log).ok
    assert NEW_PHONE not in str(document)


def test_erasure_in_an_encrypted_nested_column_keeps_the_file_encrypted(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = _with_profiles(lake, tmp_path, encrypted=True)
    location = Location.parse(lake / "profiles")
    encrypt_files(location, location, "parquet", LocalKeyProvider(ring), "pii-columns", columns=["contact"])
    path = next((lake / "profiles").glob("*.parquet"))
    assert is_encrypted_parquet(location.filesystem(), str(path))

    request = make_request(catalog, "erasure", "customer_id", SUBJECT.customer_id, request_id="nested-sealed")
    document = run(catalog, request, ring, log, tmp_path)

    files = list_files(location, "parquet")
    assert [is_encrypted_parquet(i.location.filesystem(), i.location.path) for i in files] == [True]
    with pytest.raises(OSError):  # still unreadable without the key
        pq.read_table(files[0].location.path)
    reader = reader_for(KeySource(catalog, ring), catalog.dataset("profiles"))
    after = pa.Table.from_batches([b for info in files for b in reader(info, "parquet")])
    assert _row(after, "p0")["contact"] == {
        "email": "<EMAIL_ADDRESS>",
        "phone": "<PHONE_NUMBER>",
        "city": "Lyon",
    }
    assert _not_theirs(after).column("contact").equals(_not_theirs(_profiles()).column("contact"))
    assert by_dataset(document)["profiles"]["status"] == "changed"
    assert verify_certificate(document, log).ok


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("notes[].body", "a new note", "free text"),
        ("contact.email", "not-an-address", "is not an e-mail address"),
        ("contact.zip", "69001", "no dataset of the catalog has such a column"),
    ],
)
def test_a_nested_field_follows_the_rectification_rules_of_a_column(
    profiles: Catalog, field: str, value: str, why: str
) -> None:
    with pytest.raises(DsrError) as raised:
        make_request(profiles, "rectification", "email", SUBJECT.email, changes={field: value})
    assert why in str(raised.value) and field in str(raised.value)
    assert value not in str(raised.value)

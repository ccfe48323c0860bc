"""Access: an encrypted package of the subject's rows of every dataset, and nothing of anyone else."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from dsr_support import (
    COPIES,
    SUBJECT,
    audit_text,
    by_dataset,
    catalog_for,
    customer_rows,
    dataset_table,
    digests,
    run,
)

from airflow_aisec.audit import AuditLog, EntryQuery
from airflow_aisec.catalog import Catalog
from airflow_aisec.crypto.envelope import MAGIC, decrypt_file
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.exceptions import DsrError
from airflow_aisec.io import Location
from airflow_aisec.samples import FORMATS

KEY = "pii-columns"


def _open(catalog: Catalog, ring: LocalKeyring, source: Path, request_id: str, tmp_path: Path) -> bytes:
    """The plaintext of one package file, checking it is bound to the request and its file name."""
    target = tmp_path / "opened" / source.name.removesuffix(".aisec")
    provider = KeySource(catalog, ring).provider(KEY)
    context = {"request_id": request_id, "file": target.name}
    decrypt_file(Location.parse(source), Location.parse(target), provider, context=context, overwrite=True)
    return target.read_bytes()


def test_access_exports_only_the_subjects_rows_encrypted_with_a_manifest(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    ring.ensure(KEY, "symmetric")
    catalog = catalog_for(lake)
    before = digests(lake)
    expected = {name: customer_rows(dataset_table(lake, name), SUBJECT.customer_id) for name in FORMATS}
    request = make_request(catalog, "access", "email", SUBJECT.email, request_id="access-1", export_key=KEY)

    document = run(catalog, request, ring, log, tmp_path)

    assert digests(lake) == before  # an access request changes no data
    package = tmp_path / "exports" / "access-1"
    names = sorted(p.name for p in package.iterdir())
    assert names == sorted(
        ["manifest.json.aisec"] + [f"{n}.{ext}.aisec" for n in FORMATS for ext in ("json", "csv")]
    )
    secrets = [SUBJECT.email, SUBJECT.customer_id, SUBJECT.phone, SUBJECT.full_name]
    for path in package.iterdir():  # envelopes only: no plaintext left anywhere in the package
        assert path.read_bytes().startswith(MAGIC), path.name
        assert not any(s.encode() in path.read_bytes() for s in secrets), path.name

    for name, rows in expected.items():
        exported = json.loads(_open(catalog, ring, package / f"{name}.json.aisec", "access-1", tmp_path))
        assert len(exported) == rows.num_rows > 0, name
        assert {r["customer_id"] for r in exported} == {SUBJECT.customer_id}, name
        wanted = [{k: _text(v) for k, v in r.items()} for r in rows.to_pylist()]
        got = [{k: _text(v) for k, v in r.items()} for r in exported]
        key = "order_id" if name == "orders" else "ticket_id" if name == "support_tickets" else "customer_id"
        assert sorted(got, key=lambda r: r[key]) == sorted(wanted, key=lambda r: r[key]), name
        table = list(csv.DictReader(io.StringIO(_open(catalog, ring, package / f"{name}.csv.aisec",
                                                     "access-1", tmp_path).decode())))  # fmt: skip
        assert len(table) == rows.num_rows and {r["customer_id"] for r in table} == {SUBJECT.customer_id}

    manifest = json.loads(_open(catalog, ring, package / "manifest.json.aisec", "access-1", tmp_path))
    assert manifest["format"] == "aisec-dsr-access-package"
    assert manifest["request"]["subject"] == log.pseudonym(SUBJECT.email)
    # Asked for by e-mail, the request is found in the log by the subject's customer id as well.
    by_id = log.search(EntryQuery(subject=log.pseudonym(SUBJECT.customer_id)), limit=1000).entries
    of_request = log.search(EntryQuery(request_id="access-1"), limit=1000).entries
    assert by_id and [e.index for e in by_id] == [e.index for e in of_request]
    datasets = manifest["datasets"]
    assert datasets["customers"]["purposes"] == ["billing", "support"]
    assert datasets["customers"]["retention"] == {"column": "created_at", "keep_for": "P3Y"}
    assert datasets["orders"]["retention"] == {"column": "ordered_at", "keep_for": "P7Y"}
    assert datasets["chargebacks"]["legal_hold"] == {"reason": "litigation 2026-17", "until": "2027-06-30"}
    assert {n: d["rows"] for n, d in datasets.items()} == {
        **{n: t.num_rows for n, t in expected.items()},
        **dict.fromkeys(COPIES, 0),  # declared, empty in the sample lake
    }
    listed = {f["name"]: f["sha256"] for d in datasets.values() for f in d["files"]}
    certified = {f["name"]: f["sha256"] for d in by_dataset(document).values() for f in d["files"]}
    assert listed == certified and len(listed) == 2 * len(FORMATS)

    certificate = document["certificate"]
    assert certificate["status"] == "completed"
    assert certificate["export"]["key"] == KEY
    assert all(d["status"] == "exported" for d in certificate["datasets"] if d["dataset"] not in COPIES)
    assert verify_certificate(document, log).ok
    # The audit log says what was exported, never what it held.
    recorded = audit_text(log)
    values = {_text(v) for table in expected.values() for v in _cells(table.to_pylist())}
    assert not [v for v in values if v in recorded]
    assert SUBJECT.full_name not in recorded and SUBJECT.email not in recorded


def _text(value: Any) -> str:
    """A cell as comparable text: instants written either way (``T``/space, ``Z``/offset) read the same."""
    if isinstance(value, str) and len(value) >= 19 and value[:4].isdigit():
        value = dt.datetime.fromisoformat(value)
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _cells(rows: list[dict[str, Any]]) -> list[Any]:
    # Amounts are left out: a number such as 7.12 may match the fraction of a time stamp by chance.
    return [v for row in rows for v in row.values() if v is not None and not isinstance(v, float)]


@pytest.mark.parametrize("problem", ["missing", "destroyed"])
def test_an_export_key_that_cannot_encrypt_fails_before_anything_is_written(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, problem: str
) -> None:
    if problem == "destroyed":
        ring.ensure(KEY, "symmetric")
        ring.destroy(KEY)
    names = ring.names()
    catalog = catalog_for(lake)
    request = make_request(catalog, "access", "email", SUBJECT.email, request_id="access-2", export_key=KEY)
    with pytest.raises(DsrError, match=f"export key '{KEY}' cannot encrypt the package") as raised:
        run(catalog, request, ring, log, tmp_path)
    assert SUBJECT.email not in str(raised.value)
    assert log.size() == 0
    assert not (tmp_path / "exports").exists() and not (tmp_path / "state").exists()
    assert ring.names() == names  # the key was not created behind the operator's back

"""Consent at read time: which consent is current, rows of subjects without one dropped (and counted) in every
format, the audit entries without subject values, and grants and withdrawals appended atomically."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from builders import catalog_for, open_log
from consent_setup import consent_catalog, consent_edit, customer_ids, rows_of

from airflow_aisec.audit import KNOWN_ACTIONS, AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.exceptions import ConsentError
from airflow_aisec.governance import consent_filter, read_dataset, record_consent, subject_consents
from airflow_aisec.io import Location, list_files

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _at(days: int) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


@pytest.fixture
def ring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json")


@pytest.fixture
def log(tmp_path: Path, ring: LocalKeyring) -> Iterator[AuditLog]:
    with open_log(tmp_path, ring) as audit:
        yield audit


@pytest.fixture
def catalog(sample_lake_dir: Path, tmp_path: Path) -> Catalog:
    return consent_catalog(sample_lake_dir, tmp_path)[0]


def _grant(keys: KeySource, log: AuditLog, subject: str, purpose: str = "newsletter", **kw: Any) -> Any:
    return record_consent(keys, subject, purpose, grant=True, audit=log, **kw)


def _withdraw(keys: KeySource, log: AuditLog, subject: str, purpose: str = "newsletter", **kw: Any) -> Any:
    return record_consent(keys, subject, purpose, grant=False, audit=log, **kw)


def _consenting(keys: KeySource, at: dt.datetime, purpose: str = "newsletter") -> int:
    found = consent_filter(keys, "orders", purpose, at=at)
    assert found is not None
    return found.consenting


def _read(keys: KeySource, log: AuditLog, name: str, purpose: str | None) -> pa.Table:
    batches = read_dataset(name, purpose, catalog=keys.catalog, keys=keys, audit=log, task="reports.weekly")
    return pa.Table.from_batches(list(batches))


def test_consent_actions_are_known_audit_actions() -> None:
    assert {"consent.filter", "consent.grant", "consent.withdraw"} <= set(KNOWN_ACTIONS)


def test_consent_follows_grant_withdrawal_and_regrant_as_of_each_time(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path
) -> None:
    keys = KeySource(catalog, ring)
    [subject] = customer_ids(sample_lake_dir, 1)
    _grant(keys, log, subject, at=_at(10))
    _withdraw(keys, log, subject, at=_at(20))
    _grant(keys, log, subject, at=_at(30))
    assert [_consenting(keys, _at(d)) for d in (5, 10, 15, 20, 25, 30, 40)] == [0, 1, 1, 0, 0, 1, 1]
    said = subject_consents(keys, subject, at=_at(25))
    assert {p: (s.granted, s.at) for p, s in said.items()} == {"newsletter": (False, _at(20))}


def test_a_grant_and_a_withdrawal_at_the_same_instant_is_withdrawn(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path
) -> None:
    keys = KeySource(catalog, ring)
    [subject] = customer_ids(sample_lake_dir, 1)
    _grant(keys, log, subject, at=_at(1))
    _withdraw(keys, log, subject, at=_at(1))
    assert _consenting(keys, _at(2)) == 0


def test_consent_to_a_parent_covers_the_purpose_and_a_withdrawal_of_the_purpose_itself_wins(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path
) -> None:
    keys = KeySource(catalog, ring)
    first, second = customer_ids(sample_lake_dir, 2)
    _grant(keys, log, first, "marketing.communications", at=_at(1))
    _grant(keys, log, second, "marketing.communications", at=_at(1))
    _withdraw(keys, log, second, at=_at(2))
    assert _consenting(keys, _at(3)) == 1
    # Consent to newsletter alone does not make a read for its broader parent consented: it needs none.
    assert consent_filter(keys, "orders", "marketing.communications") is None


@pytest.mark.parametrize(
    ("dataset", "own_purpose", "fmt"),
    [
        ("orders", "billing", "parquet"),
        ("chargebacks", "fraud", "csv"),
        ("support_tickets", "support", "jsonl"),
    ],
)
def test_a_read_for_a_purpose_needing_consent_keeps_only_consenting_subjects_rows_and_counts_them(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path,
    dataset: str, own_purpose: str, fmt: str,
) -> None:  # fmt: skip
    assert catalog.dataset(dataset).format == fmt
    keys = KeySource(catalog, ring)
    everything = _read(keys, log, dataset, own_purpose)
    ids = sorted(set(everything.column("customer_id").to_pylist()))[:5]
    for subject in ids:
        _grant(keys, log, subject, at=_at(1))
    _withdraw(keys, log, ids[0], at=_at(2))
    kept = _read(keys, log, dataset, "newsletter")
    expected = rows_of(everything, ids[1:])
    assert 0 < expected < everything.num_rows
    assert kept.num_rows == expected and set(kept.column("customer_id").to_pylist()) <= set(ids[1:])
    assert kept.schema == everything.schema
    entries = [e.data for e in log.entries() if e.action == "consent.filter"]
    assert entries and all(e["dataset"] == dataset for e in entries)
    assert sum(e["details"]["kept"] for e in entries) == expected
    assert sum(e["details"]["dropped"] for e in entries) == everything.num_rows - expected
    assert {e["details"]["purpose"] for e in entries} == {"newsletter"}
    assert all(e["details"]["complete"] and e["details"]["identity"] == "customer_id" for e in entries)


def test_a_read_for_a_purpose_without_needs_consent_is_unaffected(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path
) -> None:
    keys = KeySource(catalog, ring)
    _grant(keys, log, customer_ids(sample_lake_dir, 1)[0], at=_at(1))
    table = _read(keys, log, "customers", "billing")
    assert table.num_rows == 120
    assert not [e for e in log.entries() if e.action == "consent.filter"]


def test_columns_asked_for_come_back_alone_when_the_subject_column_is_not_among_them(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path
) -> None:
    keys = KeySource(catalog, ring)
    ids = customer_ids(sample_lake_dir, 3)
    for subject in ids:
        _grant(keys, log, subject, at=_at(1))
    everything = _read(keys, log, "orders", "billing")
    batches = read_dataset("orders", "newsletter", catalog=catalog, keys=keys, audit=log, columns=["amount"])
    table = pa.Table.from_batches(list(batches))
    assert table.column_names == ["amount"] and table.num_rows == rows_of(everything, ids)


def test_no_consent_entry_nor_log_line_holds_a_subject_value(
    catalog: Catalog,
    ring: LocalKeyring,
    log: AuditLog,
    sample_lake_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = KeySource(catalog, ring)
    customers = _read(keys, log, "customers", "billing")
    ids, emails = customers.column("customer_id").to_pylist(), customers.column("email").to_pylist()
    _grant(keys, log, ids[0], at=_at(1))
    _grant(keys, log, emails[1], identity="email", at=_at(1))
    _withdraw(keys, log, ids[0], at=_at(2))
    _read(keys, log, "customers", "newsletter")
    entries = [e.data for e in log.entries() if e.action.startswith("consent.")]
    assert {e["action"] for e in entries} == {"consent.grant", "consent.withdraw", "consent.filter"}
    assert all(e["subject"].startswith("hmac-sha256:") for e in entries if e["action"] != "consent.filter")
    text = json.dumps(entries) + caplog.text
    assert not [v for v in [*ids, *emails] if v and v in text]


def test_an_email_consent_matches_whatever_the_letter_case(
    sample_lake_dir: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog, _ = consent_catalog(sample_lake_dir, tmp_path, identities=("email",))
    keys = KeySource(catalog, ring)
    emails = _read(keys, log, "customers", "billing").column("email").to_pylist()
    _grant(keys, log, f"  {emails[0].upper()} ", at=_at(1))
    assert _read(keys, log, "customers", "newsletter").column("email").to_pylist() == [emails[0]]
    with pytest.raises(
        ConsentError, match=r"dataset 'orders' is read for purpose 'newsletter'.*cannot be tied"
    ):
        read_dataset("orders", "newsletter", catalog=catalog, keys=keys, audit=log)
    [refused] = [e.data for e in log.entries() if e.action == "consent.filter"][-1:]
    assert refused["outcome"] == "failure" and refused["dataset"] == "orders"


def test_granting_what_is_granted_appends_nothing(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path, tmp_path: Path
) -> None:
    keys = KeySource(catalog, ring)
    [subject] = customer_ids(sample_lake_dir, 1)
    first = _grant(keys, log, subject, at=_at(1))
    files = sorted((tmp_path / "consents").iterdir())
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    again = _grant(keys, log, subject, at=_at(2))
    assert first.changed and not again.changed and again.uri is None
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == before
    outcomes = [e.data["outcome"] for e in log.entries() if e.action == "consent.grant"]
    assert outcomes == ["success", "noop"]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_grants_and_withdrawals_append_rows_and_keep_every_earlier_row(
    sample_lake_dir: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, fmt: str
) -> None:
    catalog, _ = consent_catalog(sample_lake_dir, tmp_path, fmt)
    keys = KeySource(catalog, ring)
    a, b, c = customer_ids(sample_lake_dir, 3)
    for subject in (a, b, c):
        _grant(keys, log, subject, at=_at(1))
    _withdraw(keys, log, b, at=_at(2))
    _grant(keys, log, c, "marketing", at=_at(3))
    [file] = (tmp_path / "consents").iterdir()
    assert file.name == f"consents.{fmt}"
    said = {s: subject_consents(keys, s, at=_at(9)) for s in (a, b, c)}
    assert {s: {p: st.granted for p, st in x.items()} for s, x in said.items()} == {
        a: {"newsletter": True}, b: {"newsletter": False}, c: {"newsletter": True, "marketing": True},
    }  # fmt: skip
    assert _consenting(keys, _at(9)) == 2


def _fail_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_aisec.io.atomic as atomic

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic, "verify_file", crash)


def _fail_on_the_new_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_aisec.io.atomic import AtomicWriter

    write = AtomicWriter.write

    def crash_on_one_row(self: AtomicWriter, data: Any) -> None:
        if self.rows > 0 and data.num_rows == 1:  # the earlier rows are written, the new one is not
            raise OSError("disk full")
        write(self, data)

    monkeypatch.setattr(AtomicWriter, "write", crash_on_one_row)


@pytest.mark.parametrize("inject", [_fail_on_the_new_row, _fail_verification])
def test_an_append_that_fails_midway_leaves_the_existing_rows_intact_and_a_retry_appends_once(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, inject: Any,
) -> None:  # fmt: skip
    keys = KeySource(catalog, ring)
    a, b, c = customer_ids(sample_lake_dir, 3)
    _grant(keys, log, a, at=_at(1))
    _grant(keys, log, b, at=_at(1))
    [file] = (tmp_path / "consents").iterdir()
    before = file.read_bytes()
    inject(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        _grant(keys, log, c, at=_at(2))
    assert file.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "consents").iterdir()) == [file.name]  # no staging file left
    monkeypatch.undo()
    assert _consenting(keys, _at(3)) == 2
    assert _grant(keys, log, c, at=_at(2)).changed
    assert not _grant(keys, log, c, at=_at(2)).changed  # the same request again appends nothing
    assert _consenting(keys, _at(3)) == 3
    outcomes = [e.data["outcome"] for e in log.entries() if e.action == "consent.grant"]
    assert outcomes == ["success", "success", "success", "noop"]


def test_unknown_purposes_and_identity_types_are_refused_without_writing(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, tmp_path: Path
) -> None:
    keys = KeySource(catalog, ring)
    with pytest.raises(ConsentError, match=r"purpose 'newsleter'.*did you mean 'newsletter'"):
        _grant(keys, log, "C-1", "newsleter")
    with pytest.raises(ConsentError, match=r"purpose '<not a purpose name>'"):
        _grant(keys, log, "C-1", "someone@example.com")
    with pytest.raises(ConsentError, match=r"identity type 'phone' is not one it holds"):
        _grant(keys, log, "C-1", identity="phone")
    assert not (tmp_path / "consents").exists()
    assert not [e for e in log.entries() if e.action.startswith("consent.")]


@pytest.mark.integration
def test_a_consent_store_on_s3_takes_grants_atomically_and_filters_reads(
    sample_lake_dir: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, s3_options: Any, bucket: str
) -> None:
    catalog = catalog_for(sample_lake_dir, tmp_path, consent_edit(f"s3://{bucket}/consents"))
    keys = KeySource(catalog, ring, s3=s3_options)
    a, b, c = customer_ids(sample_lake_dir, 3)
    for subject in (a, b, c):
        _grant(keys, log, subject, at=_at(1))
    _withdraw(keys, log, b, at=_at(2))
    assert not _grant(keys, log, a, at=_at(3)).changed
    [stored] = list_files(Location.parse(f"s3://{bucket}/consents", s3_options), "parquet")
    assert stored.location.name == "consents.parquet"
    everything = _read(keys, log, "orders", "billing")
    kept = _read(keys, log, "orders", "newsletter")
    assert kept.num_rows == rows_of(everything, [a, c]) > 0


def test_a_subject_id_with_surrounding_spaces_is_refused_not_recorded_as_someone_else(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path
) -> None:
    keys = KeySource(catalog, ring)
    (subject,) = customer_ids(sample_lake_dir, 1)
    _grant(keys, log, subject, at=_at(0))
    with pytest.raises(ConsentError, match="leading or trailing spaces"):
        _withdraw(keys, log, f" {subject} ", at=_at(1))
    assert _consenting(keys, _at(2)) == 1  # nothing was withdrawn, and nothing claims it was
    assert [e.data["action"] for e in log.entries()].count("consent.withdraw") == 0


def test_a_consent_row_naming_no_purpose_of_the_catalog_refuses_the_read(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, sample_lake_dir: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    keys = KeySource(catalog, ring)
    (subject,) = customer_ids(sample_lake_dir, 1)
    _grant(keys, log, subject, at=_at(0))
    (written,) = (tmp_path / "consents").glob("*.parquet")
    rows = pq.read_table(written)
    # A withdrawal edited in by hand with the purpose misspelt: skipping it would leave the grant standing.
    withdrawal = {name: [None] for name in rows.column_names}
    withdrawal.update(
        {"customer_id": [subject], "purpose": ["newsletter "], "withdrawn_at": [rows["granted_at"][0]]}
    )
    pq.write_table(
        pa.Table.from_pydict(withdrawal, schema=rows.schema), tmp_path / "consents" / "edited.parquet"
    )

    with pytest.raises(ConsentError, match="'newsletter ' in its rows are no purpose of the catalog"):
        consent_filter(keys, "orders", "newsletter", at=_at(2))

"""Erasure of encrypted data: found in encrypted columns, written back encrypted, subject keys shredded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dsr_support import SUBJECT, by_dataset, catalog_for, customer_rows, dataset_table, others, run

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.crypto.datasets import encrypt_files, reader_for, subject_columns
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.crypto.parquet import is_encrypted_parquet
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.crypto.pseudonyms import Pseudonymizer
from airflow_aisec.crypto.subjects import subject_key_name
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.dsr.context import DsrContext
from airflow_aisec.dsr.run import begin, carry_out, complete
from airflow_aisec.io import Location, list_files

PII = ["email", "phone", "full_name"]


def _encrypt_customers(catalog: Catalog, ring: LocalKeyring, lake: Path, sealed: bool = False) -> None:
    customers = catalog.dataset("customers")
    assert customers.encryption is not None
    location = Location.parse(lake / "customers")
    encrypt_files(
        location, location, "parquet", LocalKeyProvider(ring), customers.encryption.key, columns=PII,
        subjects=subject_columns(KeySource(catalog, ring), customers) if sealed else None,
    )  # fmt: skip


def _decrypted(catalog: Catalog, ring: LocalKeyring, lake: Path) -> tuple[pa.Table, int]:
    """The customers as a reader with the keys sees them, and how many files are still encrypted."""
    reader = reader_for(KeySource(catalog, ring), catalog.dataset("customers"))
    files = list_files(Location.parse(lake / "customers"), "parquet")
    encrypted = sum(is_encrypted_parquet(i.location.filesystem(), i.location.path) for i in files)
    return pa.Table.from_batches([b for info in files for b in reader(info, "parquet")]), encrypted


def test_erasure_finds_the_subject_by_an_encrypted_email_and_keeps_the_file_encrypted(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    plain = dataset_table(lake, "customers")
    _encrypt_customers(catalog, ring, lake)
    with pytest.raises(OSError):  # a reader without the key cannot even find the e-mail column
        pq.read_table(next((lake / "customers").glob("*.parquet")))
    files = len(list((lake / "customers").glob("*.parquet")))

    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-encrypted")
    document = run(catalog, request, ring, log, tmp_path)

    customers, encrypted = _decrypted(catalog, ring, lake)
    assert encrypted == files  # the rewritten file is encrypted again, like every other
    assert len(list((lake / "customers").glob("_KEY_MATERIAL_FOR_*"))) == files
    assert customer_rows(customers, SUBJECT.customer_id).num_rows == 0
    assert SUBJECT.email not in customers.column("email").to_pylist()
    assert others(customers).sort_by("customer_id").equals(others(plain).sort_by("customer_id"))
    datasets = by_dataset(document)
    assert datasets["customers"]["rows_affected"] == 1 and len(datasets["customers"]["files"]) == 1
    # The customer id learned through the encrypted file reached the orders.
    unlinked = dataset_table(lake, "orders").column("customer_id").null_count
    assert datasets["orders"]["rows_affected"] == unlinked > 0
    assert verify_certificate(document, log).ok


def _sealed_catalog(lake: Path, tmp_path: Path, hold_customers: bool) -> Catalog:
    def edit(data: dict[str, Any]) -> None:
        customers = data["datasets"]["customers"]
        customers["encryption"] = {"key": "pii-columns", "columns": PII, "per_subject_columns": ["full_name"]}
        del data["datasets"]["chargebacks"]["legal_hold"]
        if hold_customers:
            customers["legal_hold"] = {"reason": "tax audit 2026", "until": "2099-12-31"}

    return catalog_for(lake, tmp_path, edit)


@pytest.mark.parametrize("hold_customers", [False, True], ids=["no-hold", "customers-held"])
def test_erasure_shreds_the_subjects_own_key_unless_their_sealed_data_is_held(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, hold_customers: bool
) -> None:
    catalog = _sealed_catalog(lake, tmp_path, hold_customers)
    _encrypt_customers(catalog, ring, lake, sealed=True)
    pseudonymize = Pseudonymizer(ring.get(catalog.subjects.pseudonym_key).material)
    theirs = subject_key_name(pseudonymize, SUBJECT.customer_id)
    someone = subject_key_name(pseudonymize, "C0001")
    assert {theirs, someone} <= set(ring.names())
    assert SUBJECT.customer_id not in theirs

    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-sealed")
    document = run(catalog, request, ring, log, tmp_path)

    certificate = document["certificate"]
    states = {v.state for v in ring.versions(theirs)}
    assert {v.state for v in ring.versions(someone)} == {"active"}
    customers, _ = _decrypted(catalog, ring, lake)
    if hold_customers:
        assert certificate["keys_shredded"] == [] and states == {"active"}
        assert certificate["status"] == "completed_with_holds"
        assert customer_rows(customers, SUBJECT.customer_id).column("full_name").to_pylist() == [
            SUBJECT.full_name
        ]
    else:
        assert certificate["keys_shredded"] == [theirs] and states == {"destroyed"}
        assert certificate["status"] == "completed"
        assert customer_rows(customers, SUBJECT.customer_id).num_rows == 0
        shreds = [e.data for e in log.entries() if e.data["action"] == "key.shred"]
        assert [(e["details"]["key"], e["outcome"]) for e in shreds] == [(theirs, "success")]
    assert "C0001" in customers.column("customer_id").to_pylist()  # everyone else still opens
    assert verify_certificate(document, log).ok


def test_a_completion_after_a_failed_approval_destroys_no_key_whatever_the_outcomes(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    # The DAG's complete task also runs when the approval failed (refused, timed out), to certify that.
    catalog = _sealed_catalog(lake, tmp_path, hold_customers=False)
    _encrypt_customers(catalog, ring, lake, sealed=True)
    theirs = subject_key_name(
        Pseudonymizer(ring.get(catalog.subjects.pseudonym_key).material), SUBJECT.customer_id
    )
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-unapproved")
    ctx = DsrContext(catalog, request, keyring=ring, audit=log)
    begun = begin(ctx)
    ids = begun.resolution.identifiers
    # Even with every dataset's outcome in hand, an unapproved completion shreds nothing.
    outcomes = [carry_out(ctx, m, ids) for m in begun.resolution.datasets.values()]

    document = complete(ctx, begun.resolution, outcomes, approved=False)

    assert document["certificate"]["keys_shredded"] == []
    assert {v.state for v in ring.versions(theirs)} == {"active"}
    assert not [e for e in log.entries() if e.data["action"] == "key.shred"]

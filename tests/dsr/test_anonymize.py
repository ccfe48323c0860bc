"""Anonymizing erasure of a dataset with free text: the subject's own rows stay, their words go (NER)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dsr_support import SUBJECT, by_dataset, catalog_for, customer_rows, dataset_table, others, run

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import make_request, verify_certificate


def test_anonymized_tickets_stay_without_the_subjects_name_email_phone_or_link(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    def anonymize_tickets(data: dict[str, Any]) -> None:
        data["datasets"]["support_tickets"]["erasure"] = "anonymize"

    catalog = catalog_for(lake, tmp_path, anonymize_tickets)
    before = dataset_table(lake, "support_tickets")
    theirs = customer_rows(before, SUBJECT.customer_id)
    bodies = theirs.column("body").to_pylist()
    assert any(SUBJECT.full_name in body for body in bodies)  # the name is really there to remove

    request = make_request(catalog, "erasure", "customer_id", SUBJECT.customer_id, request_id="anon-1")
    document = run(catalog, request, ring, log, tmp_path)

    after = dataset_table(lake, "support_tickets")
    assert after.num_rows == before.num_rows
    ids = set(theirs.column("ticket_id").to_pylist())
    kept = [r for r in after.to_pylist() if r["ticket_id"] in ids]
    assert len(kept) == len(ids)  # the tickets stay ...
    first, last = SUBJECT.full_name.split(" ", 1)
    for row in kept:  # ... unlinked, and their text no longer names the subject
        assert row["customer_id"] is None
        for word in (first, last, SUBJECT.email, SUBJECT.phone, SUBJECT.customer_id):
            assert word.lower() not in row["body"].lower(), word
    original = {r["ticket_id"]: r for r in theirs.to_pylist()}
    assert all(row["opened_at"] == original[row["ticket_id"]]["opened_at"] for row in kept)
    # Other people's tickets, names included, are untouched.
    rest = others(after.filter(_not_in(after, ids)))
    assert rest.equals(others(before.filter(_not_in(before, ids))))
    tickets = by_dataset(document)["support_tickets"]
    assert (tickets["strategy"], tickets["status"]) == ("anonymize", "changed")
    assert tickets["rows_affected"] == len(ids)
    assert "<PERSON>" in " ".join(row["body"] for row in kept)  # masked in place, the rest of the text kept
    assert verify_certificate(document, log).ok


def _not_in(table: pa.Table, ids: set[str]) -> pa.Array:
    return pc.invert(pc.is_in(table.column("ticket_id"), pa.array(sorted(ids))))


def test_anonymize_never_keeps_a_pseudonymized_or_encrypted_value(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    def linkable(data: dict[str, Any]) -> None:
        data["datasets"]["orders"]["columns"]["shipping_address"]["mask"] = {"strategy": "pseudonymize"}

    catalog = catalog_for(lake, tmp_path, linkable)
    theirs = customer_rows(dataset_table(lake, "orders"), SUBJECT.customer_id)
    assert theirs.num_rows >= 2
    request = make_request(catalog, "erasure", "customer_id", SUBJECT.customer_id, request_id="no-token")
    document = run(catalog, request, ring, log, tmp_path)
    orders = dataset_table(lake, "orders")
    kept = orders.filter(pc.is_in(orders.column("order_id"), theirs.column("order_id")))
    # A keyed token would differ per address and could be matched elsewhere; the entity tag is one value.
    assert set(kept.column("shipping_address").to_pylist()) == {"<LOCATION>"}
    assert verify_certificate(document, log).ok

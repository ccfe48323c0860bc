"""Rectification: only the subject's value changes; refused fields are named, new values never quoted."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest
from dsr_support import SAMPLE, SUBJECT, audit_text, by_dataset, catalog_for, dataset_table, digests, run

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.exceptions import DsrError

NEW_PHONE = "+44 20 7946 0999"


def test_rectified_phone_changes_only_the_subjects_row_and_a_rerun_is_a_noop(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    assert NEW_PHONE not in {c.phone for c in SAMPLE.customers}
    catalog = catalog_for(lake)
    before = digests(lake)
    customers = dataset_table(lake, "customers")
    theirs = pc.equal(customers.column("customer_id"), SUBJECT.customer_id)

    request = make_request(
        catalog, "rectification", "email", SUBJECT.email, request_id="rect-1", changes={"phone": NEW_PHONE}
    )
    document = run(catalog, request, ring, log, tmp_path)

    after = dataset_table(lake, "customers")
    expected = customers.set_column(
        customers.schema.get_field_index("phone"),
        "phone",
        pc.if_else(theirs, NEW_PHONE, customers.column("phone")),
    )
    assert after.equals(expected)  # the subject's phone, and nothing else
    changed = {rel for rel, digest in digests(lake).items() if digest != before[rel]}
    assert len(changed) == 1 and changed.pop().startswith("customers/")
    certificate = document["certificate"]
    assert certificate["status"] == "completed"
    datasets = by_dataset(document)
    assert (datasets["customers"]["status"], datasets["customers"]["rows_affected"]) == ("changed", 1)
    assert datasets["customers"]["verification"]["rows_not_corrected"] == 0
    assert {n for n, d in datasets.items() if d["status"] != "no_data"} == {"customers"}
    assert verify_certificate(document, log).ok
    assert NEW_PHONE not in audit_text(log) and NEW_PHONE not in str(document)

    files, size = digests(lake), log.size()
    again = run(catalog, request, ring, log, tmp_path)
    assert digests(lake) == files
    assert again["certificate"]["status"] == "already_completed"
    assert again["certificate"]["changed_in_this_run"] is False
    assert not [e for e in log.entries(size) if "operation" in e.data["details"]]
    assert verify_certificate(again, log).ok


SECRET = "XYZZY-4711"  # part of every refused new value, so a quoted value would show


def _of(field: str, dataset: str, why: str) -> str:
    return f"field {field!r} of dataset {dataset}: {why}"


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("shoe_size", SECRET, "field 'shoe_size': no dataset of the catalog has such a column"),
        ("customer_id", f"C{SECRET}", _of("customer_id", "customers", "cannot be rectified: it is a key")),
        ("customer_id", f"C{SECRET}", _of("customer_id", "orders", "cannot be rectified: it is a key")),
        ("amount", "4711.25", _of("amount", "orders", "cannot be rectified: it is not personal data")),
        ("email", f"{SECRET}-at.example.com", _of("email", "customers", "the new value is not an e-mail")),
        ("phone", f"call {SECRET}", _of("phone", "customers", "the new value is not a phone number")),
        ("birth_date", "1990-02-30", _of("birth_date", "customers", "the new value is not a valid")),
        ("body", SECRET, _of("body", "support_tickets", "cannot be rectified: free text is not a field")),
    ],
    ids=["unknown-field", "key-column", "reference-column", "not-pii", "bad-email", "bad-phone", "bad-date",
         "free-text"],
)  # fmt: skip
def test_refused_rectifications_name_the_field_not_the_value(
    lake: Path, field: str, value: str, why: str
) -> None:
    catalog = catalog_for(lake)
    with pytest.raises(DsrError) as raised:
        make_request(catalog, "rectification", "email", SUBJECT.email, changes={field: value})
    message = str(raised.value)
    assert why in message
    assert value not in message and SECRET not in message and SUBJECT.email not in message


def test_a_rectification_must_name_a_field(lake: Path) -> None:
    with pytest.raises(DsrError, match="rectification: name at least one field to change"):
        make_request(catalog_for(lake), "rectification", "email", SUBJECT.email)

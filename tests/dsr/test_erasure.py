"""Erasure on the sample lake: the subject is gone from every file but held ones, nothing else changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dsr_support import (
    COPIES,
    HOLD_REASON,
    OTHER,
    SUBJECT,
    by_dataset,
    catalog_for,
    customer_rows,
    dataset_table,
    decode,
    digests,
    leaks,
    others,
    raw_identifiers,
    run,
)

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.io import Location, atomic_write
from airflow_aisec.samples import FORMATS, SCHEMAS


@pytest.mark.parametrize(
    ("identity_type", "value"),
    [
        ("email", SUBJECT.email),
        ("customer_id", SUBJECT.customer_id),
        ("email", SUBJECT.email.upper()),
    ],
    ids=["by-email", "by-customer-id", "by-email-in-other-case"],
)
def test_erasure_removes_the_subject_from_every_file_but_held_ones(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, identity_type: str, value: str
) -> None:
    catalog = catalog_for(lake)
    needles = raw_identifiers()
    before = digests(lake)
    holding = leaks(lake, needles.values())
    assert {rel.split("/")[0] for rel in holding} == set(FORMATS)  # the subject is in every dataset
    tables = {name: dataset_table(lake, name) for name in FORMATS}
    their_orders = customer_rows(tables["orders"], SUBJECT.customer_id)
    their_tickets = customer_rows(tables["support_tickets"], SUBJECT.customer_id)
    assert their_orders.num_rows >= 2 and their_tickets.num_rows >= 1

    request = make_request(catalog, "erasure", identity_type, value, request_id="erase-1", reason="art. 17")
    document = run(catalog, request, ring, log, tmp_path)

    # Only the held chargebacks still name the subject, and only by their customer id.
    held = {rel for rel in holding if rel.startswith("chargebacks/")}
    assert held
    assert leaks(lake, needles.values()) == {rel: {SUBJECT.customer_id} for rel in held}
    after = digests(lake)
    assert set(after) == set(before)  # no file was left empty, so none was deleted
    changed = {rel for rel in before if after[rel] != before[rel]}
    assert changed == set(holding) - held  # every file that held the subject, and no other file
    assert all(after[rel] == before[rel] for rel in before if rel.startswith("chargebacks/"))

    # Everyone else's rows are exactly as they were; the subject's orders stay, unlinked and masked.
    for name in ("customers", "support_tickets", "chargebacks"):
        assert others(dataset_table(lake, name)).equals(others(tables[name])), name
    assert customer_rows(dataset_table(lake, "customers"), SUBJECT.customer_id).num_rows == 0
    _check_orders_anonymized(dataset_table(lake, "orders"), tables["orders"], their_orders)

    certificate = document["certificate"]
    assert certificate["status"] == "completed_with_holds"
    datasets = by_dataset(document)
    chargebacks = datasets["chargebacks"]
    assert chargebacks["status"] == "held" and chargebacks["legal_hold"]["reason"] == HOLD_REASON
    assert chargebacks["files"] == [] and not chargebacks["changed_in_this_run"]
    assert certificate["summary"]["datasets_held"] == ["chargebacks"]
    assert {n: d["rows_affected"] for n, d in datasets.items()} == {
        "customers": 1,
        "orders": their_orders.num_rows,
        "support_tickets": their_tickets.num_rows,
        "chargebacks": customer_rows(tables["chargebacks"], SUBJECT.customer_id).num_rows,
        **dict.fromkeys(COPIES, 0),
    }
    listed = {f["uri"]: f for d in datasets.values() for f in d["files"]}
    assert {Location.parse(lake / rel).uri for rel in changed} == set(listed)
    for rel in changed:
        entry = listed[Location.parse(lake / rel).uri]
        assert (entry["sha256_before"], entry["sha256_after"]) == (before[rel], after[rel])
    assert all(d["verification"]["verified"] for d in datasets.values())
    report = verify_certificate(document, log)
    assert report.ok, report.problems
    assert log.verify().ok


def _check_orders_anonymized(now: pa.Table, then: pa.Table, theirs: pa.Table) -> None:
    """The subject's orders are all still there, with the same amounts, but unlinked and masked."""
    ids = theirs.column("order_id")
    assert now.num_rows == then.num_rows
    kept = now.filter(pc.is_in(now.column("order_id"), ids)).sort_by("order_id")
    theirs = theirs.sort_by("order_id")
    for column in ("order_id", "amount", "ordered_at"):
        assert kept.column(column).equals(theirs.column(column)), column
    assert kept.column("customer_id").null_count == kept.num_rows
    addresses = kept.column("shipping_address").to_pylist()
    assert None not in addresses and not set(addresses) & set(theirs.column("shipping_address").to_pylist())
    rest_now = now.filter(pc.invert(pc.is_in(now.column("order_id"), ids)))
    assert rest_now.equals(then.filter(pc.invert(pc.is_in(then.column("order_id"), ids))))


@pytest.mark.parametrize("with_hold", [True, False], ids=["chargebacks-held", "no-hold"])
def test_erasure_twice_changes_nothing(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, with_hold: bool
) -> None:
    def no_hold(data: dict[str, Any]) -> None:
        del data["datasets"]["chargebacks"]["legal_hold"]

    catalog = catalog_for(lake) if with_hold else catalog_for(lake, tmp_path, no_hold)
    late = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)  # received 40 days ago: the deadline has passed
    request = make_request(
        catalog, "erasure", "email", SUBJECT.email, request_id="erase-twice", received_at=late
    )
    first = run(catalog, request, ring, log, tmp_path)
    assert first["certificate"]["changed_in_this_run"]
    assert first["certificate"]["deadline_met"] is False
    files = digests(lake)
    size = log.size()

    # The same request again, as received now: it keeps the original received time, hence its deadline.
    again = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-twice")
    second = run(catalog, again, ring, log, tmp_path)

    assert digests(lake) == files
    certificate = second["certificate"]
    assert certificate["request"]["received_at"] == first["certificate"]["request"]["received_at"]
    assert certificate["deadline_met"] is False
    assert certificate["changed_in_this_run"] is False
    assert not any(d["changed_in_this_run"] for d in certificate["datasets"])
    assert certificate["status"] == ("completed_with_holds" if with_hold else "already_completed")
    new = [e.data for e in log.entries(size)]
    assert new and not [e for e in new if "operation" in e["details"]]  # no intent, no file outcome
    assert certificate["summary"]["files_rewritten"] == certificate["summary"]["files_deleted"] == 0
    # The second certificate still proves the changes made by the first run.
    first_files = {f["uri"] for d in first["certificate"]["datasets"] for f in d["files"]}
    assert first_files == {f["uri"] for d in certificate["datasets"] for f in d["files"]}
    assert verify_certificate(second, log).ok
    assert verify_certificate(first, log).ok  # still true: the log only grew


def test_unknown_subject_is_reported_as_no_data_found(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    before = digests(lake)
    request = make_request(
        catalog, "erasure", "email", "nobody.at.all@example.invalid", request_id="erase-none"
    )
    document = run(catalog, request, ring, log, tmp_path)
    assert digests(lake) == before
    certificate = document["certificate"]
    assert certificate["status"] == "no_data_found"
    assert certificate["changed_in_this_run"] is False
    assert {d["status"] for d in certificate["datasets"]} == {"no_data"}
    assert all(d["rows_affected"] == 0 and d["files"] == [] for d in certificate["datasets"])
    assert not [e for e in log.entries() if "operation" in e.data["details"]]
    assert verify_certificate(document, log).ok


def _write_tickets(path: Path, rows: list[dict[str, Any]]) -> None:
    schema = SCHEMAS["support_tickets"]
    with atomic_write(Location.parse(path), "jsonl", schema) as writer:
        writer.write(pa.Table.from_pylist(rows, schema=schema))


def test_mentions_in_other_subjects_tickets_are_redacted_and_the_tickets_kept(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    opened = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)
    quoting = lake / "support_tickets" / "support_tickets-quoting.jsonl"
    _write_tickets(
        quoting,
        [
            {
                "ticket_id": "T900001",
                "customer_id": OTHER.customer_id,
                "body": f"Please forward my invoice to {SUBJECT.email}, she pays it.",
                "opened_at": opened,
            },
            {
                "ticket_id": "T900002",
                "customer_id": OTHER.customer_id,
                "body": f"Same for {SUBJECT.email.upper()} please",
                "opened_at": opened,
            },
            {
                "ticket_id": "T900003",
                "customer_id": OTHER.customer_id,
                "body": "Thanks!",
                "opened_at": opened,
            },
        ],
    )
    # Not whole-word mentions: these are other addresses and must stay as they are.
    near_misses = lake / "support_tickets" / "support_tickets-near-misses.jsonl"
    _write_tickets(
        near_misses,
        [
            {
                "ticket_id": "T900004",
                "customer_id": OTHER.customer_id,
                "body": f"Mail x{SUBJECT.email} or {SUBJECT.email}x, customer {SUBJECT.customer_id}7",
                "opened_at": opened,
            }
        ],
    )
    near_miss_bytes = near_misses.read_bytes()
    written = decode(quoting).to_pylist()
    catalog = catalog_for(lake)

    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-mentions")
    document = run(catalog, request, ring, log, tmp_path)

    kept = decode(quoting).to_pylist()
    assert [(r["ticket_id"], r["customer_id"]) for r in kept] == [
        ("T900001", OTHER.customer_id),
        ("T900002", OTHER.customer_id),
        ("T900003", OTHER.customer_id),
    ]
    assert [r["body"] for r in kept] == [
        "Please forward my invoice to <REDACTED>, she pays it.",
        "Same for <REDACTED> please",
        "Thanks!",
    ]
    assert [{**r, "body": None} for r in kept] == [{**r, "body": None} for r in written]
    assert near_misses.read_bytes() == near_miss_bytes
    tickets = by_dataset(document)["support_tickets"]
    assert tickets["mentions_masked"] == 2
    assert tickets["verification"]["mentions_remaining"] == 0
    assert verify_certificate(document, log).ok


def test_a_dry_run_reports_what_would_change_and_changes_nothing(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    before = digests(lake)
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-dry", dry_run=True)
    document = run(catalog, request, ring, log, tmp_path)
    assert digests(lake) == before
    certificate = document["certificate"]
    assert certificate["status"] == "dry_run" and certificate["keys_shredded"] == []
    statuses = {n: d["status"] for n, d in by_dataset(document).items()}
    assert statuses == {
        "customers": "dry_run",
        "orders": "dry_run",
        "support_tickets": "dry_run",
        "chargebacks": "held",
        **dict.fromkeys(COPIES, "no_data"),
    }
    assert by_dataset(document)["orders"]["rows_affected"] >= 2
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())
    assert not [e for e in log.entries() if "operation" in e.data["details"]]
    assert verify_certificate(document, log).ok


def test_an_email_stored_in_another_case_is_still_the_subjects(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    stored = SUBJECT.email.title()  # e.g. Jane.Doe12@Example.Com
    assert stored != SUBJECT.email
    [path] = [
        p for p in (lake / "customers").glob("*.parquet") if SUBJECT.email in str(decode(p).to_pylist())
    ]
    table = decode(path)
    emails = pc.if_else(pc.equal(table.column("email"), SUBJECT.email), stored, table.column("email"))
    pq.write_table(table.set_column(table.schema.get_field_index("email"), "email", emails), path)
    catalog = catalog_for(lake)

    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-case")
    document = run(catalog, request, ring, log, tmp_path)

    assert stored not in decode(path).column("email").to_pylist()
    assert decode(path).num_rows == table.num_rows - 1
    assert by_dataset(document)["customers"]["rows_affected"] == 1
    assert customer_rows(dataset_table(lake, "orders"), SUBJECT.customer_id).num_rows == 0
    assert verify_certificate(document, log).ok


def test_a_file_holding_only_the_subject_is_deleted_not_left_empty(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    only = lake / "support_tickets" / "support_tickets-only-them.jsonl"
    opened = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    _write_tickets(
        only,
        [{"ticket_id": "T900010", "customer_id": SUBJECT.customer_id, "body": "Hello", "opened_at": opened}],
    )
    catalog = catalog_for(lake)
    request = make_request(catalog, "erasure", "customer_id", SUBJECT.customer_id, request_id="erase-file")
    document = run(catalog, request, ring, log, tmp_path)
    assert not only.exists()
    assert not [p for p in only.parent.iterdir() if p.name.startswith(".")]  # no staging file left behind
    files = {f["uri"]: f for f in by_dataset(document)["support_tickets"]["files"]}
    deleted = files[Location.parse(only).uri]
    assert (deleted["action"], deleted["rows_before"], deleted["rows_after"]) == ("delete", 1, 0)
    assert deleted["sha256_after"] is None
    assert document["certificate"]["summary"]["files_deleted"] == 1
    assert verify_certificate(document, log).ok

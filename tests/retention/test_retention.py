"""Retention enforcement: plans, atomic purges, legal and per-subject holds, bad dates, crashes, S3, CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from builders import EXAMPLE, ROOT, catalog_for, digests, lake_copy, open_log
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.cli.main import app
from airflow_aisec.crypto.datasets import encrypt_files, reader_for
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.crypto.parquet import is_encrypted_parquet
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.io import Location, S3Options, list_files, read_dataset
from airflow_aisec.io.storage import s3_client
from airflow_aisec.retention import (
    Hold,
    HoldList,
    apply_catalog,
    apply_dataset,
    plan_catalog,
    plan_dataset,
)
from airflow_aisec.retention import plan as retention_plan
from airflow_aisec.retention.dates import to_instants
from airflow_aisec.rewrite import source as rewrite
from airflow_aisec.samples import FORMATS, TIME_COLUMNS

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
PURGED = ("customers", "orders", "support_tickets")
runner = CliRunner()


# --- helpers --------------------------------------------------------------------------------------------


@pytest.fixture
def lake(tmp_path: Path, sample_lake_dir: Path) -> Path:
    return lake_copy(sample_lake_dir, tmp_path)


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    return tmp_path / "keyring.json"


@pytest.fixture
def audit(tmp_path: Path, keyring_path: Path) -> Iterator[AuditLog]:
    with open_log(tmp_path, str(keyring_path)) as log:
        yield log


def table(root: Path, dataset: str) -> pa.Table:
    return pa.Table.from_batches(list(read_dataset(Location.parse(root / dataset), FORMATS[dataset])))


def instants(column: pa.ChunkedArray) -> pa.Array:
    return to_instants(column.combine_chunks())


def expired_mask(data: pa.Table, dataset: str, cutoff: dt.datetime) -> pa.Array:
    return pc.fill_null(pc.less(instants(data.column(TIME_COLUMNS[dataset])), pa.scalar(cutoff)), False)


def cutoffs(catalog: Catalog) -> dict[str, dt.datetime]:
    return {n: d.retention.cutoff(AS_OF) for n, d in catalog.datasets.items() if d.retention is not None}


def audit_bodies(log: AuditLog) -> list[str]:
    return [json.dumps(e.data) for e in log.entries()]


# --- the whole catalog ------------------------------------------------------------------------------------


def test_apply_purges_expired_rows_keeps_holds_and_reruns_are_noops(lake: Path, audit: AuditLog) -> None:
    catalog = catalog_for(lake)
    limits = cutoffs(catalog)
    before = {name: table(lake, name) for name in FORMATS}
    files_before = digests(lake)
    expired = {name: _true(expired_mask(before[name], name, limits[name])) for name in PURGED}
    assert all(expired.values())

    untouched = [rel for rel in files_before if not _expired_in_file(lake, rel, limits)]
    plans = {p.dataset: p for p in plan_catalog(catalog, AS_OF)}
    assert {n: plans[n].rows_to_purge for n in PURGED} == expired
    assert plans["chargebacks"].legal_hold is not None
    assert plans["chargebacks"].as_dict()["legal_hold"] == {
        "reason": "litigation 2026-17",
        "until": "2027-06-30",
    }
    results = {r.dataset: r for r in apply_catalog(list(plans.values()), catalog, audit=audit)}

    for name in PURGED:
        after = table(lake, name)
        assert after.num_rows == before[name].num_rows - expired[name]
        assert results[name].rows_removed == expired[name]
        assert not _true(expired_mask(after, name, limits[name]))
        assert not results[name].failed
    # Files that held no expired row were not touched at all.
    files_after = digests(lake)
    assert untouched and all(files_after[rel] == files_before[rel] for rel in untouched)
    assert results["chargebacks"].legal_hold == "litigation 2026-17"
    assert table(lake, "chargebacks").equals(before["chargebacks"])

    size = audit.size()
    again = plan_catalog(catalog, AS_OF)
    assert all(f.action == "keep" for p in again for f in p.files)
    apply_catalog(again, catalog, audit=audit)
    assert digests(lake) == files_after
    new = [e.data for e in audit.entries(size)]
    assert {e["outcome"] for e in new} <= {"noop"} and len(new) <= len(PURGED)
    size = audit.size()
    apply_catalog(plan_catalog(catalog, AS_OF), catalog, audit=audit)
    assert audit.size() == size  # the same day: nothing at all

    audit.checkpoint()  # a log without any signed checkpoint does not verify
    assert audit.verify().ok
    ids = set(before["customers"].column("customer_id").to_pylist())
    bodies = "\n".join(audit_bodies(audit))
    assert not [i for i in ids if i in bodies]
    outcomes = [e.data for e in audit.entries() if e.data["outcome"] == "success"]
    assert sum(e["rows"] for e in outcomes) == sum(expired.values())
    assert all(e["details"]["sha256_before"] and e["inputs"][0]["uri"] for e in outcomes)


def _expired_in_file(lake: Path, rel: str, limits: dict[str, dt.datetime]) -> bool:
    name = rel.split("/")[0]
    one = pa.Table.from_batches(list(read_dataset(Location.parse(lake / rel), FORMATS[name])))
    return name != "chargebacks" and bool(_true(expired_mask(one, name, limits[name])))


def _true(mask: pa.Array) -> int:
    return int(pc.sum(mask.cast(pa.int64())).as_py() or 0)


# --- per-subject holds ----------------------------------------------------------------------------------


def test_per_subject_hold_keeps_expired_rows_until_removed_or_expired(
    lake: Path, tmp_path: Path, audit: AuditLog
) -> None:
    catalog = catalog_for(lake)
    orders = catalog.dataset("orders")
    cutoff = cutoffs(catalog)["orders"]
    before = table(lake, "orders")
    old = before.filter(expired_mask(before, "orders", cutoff))
    subject = old.column("customer_id")[0].as_py()
    theirs = old.filter(pc.equal(old.column("customer_id"), subject)).num_rows
    holds = HoldList(tmp_path / "holds.json")
    holds.add(audit.pseudonym(subject), "case 42", dt.date(2027, 1, 1))
    assert subject not in (tmp_path / "holds.json").read_text()
    assert stat.S_IMODE(os.stat(tmp_path / "holds.json").st_mode) == 0o600

    plan = plan_dataset(
        catalog, orders, AS_OF, holds=holds.active(AS_OF.date()), pseudonymize=audit.pseudonym
    )
    assert plan.rows_held == theirs
    assert plan.rows_to_purge == old.num_rows - theirs
    assert all(f.method == "scan" for f in plan.files if f.expired)  # holds need the subject column
    result = apply_dataset(plan, catalog, orders, audit=audit)
    assert result.as_dict()["rows_held"] == theirs
    kept = table(lake, "orders").filter(expired_mask(table(lake, "orders"), "orders", cutoff))
    assert kept.num_rows == theirs
    assert set(kept.column("customer_id").to_pylist()) == {subject}

    # A hold that ended yesterday no longer protects anything (``until`` is inclusive).
    holds.add(audit.pseudonym(subject), "case 42", AS_OF.date() - dt.timedelta(days=1))
    assert holds.active(AS_OF.date() - dt.timedelta(days=1))
    assert holds.active(AS_OF.date()) == {}
    holds.add(audit.pseudonym(subject), "case 42")
    assert holds.remove(audit.pseudonym(subject)) and holds.list() == []
    plan = plan_dataset(
        catalog, orders, AS_OF, holds=holds.active(AS_OF.date()), pseudonymize=audit.pseudonym
    )
    assert plan.rows_to_purge == theirs and plan.rows_held == 0
    apply_dataset(plan, catalog, orders, audit=audit)
    assert not _true(expired_mask(table(lake, "orders"), "orders", cutoff))
    assert subject not in "\n".join(audit_bodies(audit))


def test_holds_store_pseudonyms_only(tmp_path: Path) -> None:
    holds = HoldList(tmp_path / "h.json")
    with pytest.raises(ValueError, match="pseudonyms only"):
        holds.add("C0001", "case")
    assert not (tmp_path / "h.json").exists()


# --- bad dates ------------------------------------------------------------------------------------------


def test_bad_dates_are_kept_reported_and_fail_the_run(lake: Path, tmp_path: Path, keyring_path: Path) -> None:
    target = lake / "support_tickets" / "support_tickets-2021.jsonl"
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    rows[0]["opened_at"] = "not a date"
    rows[1]["opened_at"] = None
    target.write_text("".join(json.dumps(r) + "\n" for r in rows))
    catalog = catalog_for(lake)
    cutoff = cutoffs(catalog)["support_tickets"]
    before = table(lake, "support_tickets")
    expired = _true(expired_mask(before, "support_tickets", cutoff))
    plan = plan_dataset(catalog, catalog.dataset("support_tickets"), AS_OF)
    assert plan.failed and plan.bad_dates == 2 and plan.rows_to_purge == expired
    (message,) = plan.errors
    assert "support_tickets" in message and "support_tickets-2021.jsonl" in message and "opened_at" in message
    assert "not a date" not in message
    assert next(f for f in plan.files if f.uri.endswith("2021.jsonl")).action == "rewrite"

    log = f"sqlite:///{tmp_path / 'audit.db'}"
    result = runner.invoke(
        app,
        ["--log", log, "--keyring", str(keyring_path), "retention", "apply", "--catalog", str(EXAMPLE),
         "--var", f"lake={lake}", "--as-of", "2026-11-01", "--holds", str(tmp_path / "h.json"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    tickets = next(d for d in out["datasets"] if d["dataset"] == "support_tickets")
    assert tickets["failed"] and tickets["bad_dates"] == 2 and "opened_at" in tickets["errors"][0]
    left = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["ticket_id"] for r in left] == [rows[0]["ticket_id"], rows[1]["ticket_id"]]
    assert [r["opened_at"] for r in left] == ["not a date", None]
    # Every other expired row is still purged.
    after = table(lake, "support_tickets")
    assert _true(expired_mask(after, "support_tickets", cutoff)) == 0
    assert after.num_rows == before.num_rows - expired
    with AuditLog.open(log, keyring=str(keyring_path)) as opened:
        failures = [e.data for e in opened.entries() if e.data["outcome"] == "failure"]
    assert [f["details"]["bad_dates"][0]["bad_dates"] for f in failures] == [2]


def test_dates_of_every_kind_are_understood() -> None:
    zoned = pa.array(
        [dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC), None], pa.timestamp("ms", tz="Europe/Paris")
    )
    naive = pa.array([dt.datetime(2020, 1, 1, 12), dt.datetime(2021, 1, 1)], pa.timestamp("ns"))
    dates = pa.array([dt.date(2020, 1, 1), None], pa.date32())
    text = pa.array(
        ["2020-01-01T12:00:00+00:00", "2020-01-01 13:00:00+01:00", "2020-01-01", "garbage", "", None]
    )
    noon = dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)
    midnight = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert to_instants(zoned).to_pylist() == [noon, None]
    assert to_instants(naive).to_pylist() == [noon, dt.datetime(2021, 1, 1, tzinfo=dt.UTC)]
    assert to_instants(dates).to_pylist() == [midnight, None]
    assert to_instants(text).to_pylist() == [noon, noon, midnight, None, None, None]
    assert to_instants(pa.array([1, 2])).null_count == 2  # numbers are no dates: bad, hence kept


def test_csv_rewrite_keeps_values_as_written(lake: Path, tmp_path: Path, audit: AuditLog) -> None:
    target = lake / "chargebacks" / "chargebacks-2025.csv"
    target.write_text(
        '"customer_id","reason","filed_at"\n'
        '"007","duplicate charge",2025-01-02 03:04:05.000000Z\n'
        '"0042","fraudulent, twice",2025-12-01 00:00:00.000000Z\n'
    )

    def no_hold(data: dict[str, Any]) -> None:
        del data["datasets"]["chargebacks"]["legal_hold"]

    catalog = catalog_for(lake, tmp_path, no_hold)
    chargebacks = catalog.dataset("chargebacks")
    plan = plan_dataset(catalog, chargebacks, AS_OF)
    assert plan.legal_hold is None and plan.rows_to_purge > 0
    apply_dataset(plan, catalog, chargebacks, audit=audit)
    rows = target.read_text().splitlines()
    assert len(rows) == 2 and '"0042"' in rows[1] and "fraudulent, twice" in rows[1]
    assert "2025-12-01 00:00:00" in rows[1]


# --- crash safety ---------------------------------------------------------------------------------------

CHILD = r"""
import contextlib, datetime as dt, os, signal, sys
from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.retention import apply_catalog, plan_catalog
from airflow_aisec.rewrite import journal, source as rewrite

catalog_path, lake, log_uri, keyring, mode, limit = sys.argv[1:]
count = 0


def bump():
    global count
    count += 1
    if count >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


real_write, real_delete = rewrite.atomic_write, journal.delete_file


@contextlib.contextmanager
def write(*args, **kwargs):
    with real_write(*args, **kwargs) as writer:
        if mode == "mid-write":
            first = writer.write

            def write_then_die(data):
                first(data)
                bump()  # killed with the new version half written, before the swap

            writer.write = write_then_die
        yield writer
    if mode == "after-swap":
        bump()


def delete(*args, **kwargs):
    gone = real_delete(*args, **kwargs)
    if mode == "after-swap":
        bump()
    return gone


rewrite.atomic_write, journal.delete_file = write, delete
catalog = load_catalog(catalog_path, {"lake": lake})
as_of = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
with AuditLog.open(log_uri, keyring=keyring) as log:
    apply_catalog(plan_catalog(catalog, as_of), catalog, audit=log)
print("finished without being killed")
"""


def _uninterrupted(sample_lake_dir: Path, tmp_path: Path) -> dict[str, str]:
    reference = lake_copy(sample_lake_dir, tmp_path, "reference")
    catalog = catalog_for(reference)
    with open_log(tmp_path, str(tmp_path / "ref.json"), "ref.db") as log:
        apply_catalog(plan_catalog(catalog, AS_OF), catalog, audit=log)
    return digests(reference)


@pytest.mark.parametrize(
    ("mode", "limit"),
    [("after-swap", 1), ("after-swap", 8), ("mid-write", 1)],
    ids=["killed-after-first-delete", "killed-after-first-rewrite", "killed-mid-rewrite"],
)
def test_killed_run_leaves_old_or_new_files_and_a_rerun_completes(
    lake: Path, sample_lake_dir: Path, tmp_path: Path, keyring_path: Path, mode: str, limit: int
) -> None:
    before = digests(lake)
    expected = _uninterrupted(sample_lake_dir, tmp_path)
    log_uri = f"sqlite:///{tmp_path / 'audit.db'}"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(EXAMPLE), str(lake), log_uri, str(keyring_path), mode, str(limit)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ),
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr

    crashed = digests(lake)
    assert set(crashed) <= set(before)
    for rel, digest in crashed.items():
        assert digest in {before[rel], expected.get(rel)}, rel  # old or new, never partial
    assert crashed != before  # every kill point comes after the first deletes
    catalog = catalog_for(lake)
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        results = apply_catalog(plan_catalog(catalog, AS_OF), catalog, audit=log)
        log.checkpoint()  # the killed run signed none: this one does (the log was created with this keyring)
        assert log.verify().ok
        entries = [e.data for e in log.entries() if e.data["details"].get("operation")]
    assert digests(lake) == expected
    assert not any(r.failed for r in results)
    by_op: dict[str, list[str]] = {}
    for entry in entries:
        by_op.setdefault(entry["details"]["operation"], []).append(entry["outcome"])
    assert all(sorted(outcomes) == ["intent", "success"] for outcomes in by_op.values()), by_op
    recovered = [e for e in entries if e["details"].get("recovered")]
    assert len(recovered) == (1 if mode == "after-swap" else 0)


def test_intent_left_by_an_interrupted_run_is_closed_by_a_later_run(
    lake: Path, monkeypatch: pytest.MonkeyPatch, audit: AuditLog
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    real_write = rewrite.atomic_write

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # like a kill: not caught, the intent stays without outcome

    monkeypatch.setattr(rewrite, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        apply_dataset(plan_dataset(catalog, customers, AS_OF), catalog, customers, audit=audit)
    monkeypatch.setattr(rewrite, "atomic_write", real_write)
    # The next day the cutoff differs, so the interrupted operation is not redone under its id: it is closed.
    later = AS_OF + dt.timedelta(days=1)
    result = apply_dataset(plan_dataset(catalog, customers, later), catalog, customers, audit=audit)
    assert not result.failed
    by_op: dict[str, list[str]] = {}
    for entry in audit.entries():
        by_op.setdefault(entry.data["details"].get("operation", ""), []).append(entry.data["outcome"])
    outcomes = sorted(tuple(o) for op, o in by_op.items() if op)
    assert ("intent", "skipped") in outcomes
    assert all(o in {("intent", "skipped"), ("intent", "success")} for o in outcomes)
    audit.checkpoint()  # a log without any signed checkpoint does not verify
    assert audit.verify().ok


# --- Parquet statistics ---------------------------------------------------------------------------------


def test_parquet_statistics_skip_reading_new_files_and_delete_old_ones_unread(
    lake: Path, monkeypatch: pytest.MonkeyPatch, audit: AuditLog
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    reads: list[str] = []
    writes: list[str] = []
    real_read, real_write = retention_plan.read_file, rewrite.atomic_write

    def counting_read(location: Any, *args: Any, **kwargs: Any) -> Any:
        where = location.location if hasattr(location, "location") else location
        reads.append(where.name)
        return real_read(location, *args, **kwargs)

    def counting_write(target: Location, *args: Any, **kwargs: Any) -> Any:
        writes.append(target.name)
        return real_write(target, *args, **kwargs)

    monkeypatch.setattr(retention_plan, "read_file", counting_read)
    monkeypatch.setattr(rewrite, "atomic_write", counting_write)
    plan = plan_dataset(catalog, customers, AS_OF)
    by_name = {f.location.name: f for f in plan.files}
    newer, older, mixed = (
        by_name["customers-2025.parquet"],
        by_name["customers-2016.parquet"],
        by_name["customers-2023.parquet"],
    )
    assert (newer.action, newer.method) == ("keep", "statistics")
    assert (older.action, older.method) == ("delete", "statistics")
    assert (mixed.action, mixed.method) == ("rewrite", "scan")
    assert set(reads) == {"customers-2023.parquet"}
    apply_dataset(plan, catalog, customers, audit=audit)
    assert set(reads) == {"customers-2023.parquet"} and writes == ["customers-2023.parquet"]
    assert not (lake / "customers" / "customers-2016.parquet").exists()

    # With a per-subject hold, an all-expired file must be scanned for held subjects after all.
    plan = plan_dataset(
        catalog_for(lake), customers, AS_OF + dt.timedelta(days=400),
        holds={audit.pseudonym("nobody"): Hold(audit.pseudonym("nobody"), "x")}, pseudonymize=audit.pseudonym,
    )  # fmt: skip
    assert {f.method for f in plan.files if f.action == "delete"} == {"scan"}


# --- encryption -----------------------------------------------------------------------------------------


def test_encrypted_dataset_stays_encrypted_after_retention(
    lake: Path, keyring_path: Path, audit: AuditLog
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    assert customers.encryption is not None
    keyring = LocalKeyring(keyring_path)
    before = table(lake, "customers")
    location = Location.parse(lake / "customers")
    encrypt_files(
        location, location, "parquet", LocalKeyProvider(keyring), customers.encryption.key,
        columns=customers.encryption.columns,
    )  # fmt: skip
    reader = reader_for(KeySource(catalog, keyring), customers)
    plan = plan_dataset(catalog, customers, AS_OF, reader=reader)
    assert all(f.encrypted and f.method == "scan" for f in plan.files)
    result = apply_dataset(plan, catalog, customers, keys=KeySource(catalog, keyring), audit=audit)
    assert not result.failed and result.rows_removed == plan.rows_to_purge > 0

    remaining = list_files(location, "parquet")
    assert remaining and all(
        is_encrypted_parquet(i.location.filesystem(), i.location.path) for i in remaining
    )
    assert len(list((lake / "customers").glob("_KEY_MATERIAL_FOR_*"))) == len(remaining)
    decrypted = pa.Table.from_batches([b for info in remaining for b in reader(info, "parquet")])
    wanted = before.filter(pc.invert(expired_mask(before, "customers", cutoffs(catalog)["customers"])))
    assert decrypted.sort_by("customer_id").equals(wanted.sort_by("customer_id"))


# --- S3 versioned bucket --------------------------------------------------------------------------------


def test_s3_versioned_bucket_purges_noncurrent_versions(
    sample_lake_dir: Path, tmp_path: Path, s3_options: S3Options, bucket: str, audit: AuditLog
) -> None:
    client = s3_client(s3_options)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for path in sorted((sample_lake_dir / "orders").glob("*.parquet")):
        for _ in range(2):  # an older version with the same rows exists too
            client.put_object(Bucket=bucket, Key=f"lake/orders/{path.name}", Body=path.read_bytes())

    def versioned(data: dict[str, Any]) -> None:
        data["datasets"]["orders"]["retention"]["purge_versions"] = True

    catalog = catalog_for(f"s3://{bucket}/lake", tmp_path, versioned)
    orders = catalog.dataset("orders")
    as_of = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)  # the cutoff falls inside 2019: one rewrite, one delete
    plan = plan_dataset(catalog, orders, as_of, s3=s3_options)
    actions = {f.location.name: f.action for f in plan.files}
    assert actions["orders-2018.parquet"] == "delete" and actions["orders-2019.parquet"] == "rewrite"
    result = apply_dataset(plan, catalog, orders, audit=audit)
    assert not result.failed and all(f.versions_purged for f in result.files)

    listing = client.list_object_versions(Bucket=bucket, Prefix="lake/orders/")
    assert not listing.get("DeleteMarkers")
    versions: dict[str, list[bool]] = {}
    for version in listing["Versions"]:
        versions.setdefault(version["Key"].rsplit("/", 1)[1], []).append(version["IsLatest"])
    assert "orders-2018.parquet" not in versions  # deleted: no version of it is left
    assert versions["orders-2019.parquet"] == [True]  # rewritten: only the new version
    assert sorted(versions["orders-2020.parquet"]) == [False, True]  # untouched: both versions stay
    current = pa.Table.from_batches(
        list(read_dataset(Location.parse(f"s3://{bucket}/lake/orders", s3_options), "parquet"))
    )
    cutoff = orders.retention.cutoff(as_of) if orders.retention else as_of
    assert not _true(expired_mask(current, "orders", cutoff)) and current.num_rows > 0


# --- CLI ------------------------------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> Any:
    return runner.invoke(
        app, ["--log", f"sqlite:///{tmp_path / 'audit.db'}", "--keyring", str(tmp_path / "k.json"), *args]
    )


def test_cli_plan_apply_and_exit_codes(lake: Path, tmp_path: Path) -> None:
    common = ["--catalog", str(EXAMPLE), "--var", f"lake={lake}", "--holds", str(tmp_path / "h.json")]
    planned = _cli(tmp_path, "retention", "plan", *common, "--as-of", "2026-11-01", "--json")
    assert planned.exit_code == 0, planned.output
    out = json.loads(planned.stdout)
    assert out["as_of"] == "2026-11-01T00:00:00+00:00"
    assert [d["dataset"] for d in out["datasets"]] == [
        "customers",
        "orders",
        "support_tickets",
        "chargebacks",
        "support_tickets_landing",
        "support_tickets_masked",
    ]
    first = out["datasets"][0]
    assert {"files_to_rewrite", "files_to_delete", "rows_to_purge", "rows_held", "bad_dates", "files"} <= set(
        first
    )
    assert {"uri", "action", "rows", "purge", "held", "bad_dates"} <= set(first["files"][0])
    assert out["datasets"][3]["legal_hold"]["reason"] == "litigation 2026-17"

    text = _cli(tmp_path, "retention", "plan", *common, "--as-of", "2026-11-01", "--dataset", "orders")
    assert text.exit_code == 0 and "orders:" in text.stdout and "customers" not in text.stdout
    assert _cli(tmp_path, "retention", "plan", *common, "--as-of", "soon").exit_code == 2
    assert _cli(tmp_path, "retention", "plan", *common, "--dataset", "nope").exit_code == 2
    assert _cli(tmp_path, "retention", "apply", *common, "--dataset", "nope").exit_code == 2

    applied = _cli(tmp_path, "retention", "apply", *common, "--as-of", "2026-11-01", "--json")
    assert applied.exit_code == 0, applied.output
    removed = {d["dataset"]: d["rows_removed"] for d in json.loads(applied.stdout)["datasets"]}
    assert removed == {d["dataset"]: d["rows_to_purge"] for d in out["datasets"]}
    again = _cli(tmp_path, "retention", "apply", *common, "--as-of", "2026-11-01")
    assert again.exit_code == 0 and "0 row(s) removed" in again.stdout


def test_cli_holds_never_show_raw_ids(lake: Path, tmp_path: Path) -> None:
    holds = ["--holds", str(tmp_path / "h.json")]
    customers = table(lake, "customers")
    old = customers.filter(expired_mask(customers, "customers", cutoffs(catalog_for(lake))["customers"]))
    subject = old.column("customer_id")[0].as_py()
    added = _cli(
        tmp_path,
        "holds",
        "add",
        "--subject-id",
        subject,
        "--reason",
        "case 9",
        "--until",
        "2027-01-31",
        *holds,
    )
    assert added.exit_code == 0, added.output
    assert subject not in added.output and "hmac-sha256:" in added.output
    listed = _cli(tmp_path, "holds", "list", "--json", *holds)
    (hold,) = json.loads(listed.stdout)["holds"]
    assert hold["until"] == "2027-01-31" and hold["reason"] == "case 9" and subject not in listed.output
    assert _cli(tmp_path, "holds", "list", "--active-on", "2027-02-01", *holds).stdout.strip() == ""
    assert (
        _cli(
            tmp_path, "holds", "add", "--subject-id", subject, "--reason", "x", "--until", "soon", *holds
        ).exit_code
        == 2
    )

    # A hold seen by the plan: the subject's expired rows are reported held.
    common = ["--catalog", str(EXAMPLE), "--var", f"lake={lake}", *holds, "--as-of", "2026-11-01", "--json"]
    planned = json.loads(_cli(tmp_path, "retention", "plan", *common).stdout)
    assert planned["datasets"][0]["rows_held"] == 1

    removed = _cli(tmp_path, "holds", "remove", "--subject-id", subject, *holds)
    assert removed.exit_code == 0 and subject not in removed.output
    assert _cli(tmp_path, "holds", "remove", "--subject-id", subject, *holds).exit_code == 1
    assert subject not in (tmp_path / "h.json").read_text()
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=str(tmp_path / "k.json")) as log:
        entries = [e.data for e in log.entries()]
        pseudonym = log.pseudonym(subject)
    assert [e["action"] for e in entries] == ["hold.add", "hold.remove"]
    assert all(e["subject"] == pseudonym for e in entries)
    assert subject not in json.dumps(entries)

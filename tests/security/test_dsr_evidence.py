"""Evidence that cannot lie: each test makes a data-subject request's evidence wrong for real (the subject
index, the lake, a path, free text, a copy), then shows the request refuses or its evidence says so."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from dsr_support import EXAMPLE, OTHER, SAMPLE, SUBJECT, by_dataset, catalog_for, dataset_table, run
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.cli.main import app
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.dsr.certificate import dumps
from airflow_aisec.dsr.index import SubjectIndex, refresh_catalog
from airflow_aisec.dsr.scan import catalog_scanner
from airflow_aisec.exceptions import CatalogError, EmptyDatasetError
from airflow_aisec.retention import plan_dataset
from airflow_aisec.samples import FORMATS

runner = CliRunner()


def aisec(tmp_path: Path, ring: LocalKeyring, *args: str) -> Any:
    """``aisec`` with the test's audit log and keyring."""
    return runner.invoke(
        app, ["--log", f"sqlite:///{tmp_path / 'audit.db'}", "--keyring", str(ring.path), *args]
    )


def _holding(lake: Path, dataset: str, customer_id: str = SUBJECT.customer_id) -> list[Path]:
    """The files of a dataset with a row of ``customer_id``."""
    found = []
    for path in sorted((lake / dataset).iterdir()):
        if path.suffix == ".parquet":
            ids = pq.read_table(path, columns=["customer_id"])["customer_id"].to_pylist()
        else:
            ids = [json.loads(line)["customer_id"] for line in path.read_text().splitlines() if line]
        if customer_id in ids:
            found.append(path)
    return found


# --- 6. the subject index is authenticated, and verification does not trust it ----------------------------


def test_zeroed_index_bits_do_not_hide_a_file(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    root = tmp_path / "index"
    refresh_catalog(catalog, SubjectIndex(str(root), ring), catalog_scanner(KeySource(catalog, ring)))
    # The attack needs no key: zero the Bloom bits of every orders file holding the subject.
    targets = {p.as_uri() for p in _holding(lake, "orders")}
    assert targets
    stored = (root / "orders.idx").read_bytes()
    header_line, _, blob = stored.partition(b"\n")
    header = json.loads(header_line)
    bits = bytearray(blob)
    for item in header["entries"]:
        if item["uri"] in targets:
            bits[item["offset"] : item["offset"] + item["m"] // 8] = bytes(item["m"] // 8)
    (root / "orders.idx").write_bytes(header_line + b"\n" + bytes(bits))

    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-zeroed")
    document = run(catalog, request, ring, log, tmp_path, index=SubjectIndex(str(root), ring))

    certificate = document["certificate"]
    assert certificate["status"] == "completed_with_holds"  # chargebacks are held
    orders = by_dataset(document)["orders"]
    assert {f["uri"] for f in orders["files"]} >= targets  # the files were read and changed, not skipped
    assert orders["verification"]["index_entries_rejected"] == len(targets)
    assert certificate["summary"]["index_entries_rejected"] == len(targets)
    table = dataset_table(lake, "orders")
    assert SUBJECT.customer_id not in table.column("customer_id").to_pylist()
    completion = [e.data for e in log.entries() if (e.data.get("details") or {}).get("stage") == "complete"]
    assert completion[-1]["details"]["summary"]["index_entries_rejected"] == len(targets)
    assert verify_certificate(document, log).ok


def test_verification_reads_the_files_the_index_ruled_out(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    root = tmp_path / "index"
    refresh_catalog(catalog, SubjectIndex(str(root), ring), catalog_scanner(KeySource(catalog, ring)))
    # With write access to the lake only: a ticket file without the subject gets one of their rows, written
    # in place with the same size, inode and modification time, so its version (etag) is unchanged and the
    # index's authentic entry still rules it out.
    holding = set(_holding(lake, "support_tickets"))
    path = next(p for p in sorted((lake / "support_tickets").glob("*.jsonl")) if p not in holding)
    text = path.read_text()
    first = json.loads(text.splitlines()[0])
    assert len(first["customer_id"]) == len(SUBJECT.customer_id)
    forged = text.replace(
        f'"customer_id":"{first["customer_id"]}"', f'"customer_id":"{SUBJECT.customer_id}"', 1
    )
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(forged.encode("utf-8"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )

    request = make_request(catalog, "erasure", "customer_id", SUBJECT.customer_id, request_id="erase-forged")
    document = run(catalog, request, ring, log, tmp_path, index=SubjectIndex(str(root), ring))

    tickets = by_dataset(document)["support_tickets"]
    assert path.as_uri() not in {f["uri"] for f in tickets["files"]}  # the request itself was fooled...
    assert tickets["verification"]["verified"] is False  # ...its verification was not
    assert tickets["verification"]["subject_rows_remaining"] == 1
    assert document["certificate"]["status"] == "failed"
    assert document["certificate"]["summary"]["verified"] is False


# --- 9. an auditor's independent rescan ---------------------------------------------------------------------


def test_an_auditor_rescan_finds_the_subject_a_verified_certificate_says_is_gone(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    backup = tmp_path / "backup"
    shutil.copytree(lake / "customers", backup)
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-audited")
    document = run(catalog, request, ring, log, tmp_path)
    cert = tmp_path / "cert.json"
    cert.write_text(dumps(document))
    rescan = ["dsr", "verify-certificate", str(cert), "--rescan", "--identity", f"email={SUBJECT.email}",
              "--identity", f"customer_id={SUBJECT.customer_id}", "--catalog", str(EXAMPLE),
              "--var", f"lake={lake}"]  # fmt: skip

    clean = aisec(tmp_path, ring, *rescan, "--json")
    assert clean.exit_code == 0, clean.output
    report = json.loads(clean.stdout)
    assert report["ok"] and report["rescan"]["ok"]
    found = {d["dataset"]: d for d in report["rescan"]["datasets"]}
    assert found["customers"]["files_read"] == len(list((lake / "customers").glob("*.parquet")))
    assert found["customers"]["rows_read"] == len(SAMPLE.customers) - 1
    assert found["chargebacks"]["held"] and found["chargebacks"]["subject_rows"] >= 1  # held: expected

    # A backup of the customers files is restored: the signed certificate still verifies as a document...
    shutil.rmtree(lake / "customers")
    shutil.copytree(backup, lake / "customers")
    assert aisec(tmp_path, ring, "dsr", "verify-certificate", str(cert)).exit_code == 0
    # ...but the auditor's re-read of the lake contradicts it.
    dirty = aisec(tmp_path, ring, *rescan)
    assert dirty.exit_code == 1, dirty.output
    assert "dataset customers: certified changed, but 1 row(s) of the subject" in dirty.output
    assert "NOT verified" in dirty.output
    assert SUBJECT.email not in dirty.output and SUBJECT.customer_id not in dirty.output

    # The identity must be the certificate's subject, and an identifier, not the pseudonym.
    other = aisec(tmp_path, ring, *rescan[:5], f"email={OTHER.email}", *rescan[-4:])
    assert other.exit_code == 2 and "not the certificate's subject" in other.output
    pseudonym = document["certificate"]["request"]["subject"]
    named = aisec(tmp_path, ring, *rescan[:5], f"email={pseudonym}", *rescan[-4:])
    assert named.exit_code == 2


def _forge_statistics(path: Path, column: str, hidden: str) -> None:
    """Edit the footer of a Parquet file so that its row-group statistics of ``column`` exclude ``hidden``:
    every max becomes the row group's min (or the min its max, when ``hidden`` is the min). The rows stay."""
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - length
    footer = bytes(data[start:-8])
    metadata = pq.ParquetFile(path).metadata
    index = metadata.schema.names.index(column)
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        low, high = str(stats.min).encode(), str(stats.max).encode()
        assert len(low) == len(high)  # fixed-width identifiers: the footer keeps its length
        footer = footer.replace(low, high) if hidden.encode() == low else footer.replace(high, low)
    data[start:-8] = footer
    path.write_bytes(bytes(data))


def test_an_auditor_rescan_does_not_trust_row_group_statistics(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    [restored] = _holding(lake, "orders")[:1]
    backup = tmp_path / "backup.parquet"
    shutil.copy(restored, backup)
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-forged")
    cert = tmp_path / "cert.json"
    cert.write_text(dumps(run(catalog, request, ring, log, tmp_path)))
    # Someone with write access to the lake restores the subject's order rows, and edits the file's footer
    # so that a filtered scan skips the row group holding them.
    shutil.copy(backup, restored)
    _forge_statistics(restored, "customer_id", SUBJECT.customer_id)
    assert SUBJECT.customer_id in pq.read_table(restored)["customer_id"].to_pylist()
    hidden = pq.read_table(restored, filters=[("customer_id", "=", SUBJECT.customer_id)])
    assert hidden.num_rows == 0  # the forgery works on a reader that trusts statistics

    rescan = aisec(
        tmp_path, ring, "dsr", "verify-certificate", str(cert), "--rescan",
        "--identity", f"email={SUBJECT.email}", "--identity", f"customer_id={SUBJECT.customer_id}",
        "--catalog", str(EXAMPLE), "--var", f"lake={lake}",
    )  # fmt: skip
    assert rescan.exit_code == 1, rescan.output
    assert "dataset orders: certified changed, but" in rescan.output


# --- 10. a wrong path is not an empty lake ------------------------------------------------------------------


def test_a_wrong_path_is_an_error_not_an_empty_lake(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    wrong = str(lake.parent / "Lake")  # the operator's slip: wrong case
    validated = runner.invoke(app, ["catalog", "validate", str(EXAMPLE), "--var", f"lake={wrong}"])
    assert validated.exit_code == 2
    for name in FORMATS:
        assert f"datasets.{name}.uri: dataset {name}: file://{wrong}/{name}: the location does not exist" in (
            validated.output
        )
    assert f"{{lake}}={wrong}" in validated.output
    assert runner.invoke(app, ["catalog", "validate", str(EXAMPLE), "--var", f"lake={lake}"]).exit_code == 0

    catalog = catalog_for(wrong)
    planned = runner.invoke(app, ["retention", "plan", "--catalog", str(EXAMPLE), "--var", f"lake={wrong}"])
    assert planned.exit_code == 2 and "dataset customers" in planned.output
    with pytest.raises(EmptyDatasetError, match="dataset orders"):
        plan_dataset(catalog, catalog.dataset("orders"), dt.datetime.now(dt.UTC))
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-wrong-path")
    with pytest.raises(EmptyDatasetError, match="the location does not exist"):
        run(catalog, request, ring, log, tmp_path)
    assert not any((e.data.get("details") or {}).get("stage") == "complete" for e in log.entries())
    with pytest.raises(EmptyDatasetError):
        refresh_catalog(
            catalog, SubjectIndex(str(tmp_path / "index"), ring), catalog_scanner(KeySource(catalog, ring))
        )

    # A dataset that may really be empty says so in the catalog.
    (lake / "chargebacks_archive").mkdir()

    def archive(data: dict[str, Any]) -> None:
        spec = dict(data["datasets"]["chargebacks"], uri="{lake}/chargebacks_archive", may_be_empty=True)
        spec.pop("legal_hold")
        data["datasets"]["chargebacks_archive"] = spec

    allowed = catalog_for(lake, tmp_path, archive)
    assert runner.invoke(app, ["catalog", "validate", allowed.source, "--var", f"lake={lake}"]).exit_code == 0
    data = yaml.safe_load(Path(allowed.source).read_text())
    del data["datasets"]["chargebacks_archive"]["may_be_empty"]
    Path(allowed.source).write_text(yaml.safe_dump(data))
    refused = runner.invoke(app, ["catalog", "validate", allowed.source, "--var", f"lake={lake}"])
    assert (
        refused.exit_code == 2
        and "chargebacks_archive" in refused.output
        and "no .csv file" in refused.output
    )


def test_nothing_found_says_where_it_looked(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    request = make_request(
        catalog, "erasure", "email", "nobody.at.all@example.org", request_id="erase-nobody"
    )
    document = run(catalog, request, ring, log, tmp_path)
    certificate = document["certificate"]
    assert certificate["status"] == "no_data_found"
    customers = by_dataset(document)["customers"]["verification"]
    files = len(list((lake / "customers").glob("*.parquet")))
    assert customers["files_read"] + customers["files_read_by_request"] == files
    assert customers["rows_read"] + customers["rows_read_by_request"] == len(SAMPLE.customers)
    tickets = by_dataset(document)["support_tickets"]["verification"]  # searched for mentions of the address
    assert tickets["files_read"] + tickets["files_read_by_request"] == len(
        list((lake / "support_tickets").iterdir())
    )
    assert certificate["summary"]["files_examined"] >= files + 1
    assert certificate["summary"]["rows_examined"] >= len(SAMPLE.customers)


# --- 11. the subject's name in other people's text ----------------------------------------------------------


def test_the_subjects_name_is_masked_in_other_peoples_messages(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    third = next(c for c in SAMPLE.customers if c.customer_id not in (SUBJECT.customer_id, OTHER.customer_id))
    first, _, last = SUBJECT.full_name.partition(" ")
    template = json.loads((lake / "support_tickets").glob("*.jsonl").__next__().read_text().splitlines()[0])
    crafted = [
        {**template, "ticket_id": "T900001", "customer_id": OTHER.customer_id,
         "body": f"My neighbour {SUBJECT.full_name} ({SUBJECT.email}) got the same parcel as me."},
        {**template, "ticket_id": "T900002", "customer_id": third.customer_id,
         "body": f"Please tell {first.upper()}  {last.upper()} that the order arrived."},
    ]  # fmt: skip
    path = lake / "support_tickets" / "support_tickets-crafted.jsonl"
    path.write_text("".join(json.dumps(row, separators=(",", ":")) + "\n" for row in crafted))

    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-named")
    document = run(catalog, request, ring, log, tmp_path)

    bodies = [json.loads(line)["body"] for line in path.read_text().splitlines()]
    assert bodies == [
        "My neighbour <REDACTED> (<REDACTED>) got the same parcel as me.",
        "Please tell <REDACTED> that the order arrived.",
    ]
    pattern = re.compile(r"\s+".join(map(re.escape, SUBJECT.full_name.split())), re.IGNORECASE)
    assert not any(
        pattern.search(b) for b in dataset_table(lake, "support_tickets").column("body").to_pylist()
    )
    certificate = document["certificate"]
    assert {"identity:email", "identity:customer_id", "EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"} <= set(
        certificate["mentions_searched"]
    )
    assert by_dataset(document)["support_tickets"]["verification"]["mentions_remaining"] == 0


# --- 12. copies outside the catalog -------------------------------------------------------------------------


def test_copies_outside_the_catalog_are_named_not_covered(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a DAG outside the catalog's view does: a task copies the tickets into an export folder, and the
    # listener records the task with its Asset inlets and outlets.
    landing = tmp_path / "export" / "support_tickets"
    shutil.copytree(lake / "support_tickets", landing)
    log.append(
        "task.outcome", outcome="success", details={"operator": "_PythonDecoratedOperator"},
        inputs=[{"uri": "support_tickets", "dataset": "support_tickets"}],
        outputs=[{"uri": "support_tickets_export", "dataset": "support_tickets_export"}],
    )  # fmt: skip
    checked = aisec(tmp_path, ring, "catalog", "validate", str(EXAMPLE), "--var", f"lake={lake}", "--lineage")
    assert checked.exit_code == 2
    assert "lineage: support_tickets_export was written from dataset support_tickets (task.outcome #" in (
        checked.output
    )
    assert aisec(tmp_path, ring, "catalog", "validate", str(EXAMPLE), "--var", f"lake={lake}").exit_code == 0
    # The aisec_catalog_check DAG's operator checks the lineage of the audit log it records to.
    from airflow_aisec.operators.catalog import CatalogValidateOperator

    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("AISEC_KEYRING", str(ring.path))
    operator = CatalogValidateOperator(
        task_id="validate_catalog", catalog=str(EXAMPLE), variables={"lake": str(lake)}, lineage=True
    )
    with pytest.raises(CatalogError, match="support_tickets_export was written from dataset support_tickets"):
        operator.execute(context={})  # type: ignore[arg-type]

    catalog = catalog_for(lake)
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-copied")
    document = run(catalog, request, ring, log, tmp_path)
    certificate = document["certificate"]
    assert certificate["status"] == "failed"
    assert certificate["summary"]["verified"] is False
    assert certificate["summary"]["not_covered"] == ["support_tickets_export"]
    assert certificate["coverage"]["complete"] is False
    assert [c["dataset"] for c in certificate["coverage"]["not_covered"]] == ["support_tickets_export"]
    assert SUBJECT.email in "".join(p.read_text() for p in landing.iterdir())  # the copy still holds them

    # Once the catalog lists the copy, the same request reaches it.
    def with_landing(data: dict[str, Any]) -> None:
        data["datasets"]["support_tickets_export"] = dict(
            data["datasets"]["support_tickets"], uri=str(landing)
        )

    covered = catalog_for(lake, tmp_path, with_landing)
    again = run(covered, make_request(covered, "erasure", "email", SUBJECT.email, request_id="erase-copied"),
                ring, log, tmp_path)  # fmt: skip
    assert again["certificate"]["coverage"]["complete"] is True
    assert again["certificate"]["status"] == "completed_with_holds"
    assert SUBJECT.email not in "".join(p.read_text() for p in landing.iterdir())

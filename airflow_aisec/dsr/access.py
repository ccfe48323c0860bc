"""Access requests: export the subject's rows of every dataset as an encrypted package.

The package is a folder ``<[aisec] dsr_exports>/<request id>/`` holding, per dataset with rows of the
subject, ``<dataset>.json.aisec`` and ``<dataset>.csv.aisec``, and a ``manifest.json.aisec`` listing the
datasets, their purposes, retention and legal holds, and every file's digest. Each file is an envelope
(AES-256-GCM, streamed) under a fresh data key wrapped by the master key named in the request; plaintext is
written only to an owner-only temporary folder and removed as soon as it is encrypted. The requester
decrypts the package with ``aisec decrypt <package> <folder> --key <key>``.

The audit log records which datasets, columns and how many rows were exported and the ciphertexts'
digests, never the data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from airflow_aisec.dsr.context import DatasetOutcome, DsrContext, scanner_for
from airflow_aisec.dsr.identifiers import Identifiers
from airflow_aisec.dsr.matching import criteria
from airflow_aisec.dsr.resolve import DatasetMatch
from airflow_aisec.io import Location, stat_file

if TYPE_CHECKING:
    from airflow_aisec.catalog import Dataset

MANIFEST = "manifest.json.aisec"


def package_location(ctx: DsrContext, exports: str) -> Location:
    """Where the request's package goes: ``<exports>/<request id>``."""
    return Location.parse(exports, ctx.s3).join(ctx.request.request_id)


def export_dataset(
    ctx: DsrContext, match: DatasetMatch, ids: Identifiers, package: Location
) -> DatasetOutcome:
    """Write the subject's rows of one dataset into the package (JSON and CSV, each encrypted)."""
    dataset = ctx.catalog.dataset(match.dataset)
    outcome = DatasetOutcome(dataset.name, "export", "no_data")
    files = [f for f in match.files if f.matched]
    outcome.rows_affected = sum(f.matched for f in files)
    if files and ctx.request.dry_run:
        outcome.status = "dry_run"
    elif files:
        table = _subject_rows(ctx, dataset, match, ids)
        outcome.rows_affected = table.num_rows
        written = _write_encrypted(ctx, package, dataset.name, _renderings(table))
        outcome.status = "exported"
        outcome.export = {"columns": table.schema.names, "rows": table.num_rows, "files": written}
    state = "success" if outcome.status == "exported" else "noop"
    digests = [f["sha256"] for f in (outcome.export or {}).get("files", [])]
    version = hashlib.sha256(json.dumps(digests).encode()).hexdigest()[:24]  # a re-export is a new entry
    ctx.record(
        ctx.key(dataset.name, "export", version), state, dataset=dataset.name, rows=outcome.rows_affected,
        columns=(outcome.export or {}).get("columns"),
        inputs=[{"uri": f.uri, "dataset": dataset.name} for f in files],
        outputs=[{"uri": f["uri"], "sha256": f["sha256"]} for f in (outcome.export or {}).get("files", [])],
        details={"status": outcome.status, "key": ctx.request.export_key},
    )  # fmt: skip
    return outcome


def _subject_rows(ctx: DsrContext, dataset: Dataset, match: DatasetMatch, ids: Identifiers) -> pa.Table:
    scanner = scanner_for(ctx)
    subject = criteria(ctx.catalog, dataset, ids)
    batches = []
    for found in match.files:
        info = stat_file(Location.parse(found.uri, ctx.s3))
        if info is None or not found.matched:
            continue
        for batch in scanner.batches(dataset, info, None):
            rows = batch.filter(subject.mask(batch))
            if rows.num_rows:
                batches.append(pa.Table.from_batches([rows]))
    if not batches:
        return pa.table({})
    return pa.concat_tables(batches, promote_options="permissive")


def _renderings(table: pa.Table) -> dict[str, bytes]:
    rows = json.dumps(table.to_pylist(), indent=2, ensure_ascii=False, default=str, sort_keys=True)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return {"json": rows.encode("utf-8"), "csv": sink.getvalue().to_pybytes()}


def _write_encrypted(
    ctx: DsrContext, package: Location, stem: str, renderings: dict[str, bytes]
) -> list[dict[str, Any]]:
    """Encrypt each rendering into ``package/<stem>.<ext>.aisec``; plaintext only in a 0700 temp folder."""
    from airflow_aisec.crypto.envelope import encrypt_file

    key = ctx.request.export_key
    assert key is not None  # make_request requires it for an access request
    provider = ctx.key_provider(key)
    written = []
    with tempfile.TemporaryDirectory(prefix="aisec-dsr-") as private:
        os.chmod(private, 0o700)
        for ext, data in renderings.items():
            plain = Path(private) / f"{stem}.{ext}"
            fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            target = package.join(f"{stem}.{ext}.aisec")
            context = {"request_id": ctx.request.request_id, "file": f"{stem}.{ext}"}
            result = encrypt_file(Location.parse(plain), target, provider, key, context, overwrite=True)
            plain.unlink()
            written.append(
                {"name": target.name, "uri": result.uri, "sha256": result.sha256, "bytes": result.bytes}
            )
    return written


def write_manifest(ctx: DsrContext, package: Location, outcomes: Sequence[DatasetOutcome]) -> dict[str, Any]:
    """The package's manifest (encrypted like its data files); returns where it is and its digest."""
    datasets = {}
    for outcome in outcomes:
        dataset = ctx.catalog.dataset(outcome.dataset)
        retention = dataset.retention
        hold = dataset.legal_hold
        datasets[dataset.name] = {
            "rows": outcome.rows_affected,
            "columns": (outcome.export or {}).get("columns", []),
            "files": (outcome.export or {}).get("files", []),
            "purposes": list(dataset.purposes),
            "retention": {"column": retention.column, "keep_for": retention.keep_for} if retention else None,
            "legal_hold": {"reason": hold.reason, "until": hold.until.isoformat()} if hold else None,
        }
    manifest = {
        "format": "aisec-dsr-access-package",
        "version": 1,
        "request": ctx.public_request(),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "datasets": datasets,
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    [written] = _write_encrypted(ctx, package, "manifest", {"json": body})
    return written

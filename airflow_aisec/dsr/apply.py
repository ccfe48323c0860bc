"""Carry out a request on one dataset: erase, rectify or export the subject's rows, file by file, safely.

Each file that holds the subject (or, for an erasure, mentions them in free text) is changed through the
one journaled file change (``airflow_aisec.rewrite.change_file``): the new version goes to a temporary place,
is verified, and replaces the old one atomically against the version that was read; a file left with no row
is deleted, its key material after it. Files without the subject are not touched, so they keep their digest.

Audit: an ``intent`` entry (file, digest before) precedes every change and an outcome entry (rows, digests
before and after) follows it, under idempotency keys made of the request id, the dataset and the file
version, so rerunning a request never records anything twice. A run killed between the swap and the outcome
leaves an open intent: the next run finds it by key (``rewrite.recover``) and records the outcome it can
prove from the file's digest; an intent whose file is unchanged is finished by that run, which finds the
subject there again. The subject appears in entries only as their pseudonym; values never appear.

Erasure, per the dataset's ``erasure:`` strategy:

* ``delete_rows``: the subject's rows are removed.
* ``anonymize``: the subject's rows stay; their PII columns are masked with the catalog's strategy (``drop``
  becomes a null, as a row cannot lose a column alone; ``pseudonymize`` and ``encrypt``, which keep a value
  recognisable, become ``replace``), free text is masked with the NER engine, and their
  identity and reference columns (the link to the subject) are nulled, or replaced by a random, unlinkable
  token when the column is the primary key or cannot hold nulls.
* Other rows whose free text mentions the subject's identifiers get those words replaced by ``<REDACTED>``.

A dataset split into parts (``dsr.parts``) is carried out part by part, each in a task of its own: a part
changes only its own files and settles only their open intents, and its summary entry is keyed with the part.
Each part decides on the hold when it runs, so parts that decided differently (a hold came into force between
them) are caught when they are merged.

A dataset under an active ``legal_hold``, or a subject under a per-subject hold, is not changed: the outcome
says ``held`` with the reason. ``dry_run`` reports what would change and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.catalog.lake import dataset_files
from airflow_aisec.crypto.parquet import is_encrypted_parquet
from airflow_aisec.dsr.context import DatasetOutcome, DsrContext, scanner_for
from airflow_aisec.dsr.edits import Edit, count, erasure, field_of, new_value, rectification
from airflow_aisec.dsr.identifiers import Identifiers
from airflow_aisec.dsr.matching import (
    column_values,
    criteria,
    falses,
    free_text_columns,
    in_batch,
    mention_mask,
)
from airflow_aisec.dsr.parts import Part
from airflow_aisec.dsr.resolve import DatasetMatch, FileMatch
from airflow_aisec.dsr.scan import read_columns, search
from airflow_aisec.exceptions import AisecError, DsrError
from airflow_aisec.io import (
    FileInfo,
    Location,
    sha256_file,
    stat_file,
)
from airflow_aisec.io.nested import leaves, top_column
from airflow_aisec.rewrite import Change, FileChange, Journal, change_file, recover

if TYPE_CHECKING:
    from airflow_aisec.catalog import Dataset

log = logging.getLogger(__name__)


# --- the per-file loop ------------------------------------------------------------------------------------


def process_dataset(
    ctx: DsrContext, match: DatasetMatch, ids: Identifiers, part: Part | None = None
) -> DatasetOutcome:
    """Erase or rectify the subject in one dataset (an access request uses ``export_dataset``); with
    ``part``, in that part's files only (``dsr.parts``), settling the open intents of those files only."""
    dataset = ctx.catalog.dataset(match.dataset)
    part = part or Part(dataset.name)
    ctx.note_identifiers(ids)
    kind = ctx.request.type
    strategy = dataset.erasure if kind == "erasure" else "rectify"
    outcome = DatasetOutcome(dataset.name, strategy, "no_data", part=part.index, parts=part.count)
    edit = erasure(ctx, dataset, ids) if kind == "erasure" else rectification(ctx, dataset, ids)
    todo = [f for f in match.files if edit.wanted(f) and part.owns(f.uri)]
    if kind == "rectification":  # rows already holding the new values need no rewrite (idempotent)
        todo = [f for f in todo if _rows_to_correct(ctx, dataset, f, ids)]
    outcome.rows_affected = sum(f.matched for f in todo)
    outcome.mentions_masked = sum(f.mentions for f in todo) if kind == "erasure" else 0
    journal = _journal(ctx, dataset)
    # An unchanged file of an open intent still holds the subject: this run finds it again and finishes it.
    recovered = recover(
        journal,
        dataset,
        ctx.key_provider,
        ctx.s3,
        redone=lambda op: True,
        purge_old_versions=_purges(dataset),
        owns=None if part.whole else part.owns,
    )
    outcome.files.extend(recovered)
    hold = ctx.hold_of(dataset)
    details: dict[str, Any] = {
        "dataset_strategy": strategy,
        "files": len(todo),
        "rows": outcome.rows_affected,
        **({} if part.whole else {"part": part.index, "parts": part.count}),
    }
    if not todo:
        outcome.status = "changed" if recovered else "no_data"
    elif hold is not None:
        outcome.status, outcome.legal_hold, outcome.rows_held = "held", hold, outcome.rows_affected
        details["legal_hold"] = hold
    elif ctx.request.dry_run:
        outcome.status = "dry_run"
        outcome.files = [FileChange(f.uri, "none", f.rows, f.rows, f.matched, f.mentions) for f in todo]
    else:
        outcome.status = "changed"
        try:
            for found in todo:
                outcome.files.append(_change_file(ctx, dataset, found, edit, journal))
        except AisecError as exc:  # the files done stay done; the others are left as they were
            outcome.status, outcome.error = "failed", f"dataset {dataset.name}: {exc}"
            details["error"] = outcome.error
    if ctx.index is not None and outcome.changed:
        _reindex(ctx, dataset, outcome)
    state = {"changed": "success", "held": "skipped", "failed": "failure"}.get(outcome.status, "noop")
    ctx.record(
        ctx.key(dataset.name, "summary", *part.key, _digest(outcome.files, outcome.status)), state,
        dataset=dataset.name, rows=outcome.rows_affected, details={**details, "status": outcome.status},
    )  # fmt: skip
    return outcome


def _reindex(ctx: DsrContext, dataset: Dataset, outcome: DatasetOutcome) -> None:
    """Drop the subject index's entries of the rewritten files, so it keeps no trace of what was erased
    (the next refresh indexes their new versions). If that fails, the entries are stale anyway: an entry is
    trusted only for the file version it was built from."""
    assert ctx.index is not None
    try:
        ctx.index.forget(dataset, [f.uri for f in outcome.files])
    except (AisecError, OSError, pa.ArrowException) as exc:
        log.warning(
            "dataset %s: the subject index was not refreshed (%s)", dataset.name, exc.__class__.__name__
        )


def _digest(files: Sequence[FileChange], status: str) -> str:
    basis = json.dumps([status, [[f.uri, f.sha256_before, f.sha256_after] for f in files]])
    return hashlib.sha256(basis.encode()).hexdigest()[:24]


def _journal(ctx: DsrContext, dataset: Dataset) -> Journal:
    """The journal of this request on ``dataset``: its file changes, keyed under the request."""

    def append(key: str, outcome: str, **fields: Any) -> int | None:
        return ctx.record(key, outcome, dataset=dataset.name, **fields)

    return Journal(ctx.audit, ctx.key(dataset.name), dataset.name, append)


def _change_file(
    ctx: DsrContext, dataset: Dataset, found: FileMatch, edit: Edit, journal: Journal
) -> FileChange:
    location = Location.parse(found.uri, ctx.s3)
    info = stat_file(location)
    if info is None:
        raise DsrError(f"dataset {dataset.name}: {found.uri} disappeared since it was scanned; run again")
    encrypted = dataset.format == "parquet" and is_encrypted_parquet(location.filesystem(), location.path)
    whole = edit.whole_file(found) and found.etag == info.etag  # the scan saw this very version
    removes_rows = ctx.request.type == "erasure" and dataset.erasure == "delete_rows"
    change = Change(
        location, sha256_file(location), info.etag, found.rows, encrypted, None if whole else edit.apply,
        found.rows - found.matched if removes_rows else found.rows, rows_affected=found.matched,
    )  # fmt: skip
    return change_file(journal, change, dataset, ctx.key_provider, purge_old_versions=_purges(dataset))


def _purges(dataset: Dataset) -> bool:
    """Whether the S3 versions a change leaves behind are deleted too (the retention rule's setting)."""
    return dataset.retention is not None and dataset.retention.purge_versions


def verify_dataset(
    ctx: DsrContext, match: DatasetMatch, ids: Identifiers, outcome: DatasetOutcome
) -> dict[str, Any]:
    """Re-read the dataset to prove the change: the subject is gone (erasure) or corrected (rectification).

    Only a file this request itself read for the subject's rows (``match.read``), left unchanged by it and
    still at that version, needs no second read. Every other file is read again: rewritten ones, changed
    ones, new ones and, above all, those the subject index ruled out unread, as absence is never taken from
    derived state. Held datasets are expected to still hold the subject and are reported as such. The result
    says where it looked: files and rows read now, and files and rows the request read before.
    """
    dataset = ctx.catalog.dataset(match.dataset)
    changed_uris = {f.uri for f in match.files} | {f.uri for f in outcome.files}
    scanner = scanner_for(ctx)
    match_now = criteria(ctx.catalog, dataset, ids)
    texts = free_text_columns(dataset)
    pattern = ids.mention_pattern() if ctx.request.type == "erasure" else None
    searching = bool(match_now.columns) or bool(texts and pattern)
    columns = sorted(set(match_now.columns) | set(texts if pattern else []) | set(ctx.request.changes))
    columns = read_columns(dataset, [c for c in columns if c in dataset.columns])
    rows_read = before = rows_before = remaining = mentions = wrong = 0
    todo = []
    # The request itself may have deleted every file: an empty location is no error here.
    for info in dataset_files(dataset, ctx.s3, may_be_empty=True) if searching else []:
        earlier = _read_before(match, info, changed_uris, bool(texts and pattern))
        if earlier is None:
            todo.append(info)
        else:
            before, rows_before = before + 1, rows_before + earlier
    checked = len(todo)
    if todo and ctx.request.type == "erasure" and match_now.columns and not (texts and pattern):
        # Only rows to look for: the search pushes the filter down and reads Parquet files in parallel.
        for scan in search(scanner, dataset, todo, match_now, sorted(match_now.columns)):
            rows_read, remaining = rows_read + scan.rows, remaining + scan.matched
        todo = []
    for info in todo:
        for batch in scanner.batches(dataset, info, columns):
            rows_read += batch.num_rows
            subject = match_now.mask(batch) if match_now.columns else falses(batch.num_rows)
            remaining += count(subject)
            if pattern is not None and texts:
                mentions += count(mention_mask(batch, texts, pattern))
            if ctx.request.type == "rectification":
                wrong += _still_wrong(dataset, batch, subject, ctx.request.changes)
    # Held data is expected to be still there (the certificate says so); a dry run changed nothing.
    problems = remaining + mentions if ctx.request.type == "erasure" else wrong
    ok = outcome.status == "held" or ctx.request.dry_run or problems == 0
    found = (
        {"subject_rows_remaining": remaining, "mentions_remaining": mentions}
        if ctx.request.type == "erasure"
        else {"subject_rows_checked": remaining, "rows_not_corrected": wrong}
    )
    return {
        "verified": ok, "files_read": checked, "rows_read": rows_read, "files_read_by_request": before,
        "rows_read_by_request": rows_before, "index_entries_rejected": len(match.index_rejected), **found,
    }  # fmt: skip


def _read_before(match: DatasetMatch, info: FileInfo, changed: set[str], free_text: bool) -> int | None:
    """The rows of ``info`` if this request read it for the subject's rows at this very version (and, for
    free text, in the mention pass, which reads every file) and did not change it; else None: read it."""
    earlier = match.read.get(info.uri)
    if info.uri in changed or earlier is None or earlier[0] != info.etag:
        return None
    if free_text and match.scanned.get(info.uri) != info.etag:
        return None
    return int(earlier[1] or 0)


def _rows_to_correct(ctx: DsrContext, dataset: Dataset, found: FileMatch, ids: Identifiers) -> int:
    info = stat_file(Location.parse(found.uri, ctx.s3))
    if info is None:
        return 0
    match = criteria(ctx.catalog, dataset, ids)
    columns = read_columns(
        dataset, set(match.columns) | {c for c in ctx.request.changes if c in dataset.columns}
    )
    wrong = 0
    for batch in scanner_for(ctx).batches(dataset, info, columns):
        wrong += _still_wrong(dataset, batch, match.mask(batch), ctx.request.changes)
    return wrong


def _still_wrong(
    dataset: Dataset, batch: pa.RecordBatch, subject: pa.Array, changes: Mapping[str, str]
) -> int:
    wrong = 0
    rows = batch.filter(subject)
    for column, text in changes.items():
        if not in_batch(rows, column) or not rows.num_rows:
            continue
        expected = new_value(dataset.name, field_of(rows.schema, column), text)
        values, nested = column_values(rows, column)
        equal = pc.fill_null(pc.equal(values, expected), False)
        if nested is None:
            wrong += rows.num_rows - count(equal)
        else:  # values held by a null struct cannot be corrected and are not counted
            wrong += count(pc.and_not(leaves(rows.column(top_column(column)), column).present, equal))
    return wrong

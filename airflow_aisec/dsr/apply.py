"""Carry out a request on one dataset: erase, rectify or export the subject's rows, file by file, safely.

Each file that holds the subject (or, for an erasure, mentions them in free text) is rewritten through
``open_rewrite``: the new version goes to a temporary place, is verified, and replaces the old one atomically
against the version that was read; a file left with no row is deleted. Files without the subject are not
touched, so they keep their digest.

Audit: an ``intent`` entry (file, digest before) precedes every change and an outcome entry (rows, digests
before and after) follows it, under idempotency keys made of the request id, the dataset and the file
version, so rerunning a request never records anything twice. A run killed between the swap and the outcome
leaves an open intent: the next run finds it (``recover``) and records the outcome it can prove from the
file's digest. The subject appears in entries only as their pseudonym; values never appear.

Erasure, per the dataset's ``erasure:`` strategy:

* ``delete_rows``: the subject's rows are removed.
* ``anonymize``: the subject's rows stay; their PII columns are masked with the catalog's strategy (``drop``
  becomes a null, as a row cannot lose a column alone; ``pseudonymize`` and ``encrypt``, which keep a value
  recognisable, become ``replace``), free text is masked with the NER engine, and their
  identity and reference columns (the link to the subject) are nulled, or replaced by a random, unlinkable
  token when the column is the primary key or cannot hold nulls.
* Other rows whose free text mentions the subject's identifiers get those words replaced by ``<REDACTED>``.

A dataset under an active ``legal_hold``, or a subject under a per-subject hold, is not changed: the outcome
says ``held`` with the reason. ``dry_run`` reports what would change and changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.catalog.lake import dataset_files
from airflow_aisec.crypto.parquet import find_key_material, is_encrypted_parquet
from airflow_aisec.dsr.resolve import (
    DatasetMatch,
    FileMatch,
    Identifiers,
    Scanner,
    as_text,
    catalog_scanner,
    column_values,
    criteria,
    falses,
    free_text_columns,
    in_batch,
    mention_mask,
    read_columns,
    search,
)
from airflow_aisec.exceptions import AisecError, DatasetIOError, DsrError, EncryptionError, PIIError
from airflow_aisec.io import (
    FileInfo,
    Location,
    S3Options,
    delete_file,
    sha256_file,
    stat_file,
)
from airflow_aisec.io.nested import leaves, resolve, top_column, with_leaves
from airflow_aisec.rewrite import open_rewrite

if TYPE_CHECKING:
    from airflow_aisec.audit.log import AuditLog
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.datasets import SubjectColumns
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.providers import KeyProvider
    from airflow_aisec.dsr.index import SubjectIndex
    from airflow_aisec.dsr.request import DsrRequest
    from airflow_aisec.pii.mask import Masker
    from airflow_aisec.pii.types import Span
    from airflow_aisec.retention.holds import Hold

log = logging.getLogger(__name__)

MENTION_TAG = "<REDACTED>"
TOKEN_PREFIX = "erased-"


@dataclasses.dataclass
class FileChange:
    """What was done to one file (digests, never values)."""

    uri: str
    action: str  # rewrite | delete
    rows_before: int
    rows_after: int
    rows_affected: int
    mentions_masked: int = 0
    sha256_before: str | None = None
    sha256_after: str | None = None
    versions_purged: int = 0
    recovered: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DatasetOutcome:
    """What a request did to one dataset.

    ``status``: ``changed``, ``no_data`` (the subject is not there), ``held`` (a legal hold blocks it),
    ``dry_run`` (what would change), ``exported`` (access) or ``failed``.
    """

    dataset: str
    strategy: str
    status: str
    rows_affected: int = 0
    mentions_masked: int = 0
    files: list[FileChange] = dataclasses.field(default_factory=list)
    legal_hold: dict[str, Any] | None = None
    error: str | None = None
    export: dict[str, Any] | None = None

    @property
    def changed(self) -> bool:
        """Whether files were changed (a dry run lists what it would change, with action ``none``)."""
        return any(f.action != "none" for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**dataclasses.asdict(self), "files": [f.as_dict() for f in self.files]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetOutcome:
        """The inverse of ``as_dict``."""
        fields = dict(data)
        fields["files"] = [FileChange(**f) for f in fields.get("files", [])]
        return cls(**fields)


class DsrContext:
    """What carrying out one request needs: catalog, request, audit log, keyring, storage options."""

    def __init__(
        self,
        catalog: Catalog,
        request: DsrRequest,
        *,
        keyring: LocalKeyring,
        audit: AuditLog | None = None,
        s3: S3Options | None = None,
        find_spans: Callable[[Sequence[str]], list[list[Span]]] | None = None,
        holds: Mapping[str, Hold] | None = None,
        index: SubjectIndex | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.catalog = catalog
        self.request = request
        self.keyring = keyring
        self.audit = audit
        self.s3 = s3
        self.holds = dict(holds or {})
        self.index = index
        self.subject_held: str | None = None
        self.today = today or dt.datetime.now(dt.UTC).date()
        self._find_spans = find_spans
        self._providers: dict[str, KeyProvider] = {}
        self._pseudonymize: Callable[[str], str] | None = None
        self._reason_masked = False

    def __repr__(self) -> str:
        return f"DsrContext({self.request.type} {self.request.request_id})"

    # -- helpers ---------------------------------------------------------------------------------------------

    def pseudonym(self, value: str) -> str:
        """The pseudonym of ``value``, under the catalog's ``subjects.pseudonym_key``, as the audit log
        records subjects. Always computed: a value that merely looks like a pseudonym is pseudonymized too,
        so no identifier can stand in for the pseudonym of another subject."""
        if self._pseudonymize is None:
            from airflow_aisec.crypto.pseudonyms import Pseudonymizer

            key = self.keyring.ensure(self.catalog.subjects.pseudonym_key, "symmetric").material
            self._pseudonymize = Pseudonymizer(key)
        return self._pseudonymize(value)

    @property
    def subject(self) -> str:
        """The pseudonym of the subject named in the request."""
        return self.pseudonym(self.request.identity_value)

    def public_request(self) -> dict[str, Any]:
        """The request as it may be stored and shown (``DsrRequest.public``), its free-text reason first
        masked of everyone's personal data (names, e-mail addresses, numbers...), not only the subject's."""
        if not self._reason_masked:
            from airflow_aisec.pii.strategies import mask_free_text

            def people(texts: Sequence[str]) -> list[list[Span]]:
                # Dates say when, not who (and the NER model takes ticket numbers for dates): they stay.
                return [[s for s in found if s.entity != "DATE_TIME"] for found in self.find_spans(texts)]

            reason = self.request.reason
            if reason.strip():
                masked = mask_free_text(pa.array([reason], pa.string()), people, column="reason")
                reason = str(masked.values[0].as_py())
            self.request = dataclasses.replace(self.request, reason=reason)
            self._reason_masked = True
        return self.request.public(self.pseudonym)

    def key_provider(self, key_name: str) -> KeyProvider:
        """The provider of a catalog key (built once)."""
        if key_name not in self._providers:
            from airflow_aisec.crypto.factory import provider_for_key

            self._providers[key_name] = provider_for_key(
                self.catalog, key_name, keyring=str(self.keyring.path)
            )
        return self._providers[key_name]

    def find_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """Named entities in ``texts``; the NER engine is loaded on first use only."""
        if self._find_spans is None:
            from airflow_aisec.pii.engine import get_engine
            from airflow_aisec.pii.pipeline import recognizer_specs

            self._find_spans = get_engine("ner", recognizers=recognizer_specs(self.catalog)).find_spans
        return self._find_spans(texts)

    def subject_columns(self, dataset: Dataset) -> SubjectColumns | None:
        """The dataset's per-subject sealing, if the catalog asks for it."""
        from airflow_aisec.crypto.datasets import subject_columns

        return subject_columns(self.catalog, dataset, self.keyring)

    def key(self, *parts: str) -> str:
        """An idempotency key of this request."""
        return ":".join((self.request.action, self.request.request_id, *parts))

    def record(self, key: str, outcome: str, **fields: Any) -> int | None:
        """Append one entry of this request (the subject stored as their pseudonym); its index."""
        if self.audit is None:
            return None
        details = {"request_id": self.request.request_id, **fields.pop("details", {})}
        return self.audit.append(
            self.request.action, idempotency_key=key, outcome=outcome, subject=self.subject,
            details=details, **fields,
        )  # fmt: skip

    def note_identifiers(self, ids: Identifiers) -> None:
        """Once the subject is resolved: find a per-subject hold under any of their identities, and scrub
        every identifier of theirs from the request's free-text reason (it is logged and certified)."""
        values = sorted({v for found in ids.identities.values() for v in found})
        for value in values:
            hold = self.holds.get(self.pseudonym(value))
            if hold is not None:
                self.subject_held = hold.reason
        from airflow_aisec.dsr.request import scrub

        reason = scrub(self.request.reason, [*values, *ids.mentions])
        if reason != self.request.reason:
            self.request = dataclasses.replace(self.request, reason=reason)

    def hold_of(self, dataset: Dataset) -> dict[str, Any] | None:
        """The legal hold blocking changes to ``dataset``, if any."""
        if dataset.legal_hold is not None and dataset.legal_hold.active(self.today):
            hold = dataset.legal_hold
            return {"scope": "dataset", "reason": hold.reason, "until": hold.until.isoformat()}
        if self.subject_held is not None:
            return {"scope": "subject", "reason": self.subject_held, "until": None}
        return None


# --- the per-file loop ------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Edit:
    """How one batch changes: ``apply(batch)`` returns (new batch, rows affected, mentions masked)."""

    apply: Callable[[pa.RecordBatch], tuple[pa.RecordBatch, int, int]]
    wanted: Callable[[FileMatch], bool]
    whole_file: Callable[[FileMatch], bool] = lambda found: False


def process_dataset(ctx: DsrContext, match: DatasetMatch, ids: Identifiers) -> DatasetOutcome:
    """Erase or rectify the subject in one dataset (an access request uses ``export_dataset``)."""
    dataset = ctx.catalog.dataset(match.dataset)
    ctx.note_identifiers(ids)
    kind = ctx.request.type
    strategy = dataset.erasure if kind == "erasure" else "rectify"
    outcome = DatasetOutcome(dataset.name, strategy, "no_data")
    edit = _erasure(ctx, dataset, ids) if kind == "erasure" else _rectification(ctx, dataset, ids)
    todo = [f for f in match.files if edit.wanted(f)]
    if kind == "rectification":  # rows already holding the new values need no rewrite (idempotent)
        todo = [f for f in todo if _rows_to_correct(ctx, dataset, f, ids)]
    outcome.rows_affected = sum(f.matched for f in todo)
    outcome.mentions_masked = sum(f.mentions for f in todo) if kind == "erasure" else 0
    recovered = _recover(ctx, dataset)
    outcome.files.extend(recovered)
    hold = ctx.hold_of(dataset)
    details: dict[str, Any] = {
        "dataset_strategy": strategy,
        "files": len(todo),
        "rows": outcome.rows_affected,
    }
    if not todo:
        outcome.status = "changed" if recovered else "no_data"
    elif hold is not None:
        outcome.status, outcome.legal_hold = "held", hold
        details["legal_hold"] = hold
    elif ctx.request.dry_run:
        outcome.status = "dry_run"
        outcome.files = [FileChange(f.uri, "none", f.rows, f.rows, f.matched, f.mentions) for f in todo]
    else:
        outcome.status = "changed"
        try:
            for found in todo:
                outcome.files.append(_change_file(ctx, dataset, found, edit, outcome))
        except AisecError as exc:  # the files done stay done; the others are left as they were
            outcome.status, outcome.error = "failed", f"dataset {dataset.name}: {exc}"
            details["error"] = outcome.error
    if ctx.index is not None and outcome.changed:
        _reindex(ctx, dataset, outcome)
    state = {"changed": "success", "held": "skipped", "failed": "failure"}.get(outcome.status, "noop")
    ctx.record(
        ctx.key(dataset.name, "summary", _digest(outcome.files, outcome.status)), state, dataset=dataset.name,
        rows=outcome.rows_affected, details={**details, "status": outcome.status},
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


def _operation(uri: str, sha256_before: str | None) -> str:
    return hashlib.sha256(json.dumps([uri, sha256_before]).encode()).hexdigest()[:24]


def _change_file(
    ctx: DsrContext, dataset: Dataset, found: FileMatch, edit: _Edit, outcome: DatasetOutcome
) -> FileChange:
    location = Location.parse(found.uri, ctx.s3)
    info = stat_file(location)
    if info is None:
        raise DsrError(f"dataset {dataset.name}: {found.uri} disappeared since it was scanned; run again")
    before = sha256_file(location)
    op = _operation(found.uri, before)
    encrypted = dataset.format == "parquet" and is_encrypted_parquet(location.filesystem(), location.path)
    source = {"uri": found.uri, "sha256": before, "dataset": dataset.name}
    ctx.record(
        ctx.key(dataset.name, op, "intent"), "intent", dataset=dataset.name, inputs=[source], rows=found.rows,
        details={"operation": op, "file_rows": found.rows, "subject_rows": found.matched},
    )  # fmt: skip
    whole = edit.whole_file(found) and found.etag == info.etag  # the scan saw this very version
    try:
        if whole:
            material = _key_material(location) if encrypted else None
            change = _delete(location, info.etag, material, found.rows, found.matched)
        else:
            change = _rewrite(ctx, dataset, location, info.etag, encrypted, edit)
    except (DatasetIOError, EncryptionError, PIIError) as exc:
        ctx.record(
            ctx.key(dataset.name, op, "failure"), "failure", dataset=dataset.name, inputs=[source],
            details={"operation": op, "error": str(exc)},
        )  # fmt: skip
        raise
    change.sha256_before = before
    _purge_old_versions(dataset, location, change, encrypted)
    _record_change(ctx, dataset, op, change)
    return change


def _rewrite(
    ctx: DsrContext, dataset: Dataset, location: Location, etag: str | None, encrypted: bool, edit: _Edit
) -> FileChange:
    material = _key_material(location) if encrypted else None
    rewrite = open_rewrite(
        location, dataset, encrypted=encrypted, key_provider=ctx.key_provider, expected_etag=etag
    )
    rows_before = affected = mentions = 0
    with rewrite.sink as writer:
        for batch in rewrite.batches:
            rows_before += batch.num_rows
            new, hit, said = edit.apply(batch)
            affected, mentions = affected + hit, mentions + said
            if new.num_rows:
                writer.write(new)
    if writer.rows == 0 and rows_before:  # every row was the subject's: no empty file is left behind
        return _delete(location, writer.result.etag, material, rows_before, affected)
    return FileChange(
        location.uri, "rewrite", rows_before, writer.rows, affected, mentions,
        sha256_after=writer.result.sha256,
    )  # fmt: skip


def _delete(
    location: Location, etag: str | None, material: Location | None, rows: int, affected: int
) -> FileChange:
    delete_file(location, expected_etag=etag)
    if material is not None:  # after the data: a crash in between leaves an orphan key file, never data
        delete_file(material)
    return FileChange(location.uri, "delete", rows, 0, affected)


def _key_material(location: Location) -> Location | None:
    try:
        return find_key_material(location)
    except (DatasetIOError, EncryptionError):
        return None


def _purge_old_versions(dataset: Dataset, location: Location, change: FileChange, encrypted: bool) -> None:
    if dataset.retention is not None and dataset.retention.purge_versions and location.is_s3:
        from airflow_aisec.retention.core import purge_versions

        change.versions_purged = purge_versions(location, gone=change.action == "delete")


def _record_change(ctx: DsrContext, dataset: Dataset, op: str, change: FileChange) -> int | None:
    outputs = [{"uri": change.uri, "sha256": change.sha256_after, "dataset": dataset.name}]
    return ctx.record(
        ctx.key(dataset.name, op, "success"), "success", dataset=dataset.name, rows=change.rows_affected,
        inputs=[{"uri": change.uri, "sha256": change.sha256_before, "dataset": dataset.name}],
        outputs=outputs if change.sha256_after else [],
        details={"operation": op, **{k: v for k, v in change.as_dict().items() if k != "uri"}},
    )  # fmt: skip


def _recover(ctx: DsrContext, dataset: Dataset) -> list[FileChange]:
    """Close the intents a killed run of this request left open on ``dataset`` (see the module docstring)."""
    if ctx.audit is None:
        return []
    keyed = dict(ctx.audit.keyed(ctx.key(dataset.name, "")))
    done = []
    for key, index in keyed.items():
        if not key.endswith(":intent"):
            continue
        stem = key.removesuffix(":intent")
        if f"{stem}:success" in keyed or f"{stem}:failure" in keyed:
            continue
        entry = next(ctx.audit.entries(index, index + 1)).data
        source = entry["inputs"][0]
        location = Location.parse(source["uri"], ctx.s3)
        current = sha256_file(location) if stat_file(location) is not None else None
        if current == source["sha256"]:
            continue  # not carried out: this run finds the subject there again and does it
        rows = int(entry["details"]["file_rows"])
        subject = int(entry["details"]["subject_rows"])
        change = FileChange(
            source["uri"], "rewrite" if current else "delete", rows,
            rows - subject if ctx.request.type == "erasure" and dataset.erasure == "delete_rows" else rows,
            subject, sha256_before=source["sha256"], sha256_after=current, recovered=True,
        )  # fmt: skip
        _record_change(ctx, dataset, entry["details"]["operation"], change)
        done.append(change)
    return done


# --- erasure ------------------------------------------------------------------------------------------------


def _erasure(ctx: DsrContext, dataset: Dataset, ids: Identifiers) -> _Edit:
    match = criteria(ctx.catalog, dataset, ids)
    texts = free_text_columns(dataset)
    pattern = ids.mention_pattern()
    sealed = ctx.subject_columns(dataset)
    anonymizer = _Anonymizer(ctx, dataset) if dataset.erasure == "anonymize" else None

    def apply(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, int]:
        view = sealed.open(batch) if sealed is not None else batch
        subject = match.mask(view) if match.columns else falses(batch.num_rows)
        hit = _count(subject)
        if anonymizer is None:
            batch = batch.filter(pc.invert(subject)) if hit else batch
            subject = falses(batch.num_rows)
        elif hit:
            batch = anonymizer(batch, subject)
        said = pc.and_not(mention_mask(batch, texts, pattern), subject) if texts else None
        mentions = _count(said) if said is not None else 0
        if texts and pattern is not None and (mentions or hit):
            batch = _mask_mentions(batch, texts, ids)
        return batch, hit, mentions

    def whole_file(found: FileMatch) -> bool:
        return anonymizer is None and found.matched == found.rows and not found.mentions

    return _Edit(apply, lambda f: bool(f.matched or f.mentions), whole_file)


def _count(mask: pa.Array) -> int:
    return int(pc.sum(mask.cast(pa.int64())).as_py() or 0)


def _mask_mentions(batch: pa.RecordBatch, columns: Sequence[str], ids: Identifiers) -> pa.RecordBatch:
    arrays = list(batch.columns)
    for column in columns:
        if column in batch.schema.names:
            i = batch.schema.get_field_index(column)
            arrays[i] = _masked_mentions(arrays[i], ids)
        else:  # a path into a column: its text leaves are masked, the rest of the column is kept
            i = batch.schema.get_field_index(top_column(column))
            found = leaves(arrays[i], column)
            arrays[i] = with_leaves(arrays[i], column, _masked_mentions(found.values, ids))
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _masked_mentions(values: pa.Array | pa.ChunkedArray, ids: Identifiers) -> pa.Array:
    masked = [ids.mask_mentions(v, MENTION_TAG) if v else v for v in as_text(values).to_pylist()]
    return pa.array(masked, pa.string()).cast(values.type)


def _merge_rows(values: pa.Array, subject: pa.Array, replacement: pa.Array) -> pa.Array:
    """``values`` with the subject's rows (in order) taken from ``replacement``; works for nested types,
    which ``replace_with_mask`` does not take."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(replacement, pa.ChunkedArray):
        replacement = replacement.combine_chunks()
    chosen = pc.fill_null(subject, False).to_numpy(zero_copy_only=False)
    index = np.arange(len(values), dtype=np.int64)
    index[chosen] = len(values) + np.arange(int(chosen.sum()), dtype=np.int64)
    return pc.take(pa.concat_arrays([values, replacement]), pa.array(index, pa.int64()))


class _Anonymizer:
    """Masks the subject's rows of a batch per the catalog and cuts their link to the subject."""

    def __init__(self, ctx: DsrContext, dataset: Dataset) -> None:
        from airflow_aisec.pii.mask import plan_from_catalog

        plans = plan_from_catalog(dataset, ctx.catalog.subjects.pseudonym_key)
        for plan in plans:
            if plan.strategy == "drop":  # a row cannot lose a column on its own: its value goes
                plan.strategy, plan.options = "redact", {}
            elif plan.strategy in ("pseudonymize", "encrypt"):
                # Both keep a value recognisable (the same token everywhere, or reversible by key holders),
                # which would keep the anonymized row linkable to the subject: the entity tag replaces it.
                plan.strategy, plan.options = "replace", {}
        self.links = set(dataset.identity.values()) | set(dataset.references)
        self.masked = {p.column for p in plans} - self.links
        # Columns holding a masked path (``payload`` of ``payload.ip``): their subject rows are rebuilt.
        self.holding = {top_column(c) for c in self.masked} - self.masked
        self.primary_key = dataset.primary_key
        self.masker: Masker | None = None
        if self.masked:
            from airflow_aisec.pii.mask import Masker

            self.masker = Masker([p for p in plans if p.column in self.masked], ctx.keyring, ctx.find_spans)

    def __call__(self, batch: pa.RecordBatch, subject: pa.Array) -> pa.RecordBatch:
        rows = batch.filter(subject)
        masked = self.masker.mask_batch(rows) if self.masker is not None else rows
        arrays = []
        for i, field in enumerate(batch.schema):
            if field.name in self.links:
                replacement = self._unlinked(field, rows.num_rows)
            elif field.name in self.masked:
                replacement = masked.column(field.name).cast(field.type)
            elif field.name in self.holding:
                replacement = _cast_nested(masked.column(field.name), field)
                arrays.append(_merge_rows(batch.column(i), subject, replacement))
                continue
            else:
                arrays.append(batch.column(i))
                continue
            arrays.append(pc.replace_with_mask(batch.column(i), subject, replacement))
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)

    def _unlinked(self, field: pa.Field, n: int) -> pa.Array:
        """Nulls, or random tokens where a null is not allowed (primary key, non-nullable column)."""
        if field.name != self.primary_key and field.nullable:
            return pa.nulls(n, field.type)
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            raise DsrError(
                f"column {field.name!r} links rows to the subject but can hold neither null nor a token"
            )
        return pa.array([TOKEN_PREFIX + secrets.token_hex(12) for _ in range(n)], field.type)


def _cast_nested(values: pa.Array | pa.ChunkedArray, field: pa.Field) -> pa.Array:
    """Masked nested values back to the column's type (a redacted field is nullable in the masked type)."""
    try:
        return values.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise DsrError(
            f"column {field.name!r}: a field inside it cannot hold null, so the subject's value cannot be "
            f"erased in place; declare the field nullable or use erasure: delete_rows"
        ) from None


# --- rectification ------------------------------------------------------------------------------------------


def _rectification(ctx: DsrContext, dataset: Dataset, ids: Identifiers) -> _Edit:
    match = criteria(ctx.catalog, dataset, ids)
    changes = {k: v for k, v in ctx.request.changes.items() if k in dataset.columns}
    sealed = ctx.subject_columns(dataset)

    def apply(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, int]:
        view = sealed.open(batch) if sealed is not None else batch
        subject = match.mask(view)
        hit = _count(subject)
        if not hit:
            return batch, 0, 0
        arrays = list(batch.columns)
        for column, text in changes.items():
            i = batch.schema.get_field_index(column)
            if i >= 0:
                field = batch.schema.field(i)
                arrays[i] = pc.if_else(subject, new_value(dataset.name, field, text), arrays[i])
            elif in_batch(batch, column):
                i = batch.schema.get_field_index(top_column(column))
                arrays[i] = _rectify_path(dataset.name, arrays[i], column, subject, text)
        new = pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
        return (sealed.seal(new) if sealed is not None else new), hit, 0

    return _Edit(apply, lambda f: bool(f.matched) and bool(changes))


def _rectify_path(
    dataset: str, values: pa.Array | pa.ChunkedArray, path: str, subject: pa.Array, text: str
) -> pa.Array | pa.ChunkedArray:
    """``values`` with the leaves of ``path`` in the subject's rows set to ``text`` (a null struct holding
    one stays null: there is no value to correct)."""
    found = leaves(values, path)
    new = new_value(dataset, pa.field(path, found.values.type), text)
    chosen = pc.and_(pc.take(subject, found.rows), found.present)
    return with_leaves(values, path, pc.if_else(chosen, new, found.values))


def field_of(schema: pa.Schema, name: str) -> pa.Field:
    """The field of a column, or of the leaf a path (``payload.ip``) reaches, named as given."""
    if name in schema.names:
        return schema.field(name)
    return pa.field(name, resolve(schema, name))


def new_value(dataset: str, field: pa.Field, text: str) -> pa.Scalar:
    """``text`` as a value of ``field``'s type; ``DsrError`` (naming the column, not the value) otherwise."""
    kind = field.type
    try:
        if pa.types.is_timestamp(kind):
            moment = dt.datetime.fromisoformat(text)
            if kind.tz is not None and moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return pa.scalar(moment, kind)
        if pa.types.is_date(kind):
            return pa.scalar(dt.date.fromisoformat(text[:10]), kind)
        if pa.types.is_boolean(kind):
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return pa.scalar(text.lower() == "true", kind)
        return pa.scalar(text, pa.string()).cast(kind)
    except (ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        raise DsrError(f"dataset {dataset}: the new value of {field.name!r} is not a valid {kind}") from None


def check_rectification(ctx: DsrContext, match: DatasetMatch) -> None:
    """Refuse, before any file is changed, a new value that does not fit a column's type in the data."""
    dataset = ctx.catalog.dataset(match.dataset)
    for found in match.files[:1]:
        info = stat_file(Location.parse(found.uri, ctx.s3))
        if info is None:
            continue
        columns = [c for c in ctx.request.changes if c in dataset.columns]
        if not columns:
            return
        scanner = scanner_for(ctx)
        for batch in scanner.batches(dataset, info, read_columns(dataset, columns)):
            for column in columns:
                new_value(dataset.name, field_of(batch.schema, column), ctx.request.changes[column])
            break


def scanner_for(ctx: DsrContext) -> Scanner:
    """A ``Scanner`` that decrypts the catalog's encrypted datasets."""
    return catalog_scanner(ctx.catalog, ctx.keyring)


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
            remaining += _count(subject)
            if pattern is not None and texts:
                mentions += _count(mention_mask(batch, texts, pattern))
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
            wrong += rows.num_rows - _count(equal)
        else:  # values held by a null struct cannot be corrected and are not counted
            wrong += _count(pc.and_not(leaves(rows.column(top_column(column)), column).present, equal))
    return wrong

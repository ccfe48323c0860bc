"""How a request changes the batches of one file: erasure (rows removed or anonymized, mentions masked)
and rectification (the subject's values corrected), as ``Edit``s for the journaled file change."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.dsr.context import DsrContext, scanner_for
from airflow_aisec.dsr.identifiers import Identifiers
from airflow_aisec.dsr.matching import (
    as_text,
    criteria,
    falses,
    free_text_columns,
    in_batch,
    mention_mask,
)
from airflow_aisec.dsr.resolve import DatasetMatch, FileMatch
from airflow_aisec.dsr.scan import read_columns
from airflow_aisec.exceptions import DsrError
from airflow_aisec.io import (
    Location,
    stat_file,
)
from airflow_aisec.io.nested import leaves, resolve, top_column, with_leaves

if TYPE_CHECKING:
    from airflow_aisec.catalog import Dataset
    from airflow_aisec.pii.mask import Masker

MENTION_TAG = "<REDACTED>"
TOKEN_PREFIX = "erased-"  # nosec B105 # the prefix of erased values, not a password


@dataclasses.dataclass
class Edit:
    """How one batch changes: ``apply(batch)`` returns (new batch, rows affected, mentions masked)."""

    apply: Callable[[pa.RecordBatch], tuple[pa.RecordBatch, int, int]]
    wanted: Callable[[FileMatch], bool]
    whole_file: Callable[[FileMatch], bool] = lambda found: False


# --- erasure ------------------------------------------------------------------------------------------------


def erasure(ctx: DsrContext, dataset: Dataset, ids: Identifiers) -> Edit:
    match = criteria(ctx.catalog, dataset, ids)
    texts = free_text_columns(dataset)
    pattern = ids.mention_pattern()
    sealed = ctx.subject_columns(dataset)
    anonymizer = _Anonymizer(ctx, dataset) if dataset.erasure == "anonymize" else None

    def apply(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, int]:
        view = sealed.open(batch) if sealed is not None else batch
        subject = match.mask(view) if match.columns else falses(batch.num_rows)
        hit = count(subject)
        if anonymizer is None:
            batch = batch.filter(pc.invert(subject)) if hit else batch
            subject = falses(batch.num_rows)
        elif hit:
            batch = anonymizer(batch, subject)
        said = pc.and_not(mention_mask(batch, texts, pattern), subject) if texts else None
        mentions = count(said) if said is not None else 0
        if texts and pattern is not None and (mentions or hit):
            batch = _mask_mentions(batch, texts, ids)
        return batch, hit, mentions

    def whole_file(found: FileMatch) -> bool:
        return anonymizer is None and found.matched == found.rows and not found.mentions

    return Edit(apply, lambda f: bool(f.matched or f.mentions), whole_file)


def count(mask: pa.Array) -> int:
    """How many rows ``mask`` selects."""
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


def rectification(ctx: DsrContext, dataset: Dataset, ids: Identifiers) -> Edit:
    match = criteria(ctx.catalog, dataset, ids)
    changes = {k: v for k, v in ctx.request.changes.items() if k in dataset.columns}
    sealed = ctx.subject_columns(dataset)

    def apply(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, int]:
        view = sealed.open(batch) if sealed is not None else batch
        subject = match.mask(view)
        hit = count(subject)
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

    return Edit(apply, lambda f: bool(f.matched) and bool(changes))


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

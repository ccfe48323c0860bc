"""Writing and showing one subject's consents: ``grant`` and ``withdraw`` append a row to the consent dataset
atomically, ``subject_consents`` lists what the subject said, purpose by purpose.

A row is appended by writing a new version of the dataset's last file (its rows, then the new one) through
``atomic_write``, which verifies the new version and swaps it in only if the file did not change meanwhile:
a failure at any point leaves the old file as it was. A consent dataset without files gets its first file,
``consents.<ext>``. Asking for what the subject's own latest statement for that purpose already says changes
nothing (outcome ``noop``), so a retried request appends no second row. Every change is a
``consent.grant``/``consent.withdraw`` entry naming the subject by pseudonym only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_aisec.catalog.consent import (
    CONSENT_COLUMNS,
    GRANTED_AT,
    PURPOSE,
    WITHDRAWN_AT,
    SubjectColumn,
    consent_dataset,
)
from airflow_aisec.catalog.purposes import Taxonomy
from airflow_aisec.exceptions import ConsentError
from airflow_aisec.governance.consent import ConsentBook, Statement, SubjectHasher, consent_batches
from airflow_aisec.governance.purpose import shown_purpose
from airflow_aisec.io.text import fold_text

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.io import FileInfo, S3Options, WriteResult

GRANT_ACTION, WITHDRAW_ACTION = "consent.grant", "consent.withdraw"
FIRST_FILE = "consents"
_MAX_VALUE = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CASEFOLDED = "EMAIL_ADDRESS"


@dataclasses.dataclass(frozen=True)
class ConsentChange:
    """What a grant or withdrawal did: the subject as a pseudonym, whether a row was appended, and where."""

    action: str
    purpose: str
    identity: str
    subject: str
    at: dt.datetime
    changed: bool
    uri: str | None = None
    sha256: str | None = None

    def audit_fields(self, dataset: str) -> dict[str, Any]:
        """The entry's fields: dataset, pseudonym, purpose, time and the file written, never the subject."""
        outputs = [{"uri": self.uri, "sha256": self.sha256, "dataset": dataset}] if self.uri else []
        return {
            "dataset": dataset,
            "subject": self.subject,
            "outcome": "success" if self.changed else "noop",
            "outputs": outputs,
            "details": {"purpose": self.purpose, "identity": self.identity, "at": self.at.isoformat()},
        }


def consent_source(catalog: Catalog) -> Dataset:
    """The consent dataset, or ``ConsentError`` when the catalog names none."""
    source = consent_dataset(catalog)
    if source is None:
        raise ConsentError(f"{catalog.source}: the catalog names no consent source (consent.dataset)")
    return source


def source_subject(catalog: Catalog, identity: str | None) -> SubjectColumn:
    """The consent dataset's column for ``identity`` (default: the first identity type it holds)."""
    source = consent_source(catalog)
    held = [kind for kind in catalog.subjects.identities if kind in source.identity]
    kind = identity or (held[0] if held else "")
    if kind not in held:
        raise ConsentError(
            f"consent dataset {source.name!r}: identity type {kind!r} is not one it holds "
            f"(it holds: {', '.join(held) or 'none'})"
        )
    spec = source.columns.get(source.identity[kind])
    return SubjectColumn(kind, source.identity[kind], spec is not None and spec.pii == _CASEFOLDED)


def _checked_subject(subject_id: str, folded: bool) -> str:
    if not subject_id or len(subject_id) > _MAX_VALUE or _CONTROL.search(subject_id):
        raise ConsentError(f"subject id: must be 1 to {_MAX_VALUE} printable characters")
    if not folded and subject_id != subject_id.strip():
        # " C1 " is another subject than "C1" (only e-mails are folded, spaces and case): a withdrawal for it
        # would leave C1's consent standing.
        raise ConsentError("subject id: has leading or trailing spaces; give the id as the data holds it")
    return subject_id


def _checked_purpose(catalog: Catalog, purpose: str) -> str:
    taxonomy = Taxonomy.of(catalog)
    if purpose in taxonomy and shown_purpose(purpose) == purpose:
        return purpose
    shown = shown_purpose(purpose)
    suggestion = taxonomy.suggest(purpose) if shown == purpose else ""
    raise ConsentError(f"purpose {shown!r}: neither a Fides data use nor declared under purposes{suggestion}")


def subject_consents(
    keys: KeySource,
    subject_id: str,
    identity: str | None = None,
    *,
    s3: S3Options | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Statement]:
    """Purpose → the subject's own latest statement for it as of ``at`` (default now)."""
    subject = source_subject(keys.catalog, identity)
    value = _checked_subject(subject_id, subject.casefold)
    hasher = SubjectHasher()
    book = ConsentBook(hasher, known=Taxonomy.of(keys.catalog))
    moment = at or dt.datetime.now(dt.UTC)
    for batch in consent_batches(keys, consent_source(keys.catalog), subject, s3 or keys.s3):
        book.add(batch, subject, moment)
    return dict(sorted(book.latest.get(hasher(fold_text(value) if subject.casefold else value), {}).items()))


def record_consent(
    keys: KeySource,
    subject_id: str,
    purpose: str,
    *,
    grant: bool,
    identity: str | None = None,
    at: dt.datetime | None = None,
    audit: AuditLog | None = None,
    s3: S3Options | None = None,
) -> ConsentChange:
    """Grant (``grant`` True) or withdraw the subject's consent to ``purpose`` at ``at`` (default now): a row
    appended atomically, and a ``consent.grant``/``consent.withdraw`` entry in ``audit`` (default: the
    configured audit log). Nothing is appended when the subject's latest statement for it already says so."""
    from airflow_aisec.crypto.pseudonyms import Pseudonymizer

    catalog = keys.catalog
    purpose = _checked_purpose(catalog, purpose)
    subject = source_subject(catalog, identity)
    moment = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    said = subject_consents(keys, subject_id, subject.identity, s3=s3, at=moment).get(purpose)
    changed = said is None or said.granted != grant
    result = _append(keys, subject, subject_id, purpose, grant, moment, s3) if changed else None
    key = keys.keyring.ensure(catalog.subjects.pseudonym_key, "symmetric").material
    change = ConsentChange(
        GRANT_ACTION if grant else WITHDRAW_ACTION, purpose, subject.identity, Pseudonymizer(key)(subject_id),
        moment, changed, result.uri if result else None, result.sha256 if result else None,
    )  # fmt: skip
    _record(change, consent_source(catalog).name, audit)
    return change


def _record(change: ConsentChange, dataset: str, audit: AuditLog | None) -> None:
    if audit is not None:
        audit.append(change.action, **change.audit_fields(dataset))
        return
    from airflow_aisec.audit import AuditLog

    with AuditLog.open() as log:
        log.append(change.action, **change.audit_fields(dataset))


def _append(
    keys: KeySource,
    subject: SubjectColumn,
    subject_id: str,
    purpose: str,
    grant: bool,
    at: dt.datetime,
    s3: S3Options | None,
) -> WriteResult:
    """Append one consent row to the consent dataset's last file (or its first, when it has none)."""
    from airflow_aisec.catalog.lake import dataset_files
    from airflow_aisec.io import Location, extension, write_dataset_file

    source = consent_source(keys.catalog)
    values = {subject.column: subject_id, PURPOSE: purpose, (GRANTED_AT if grant else WITHDRAWN_AT): at}
    files = dataset_files(source, s3 or keys.s3, may_be_empty=True)
    if files:
        return _rewrite_with(files[-1], source.format, values)
    schema = new_schema(source)
    table = pa.Table.from_pylist([values], schema=schema)
    root = Location.parse(source.uri, s3 or keys.s3)
    return write_dataset_file(root, source.format, table, name=FIRST_FILE + extension(source.format))


def new_schema(source: Dataset) -> pa.Schema:
    """The schema of a new consent file: the consent times as UTC timestamps, every other column text."""
    times = {GRANTED_AT, WITHDRAWN_AT}
    return pa.schema(
        [
            pa.field(name, pa.timestamp("us", tz="UTC") if name in times else pa.string())
            for name in dict.fromkeys([*source.columns, *CONSENT_COLUMNS])
        ]
    )


def _rewrite_with(info: FileInfo, fmt: str, values: dict[str, Any]) -> WriteResult:
    """A new version of the file ``info``: its rows, then a row of ``values``, swapped in atomically."""
    from airflow_aisec.io import atomic_write, read_file

    batches = read_file(info, fmt)
    first = next(batches, None)
    if first is None:
        raise ConsentError(f"{info.uri}: the consent file holds no schema to append to")
    schema = pa.schema([_writable(field) for field in first.schema])
    row = pa.RecordBatch.from_arrays(
        [pa.array([_cell(values.get(f.name), f.type)], f.type) for f in schema], schema=schema
    )
    with atomic_write(info.location, fmt, schema, expected_etag=info.etag) as writer:
        for batch in _chain(first, batches):
            writer.write(pa.Table.from_batches([batch]).cast(schema))
        writer.write(row)
    return writer.result


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _writable(field: pa.Field) -> pa.Field:
    """A column no value was seen for yet (an all-empty CSV column) is written as text."""
    return field.with_type(pa.string()) if pa.types.is_null(field.type) else field


def _cell(value: object, kind: pa.DataType) -> object:
    """``value`` as a column of type ``kind`` holds it: a time as ISO-8601 text in a text column."""
    if value is None or not isinstance(value, dt.datetime):
        return value
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return value.isoformat()
    if pa.types.is_timestamp(kind) and kind.tz is None:
        return value.replace(tzinfo=None)
    return value

"""Consent at read time: a read for a purpose that needs consent keeps only the rows of subjects with a
current consent, and records how many it kept and dropped (``consent.filter``).

Which consent counts, for a read for purpose P as of a time T:

* each row of the consent dataset states a grant at ``granted_at`` and/or a withdrawal at ``withdrawn_at``;
  for one subject and one purpose, the latest statement at or before T decides (a grant and a withdrawal at
  the same instant: withdrawn); statements after T do not count yet;
* P's consent is the subject's consent for P itself or for a purpose above it (consent to ``newsletter``'s
  parent covers ``newsletter``); the nearest purpose the subject said something about decides, so withdrawing
  ``newsletter`` alone stands even while a broader grant does, and consent to a purpose below P never counts
  for P, which is broader.

The consent set holds no identifier: each is folded (e-mail addresses) and hashed with a key of this read's
own (BLAKE2b), so it cannot be matched with anything outside the read, and only one batch of raw values is in
memory at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.catalog.consent import (
    GRANTED_AT,
    PURPOSE,
    WITHDRAWN_AT,
    SubjectColumn,
    consent_dataset,
    consent_purpose,
    consent_subject,
)
from airflow_aisec.catalog.purposes import Taxonomy
from airflow_aisec.exceptions import ConsentError
from airflow_aisec.governance.purpose import shown_purpose
from airflow_aisec.io.text import as_text

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.datasets import DatasetReader
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.io import FileInfo, S3Options

FILTER_ACTION = "consent.filter"
_DIGEST = 16


class SubjectHasher:
    """Keyed BLAKE2b digests of identifiers under a key of its own: values agree within one read only."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def __repr__(self) -> str:
        return "SubjectHasher(<key hidden>)"

    def __call__(self, value: str) -> bytes:
        return hashlib.blake2b(value.encode("utf-8"), key=self._key, digest_size=_DIGEST).digest()


def as_instant(value: object) -> dt.datetime | None:
    """A consent time as an aware UTC instant (a naive one is UTC); None for an empty value."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConsentError("a consent time is not an ISO-8601 date and time") from None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise ConsentError(f"a consent time is a {type(value).__name__}, not a date and time")


@dataclasses.dataclass(frozen=True)
class Statement:
    """What one subject last said about one purpose by some time: granted or not, and when."""

    at: dt.datetime
    granted: bool

    def after(self, other: Statement | None) -> bool:
        """Whether this statement replaces ``other`` (later; a withdrawal wins a tie)."""
        if other is None or self.at > other.at:
            return True
        return self.at == other.at and not self.granted and other.granted


def statements(
    purposes: Sequence[Any], granted: Sequence[Any], withdrawn: Sequence[Any], at: dt.datetime
) -> Iterator[tuple[int, str, Statement]]:
    """(row, purpose, statement) for each grant and withdrawal at or before ``at`` in these rows."""
    for row, (purpose, grant, withdrawal) in enumerate(zip(purposes, granted, withdrawn, strict=True)):
        for value, is_grant in ((grant, True), (withdrawal, False)):
            instant = as_instant(value)
            if instant is not None and instant <= at and purpose:
                yield row, str(purpose), Statement(instant, is_grant)


class ConsentBook:
    """The latest statement of each subject (by digest) for each purpose of interest, built batch by batch."""

    def __init__(
        self,
        hasher: SubjectHasher,
        purposes: Iterable[str] | None = None,
        known: Container[str] | None = None,
    ) -> None:
        self.hasher = hasher
        self.purposes = set(purposes) if purposes is not None else None
        # The catalog's purposes: a row naming any other ("newsletter ", "Newsletter") is refused, not
        # skipped, since a withdrawal skipped that way would leave an earlier grant standing.
        self.known = known
        self.latest: dict[bytes, dict[str, Statement]] = {}

    def add(self, batch: pa.RecordBatch, subject: SubjectColumn, at: dt.datetime) -> None:
        """Take in the statements of one batch of the consent dataset (rows without a subject are skipped)."""
        if self.known is not None:
            named = pc.unique(as_text(batch.column(PURPOSE))).to_pylist()
            unknown = sorted(str(p)[:40] for p in named if p and p not in self.known)
            if unknown:
                raise ConsentError(
                    f"consent dataset: purpose(s) {', '.join(map(repr, unknown[:5]))} in its rows are no "
                    "purpose of the catalog; fix those rows (a statement no read can match is refused)"
                )
        if self.purposes is not None:
            wanted = pa.array(sorted(self.purposes), pa.string())
            batch = batch.filter(
                pc.fill_null(pc.is_in(as_text(batch.column(PURPOSE)), value_set=wanted), False)
            )
        subjects = as_text(batch.column(subject.column), subject.casefold).to_pylist()
        found = statements(
            batch.column(PURPOSE).to_pylist(),
            batch.column(GRANTED_AT).to_pylist(),
            batch.column(WITHDRAWN_AT).to_pylist(),
            at,
        )
        for row, purpose, statement in found:
            if not subjects[row]:
                continue
            said = self.latest.setdefault(self.hasher(subjects[row]), {})
            if statement.after(said.get(purpose)):
                said[purpose] = statement

    def consenting(self, lineage: Sequence[str]) -> frozenset[bytes]:
        """The subjects whose nearest statement along ``lineage`` (a purpose, those above it) is a grant."""
        members = set()
        for digest, said in self.latest.items():
            nearest = next((said[key] for key in lineage if key in said), None)
            if nearest is not None and nearest.granted:
                members.add(digest)
        return frozenset(members)


@dataclasses.dataclass
class ConsentCounts:
    """Rows a consent filter kept and dropped."""

    kept: int = 0
    dropped: int = 0


class ConsentFilter:
    """Keeps the rows of ``dataset`` whose subject has a current consent for ``purpose``; counts both."""

    def __init__(
        self,
        dataset: str,
        purpose: str,
        needed_for: str,
        subject: SubjectColumn,
        members: frozenset[bytes],
        hasher: SubjectHasher,
    ) -> None:
        self.dataset, self.purpose, self.needed_for = dataset, purpose, needed_for
        self.subject = subject
        self._members = members
        self._hasher = hasher
        self.counts = ConsentCounts()

    def __repr__(self) -> str:
        return (
            f"ConsentFilter({self.dataset!r}, {shown_purpose(self.purpose)!r}, {len(self._members)} subjects)"
        )

    @property
    def consenting(self) -> int:
        """How many subjects have a current consent (a count, never who)."""
        return len(self._members)

    def mask(self, batch: pa.RecordBatch) -> pa.Array:
        """True for the rows whose subject has a current consent (a row without a subject has none)."""
        if self.subject.column not in batch.schema.names:
            raise ConsentError(
                f"dataset {self.dataset}: column {self.subject.column!r}, which names each row's subject, "
                "is not in the data read"
            )
        encoded = pc.dictionary_encode(as_text(batch.column(self.subject.column), self.subject.casefold))
        known = [v is not None and self._hasher(v) in self._members for v in encoded.dictionary.to_pylist()]
        return pc.fill_null(pc.take(pa.array(known, pa.bool_()), encoded.indices), False)

    def apply(self, batch: pa.RecordBatch, counts: ConsentCounts | None = None) -> pa.RecordBatch:
        """``batch`` without the rows of subjects lacking a current consent."""
        kept = batch.filter(self.mask(batch))
        for tally in (self.counts, counts) if counts is not None else (self.counts,):
            tally.kept += kept.num_rows
            tally.dropped += batch.num_rows - kept.num_rows
        return kept

    def audit_fields(self, counts: ConsentCounts, *, complete: bool, task: str | None) -> dict[str, Any]:
        """The ``consent.filter`` entry's fields: dataset, purpose and counts, never a subject."""
        return {
            "dataset": self.dataset,
            "outcome": "success",
            "rows": counts.kept,
            "details": {
                "purpose": shown_purpose(self.purpose),
                "needs_consent": self.needed_for,
                "identity": self.subject.identity,
                "kept": counts.kept,
                "dropped": counts.dropped,
                "complete": complete,
                "task": task,
            },
        }


def consent_filter(
    keys: KeySource,
    dataset: str,
    purpose: str | None,
    *,
    s3: S3Options | None = None,
    at: dt.datetime | None = None,
) -> ConsentFilter | None:
    """The consent filter of a read of ``dataset`` for ``purpose`` as of ``at`` (default now); None when the
    purpose needs no consent. Raises ``ConsentError`` when the dataset's rows cannot be tied to consents."""
    catalog = keys.catalog
    needed_for = consent_purpose(catalog, purpose) if purpose else None
    if purpose is None or needed_for is None:
        return None
    spec = catalog.dataset(dataset)
    source, subject = consent_dataset(catalog), consent_subject(catalog, spec)
    if source is None or subject is None:
        raise _untied(catalog, spec, purpose, needed_for)
    hasher = SubjectHasher()
    lineage = Taxonomy.of(catalog).lineage(purpose)
    book = ConsentBook(hasher, lineage, Taxonomy.of(catalog))
    source_subject = SubjectColumn(subject.identity, source.identity[subject.identity], subject.casefold)
    for batch in consent_batches(keys, source, source_subject, s3 if s3 is not None else keys.s3):
        book.add(batch, source_subject, at or dt.datetime.now(dt.UTC))
    members = book.consenting(lineage)
    return ConsentFilter(dataset, purpose, needed_for, subject, members, hasher)


def consent_batches(
    keys: KeySource, source: Dataset, subject: SubjectColumn, s3: S3Options | None
) -> Iterator[pa.RecordBatch]:
    """The consent dataset's batches, with only the subject's column and the consent columns."""
    from airflow_aisec.catalog.lake import dataset_files
    from airflow_aisec.crypto.datasets import reader_for

    reader = reader_for(keys, source)
    columns = [subject.column, PURPOSE, GRANTED_AT, WITHDRAWN_AT]
    for info in dataset_files(source, s3):
        yield from reader(info, source.format, columns)


def _untied(catalog: Catalog, spec: Dataset, purpose: str, needed_for: str) -> ConsentError:
    source = catalog.consent.dataset if catalog.consent is not None else None
    why = (
        "the catalog names no consent source (consent.dataset)"
        if source is None
        else f"no column of it holds an identity the consent dataset {source!r} holds"
    )
    return ConsentError(
        f"dataset {spec.name!r} is read for purpose {shown_purpose(purpose)!r}, which needs consent "
        f"({needed_for!r} says needs_consent), but {why}: rows cannot be tied to consents"
    )


def refusal_fields(
    dataset: str, purpose: str | None, error: ConsentError, task: str | None
) -> dict[str, Any]:
    """The ``consent.filter`` entry of a read refused because its rows cannot be tied to consents."""
    return {
        "dataset": dataset,
        "outcome": "failure",
        "details": {"purpose": shown_purpose(purpose), "reason": str(error), "task": task},
    }


class ConsentReader:
    """A dataset reader that keeps only consenting subjects' rows; ``on_file`` hears each file's counts."""

    def __init__(
        self,
        reader: DatasetReader,
        consent: ConsentFilter,
        on_file: Callable[[FileInfo, ConsentCounts, bool], object] | None = None,
    ) -> None:
        self.reader = reader
        self.consent = consent
        self.on_file = on_file

    def __call__(
        self, info: FileInfo, fmt: str, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The kept rows of one file (the subject's column is read even when ``columns`` leaves it out)."""
        column = self.consent.subject.column
        wanted = None if columns is None else list(dict.fromkeys([*columns, column]))
        counts, complete = ConsentCounts(), False
        try:
            for batch in self.reader(info, fmt, wanted):
                kept = self.consent.apply(batch, counts)
                yield kept if columns is None else kept.select(list(columns))
            complete = True
        finally:
            if self.on_file is not None:
                self.on_file(info, counts, complete)

    def shape(self, info: FileInfo, fmt: str) -> tuple[int, list[str]]:
        """Kept rows and column names of one file."""
        rows, names = 0, list[str]()
        for batch in self(info, fmt):
            rows += batch.num_rows
            names = names or list(batch.schema.names)
        return rows, names

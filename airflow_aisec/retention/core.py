"""Retention enforcement: plan which rows of a dataset have outlived their rule, then purge them safely.

``plan_dataset`` decides, per file, to ``keep`` it, ``rewrite`` it without its expired rows, or ``delete``
it because every row expired. It reads as little as it can: a plaintext Parquet file whose statistics show
the retention column entirely on one side of the cutoff is decided from its footer alone; anything else is
scanned, reading only the retention column (and the subject column when per-subject holds exist).

``apply_dataset`` carries a plan out. Every file is replaced through ``atomic_write`` (or
``atomic_write_encrypted``, so encrypted files stay encrypted under the catalog's key and columns) against
the version that was planned, so a concurrent change is detected and any crash leaves each file either in
its old or its new version.

Rules applied, and why:

* A dataset-level ``legal_hold`` in force on ``as_of``'s day keeps every file: nothing is read or purged.
* Rows of a subject under a per-subject hold (``HoldList``, by pseudonym) are kept even when expired.
* A missing or unparseable retention value is never treated as old: such rows are kept and reported, and
  the plan is marked failed. ``apply_dataset`` still purges every row whose date *is* known to be expired
  (delaying them would itself breach the rule) and then reports the dataset as failed, so an operator or
  ``aisec retention apply`` ends in error after doing the safe part.
* Audit: before touching a file, an ``intent`` entry (``retention.delete``: file, digest before, rule,
  cutoff) is appended; afterwards the outcome (rows removed, digests before and after, holds honoured).
  Idempotency keys derive from (dataset, file, digest before, cutoff), so a rerun never duplicates them.
  A killed run leaves an intent without outcome: the next ``apply_dataset`` finds it among the last
  ``RECOVERY_WINDOW`` audit entries. Killed before the swap, the file is unchanged: the same plan redoes it
  under the same keys, and an intent no plan redoes (a later cutoff) is closed as ``skipped``. Killed after
  the swap, the file no longer has the digest it had before: the outcome is recorded (``recovered``) after
  finishing any key-material or old-version clean-up the intent names. A dataset with nothing to do gets
  one ``noop`` summary entry per cutoff (``skipped`` under a legal hold), so a second run on the same day
  adds at most that entry.
* ``retention.purge_versions`` (S3 versioned buckets): after a rewrite or delete, the object's noncurrent
  versions and delete markers are deleted too, or the purged rows would survive in old versions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_aisec.crypto.parquet import find_key_material, is_encrypted_parquet
from airflow_aisec.crypto.shredding import subject_column
from airflow_aisec.exceptions import (
    CatalogError,
    ConfigError,
    DatasetIOError,
    EncryptionError,
    VerificationError,
)
from airflow_aisec.io import FileInfo, Location, S3Options, delete_file, list_dataset_files, read_file
from airflow_aisec.io import sha256_file as _sha256_file
from airflow_aisec.io.storage import s3_error
from airflow_aisec.rewrite import open_rewrite, text_schema

if TYPE_CHECKING:
    from airflow_aisec.audit.log import AuditLog
    from airflow_aisec.catalog import Catalog, Dataset, LegalHold
    from airflow_aisec.crypto.datasets import DatasetReader
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.providers import KeyProvider
    from airflow_aisec.retention.holds import Hold

Action = Literal["keep", "rewrite", "delete"]
ACTION = "retention.delete"
RECOVERY_WINDOW = 10_000
"""How many of the newest audit entries are searched for intents a killed run left without an outcome."""

_TS = pa.timestamp("us", tz="UTC")
# Text is tried as zoned and naive instants, at micro- then nanosecond precision, before parsing one by one.
_TEXT_TARGETS = (_TS, pa.timestamp("us"), pa.timestamp("ns", tz="UTC"), pa.timestamp("ns"))
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


# --- plans --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FilePlan:
    """What retention will do to one file.

    ``expired`` rows are older than the cutoff; ``held`` of them belong to subjects under a hold and stay;
    ``purge`` = ``expired - held`` rows go. ``bad_dates`` rows have no usable date and stay. ``method`` is
    how the file was judged: ``statistics`` (Parquet footer only), ``scan`` or ``legal-hold`` (not read).
    """

    location: Location
    action: Action
    rows: int | None
    expired: int = 0
    held: int = 0
    bad_dates: int = 0
    etag: str | None = None
    sha256_before: str | None = None
    method: str = "scan"
    encrypted: bool = False

    @property
    def uri(self) -> str:
        """The file's URI."""
        return self.location.uri

    @property
    def purge(self) -> int:
        """Rows this plan removes."""
        return self.expired - self.held

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "uri": self.uri,
            "action": self.action,
            "rows": self.rows,
            "expired": self.expired,
            "held": self.held,
            "purge": self.purge,
            "bad_dates": self.bad_dates,
            "sha256_before": self.sha256_before,
            "method": self.method,
            "encrypted": self.encrypted,
        }


@dataclasses.dataclass
class DatasetPlan:
    """Retention's plan for one dataset; ``failed`` when rows with unusable dates were found."""

    dataset: str
    fmt: str
    root: Location
    column: str
    keep_for: str
    as_of: dt.datetime
    cutoff: dt.datetime
    subject_column: str | None = None
    purge_versions: bool = False
    files: list[FilePlan] = dataclasses.field(default_factory=list)
    legal_hold: LegalHold | None = None
    errors: list[str] = dataclasses.field(default_factory=list)
    # Pseudonyms under an active per-subject hold, and how to compute a row subject's pseudonym.
    held_subjects: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)
    pseudonymize: Callable[[str], str] | None = dataclasses.field(default=None, repr=False, compare=False)
    _pseudonyms: dict[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        """True when some rows could not be judged (they are kept, but the run must not look clean)."""
        return bool(self.errors)

    @property
    def rows_to_purge(self) -> int:
        """Rows the plan removes, over every file."""
        return sum(f.purge for f in self.files)

    @property
    def rows_held(self) -> int:
        """Expired rows kept because of per-subject holds."""
        return sum(f.held for f in self.files)

    @property
    def bad_dates(self) -> int:
        """Rows kept because their retention value is missing or unparseable."""
        return sum(f.bad_dates for f in self.files)

    def count(self, action: Action) -> int:
        """How many files get ``action``."""
        return sum(1 for f in self.files if f.action == action)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (no subject identifiers or pseudonyms)."""
        hold = self.legal_hold
        return {
            "dataset": self.dataset,
            "column": self.column,
            "keep_for": self.keep_for,
            "as_of": self.as_of.isoformat(),
            "cutoff": self.cutoff.isoformat(),
            "legal_hold": {"reason": hold.reason, "until": hold.until.isoformat()} if hold else None,
            "files_to_rewrite": self.count("rewrite"),
            "files_to_delete": self.count("delete"),
            "files_kept": self.count("keep"),
            "rows_to_purge": self.rows_to_purge,
            "rows_held": self.rows_held,
            "bad_dates": self.bad_dates,
            "failed": self.failed,
            "errors": list(self.errors),
            "files": [f.as_dict() for f in self.files],
        }


@dataclasses.dataclass
class _Masks:
    """Per-row verdicts of one batch: ``purge`` has no nulls."""

    purge: pa.Array
    expired: int
    held: int
    bad: int


@dataclasses.dataclass
class _Counts:
    rows: int = 0
    expired: int = 0
    held: int = 0
    bad: int = 0

    def add(self, rows: int, masks: _Masks) -> None:
        self.rows += rows
        self.expired += masks.expired
        self.held += masks.held
        self.bad += masks.bad


def as_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def plan_dataset(
    catalog: Catalog,
    dataset: Dataset,
    as_of: dt.datetime,
    *,
    holds: Mapping[str, Hold] | None = None,
    pseudonymize: Callable[[str], str] | None = None,
    reader: DatasetReader | None = None,
    s3: S3Options | None = None,
) -> DatasetPlan:
    """Plan retention of ``dataset`` as of ``as_of`` (see the module docstring for the rules).

    :param holds: active per-subject holds, pseudonym → hold (``HoldList.active``).
    :param pseudonymize: turns a subject identifier into its pseudonym (``AuditLog.pseudonym``); required
        when ``holds`` is not empty.
    :param reader: decrypts encrypted Parquet files (``reader_for``); required when there are some.
    :param s3: options of an S3 dataset (default: from the environment).
    """
    rule = dataset.retention
    if rule is None:
        raise CatalogError([f"dataset {dataset.name}: has no retention rule"])
    as_of = as_utc(as_of)
    subject = subject_column(catalog, dataset)
    held = frozenset(holds or {}) if subject is not None else frozenset()
    if held and pseudonymize is None:
        raise ConfigError(f"dataset {dataset.name}: per-subject holds need a pseudonymize function")
    plan = DatasetPlan(
        dataset.name, dataset.format, Location.parse(dataset.uri, s3), rule.column, rule.keep_for, as_of,
        rule.cutoff(as_of), subject, rule.purge_versions, held_subjects=held, pseudonymize=pseudonymize,
    )  # fmt: skip
    files = list_dataset_files(plan.root, plan.fmt, dataset=dataset.name, may_be_empty=dataset.may_be_empty)
    if dataset.legal_hold is not None and dataset.legal_hold.active(as_of.date()):
        plan.legal_hold = dataset.legal_hold
        plan.files = [FilePlan(i.location, "keep", None, etag=i.etag, method="legal-hold") for i in files]
        return plan
    for info in files:
        file_plan = _plan_file(plan, info, reader)
        plan.files.append(file_plan)
        if file_plan.bad_dates:
            plan.errors.append(
                f"dataset {plan.dataset}: {file_plan.bad_dates} row(s) of {info.uri} have a missing or "
                f"unparseable date in column {plan.column!r}; they are kept, not purged"
            )
    return plan


def _plan_file(plan: DatasetPlan, info: FileInfo, reader: DatasetReader | None) -> FilePlan:
    encrypted = plan.fmt == "parquet" and is_encrypted_parquet(info.location.filesystem(), info.location.path)
    if plan.fmt == "parquet" and not encrypted:
        quick = _plan_from_statistics(plan, info)
        if quick is not None:
            return quick
    counts = _Counts()
    for batch in _scan_batches(plan, info, reader, encrypted):
        counts.add(batch.num_rows, _masks(plan, batch))
    purge = counts.expired - counts.held
    action: Action = "keep" if purge == 0 else "delete" if purge == counts.rows else "rewrite"
    digest = _sha256_file(info.location) if action != "keep" else None
    return FilePlan(
        info.location, action, counts.rows, counts.expired, counts.held, counts.bad, info.etag, digest,
        "scan", encrypted,
    )  # fmt: skip


def _plan_from_statistics(plan: DatasetPlan, info: FileInfo) -> FilePlan | None:
    """Decide from the Parquet footer alone when its statistics allow it, else None (scan the file)."""
    bounds = parquet_bounds(info.location, plan.column)
    if bounds is None:
        return None
    rows, low, high = bounds
    if low is None or high is None or low >= plan.cutoff:
        return FilePlan(info.location, "keep", rows, etag=info.etag, method="statistics")
    if high < plan.cutoff and not plan.held_subjects:
        digest = _sha256_file(info.location)
        return FilePlan(info.location, "delete", rows, rows, 0, 0, info.etag, digest, "statistics")
    return None


def parquet_bounds(
    location: Location, column: str
) -> tuple[int, dt.datetime | None, dt.datetime | None] | None:
    """(rows, earliest, latest) of ``column`` from a plaintext Parquet file's statistics.

    None when the statistics cannot settle it: a row group without min/max, with nulls (bad dates must be
    counted), or a column that is not a date or timestamp (text must be parsed row by row).
    """
    try:
        with location.filesystem().open_input_file(location.path) as handle:
            meta = pq.ParquetFile(handle).metadata
    except (OSError, pa.ArrowException):
        raise DatasetIOError(f"{location.uri} is not a readable parquet file") from None
    index = next((j for j in range(meta.num_columns) if meta.schema.column(j).path == column), None)
    if index is None:
        return None  # the scan reports the missing column, naming the file
    low: dt.datetime | None = None
    high: dt.datetime | None = None
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        if group.num_rows == 0:
            continue
        span = _chunk_bounds(group.column(index).statistics)
        if span is None:
            return None
        low = span[0] if low is None else min(low, span[0])
        high = span[1] if high is None else max(high, span[1])
    return int(meta.num_rows), low, high


def _chunk_bounds(stats: Any) -> tuple[dt.datetime, dt.datetime] | None:
    if stats is None or not stats.has_min_max or not stats.has_null_count or stats.null_count:
        return None
    low, high = _instant(stats.min), _instant(stats.max)
    return (low, high) if low is not None and high is not None else None


def _instant(value: object) -> dt.datetime | None:
    """A statistics value as an aware UTC instant (a date is its midnight, UTC), or None."""
    if isinstance(value, dt.datetime):  # includes pandas.Timestamp (nanosecond columns)
        return as_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC)
    return None


def _scan_batches(
    plan: DatasetPlan, info: FileInfo, reader: DatasetReader | None, encrypted: bool
) -> Iterator[pa.RecordBatch]:
    """Only the retention column, plus the subject column when holds must be checked."""
    columns = [plan.column]
    if plan.held_subjects and plan.subject_column and plan.subject_column != plan.column:
        columns.append(plan.subject_column)
    if encrypted:
        if reader is None or reader.provider is None:
            raise EncryptionError(
                f"dataset {plan.dataset}: {info.uri} is encrypted; pass a reader that can decrypt it"
            )
        return reader(info, plan.fmt, columns)
    if plan.fmt == "csv":
        schema = text_schema(info.location)
        if schema is None:
            return iter(())
        return read_file(info, "csv", columns=columns, schema=schema)
    return read_file(info, plan.fmt, columns=columns)


# --- dates and verdicts ---------------------------------------------------------------------------------


def to_instants(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Retention values as ``timestamp[us, UTC]``; null where a value is missing or not a date.

    Timestamps (zoned, or naive taken as UTC), dates (midnight UTC) and ISO-8601 text are understood.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            values = values.cast(pa.timestamp(kind.unit, tz="UTC"))
        return values.cast(_TS, safe=False)
    if pa.types.is_date(kind):
        return values.cast(_TS)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_text(values)
    return pa.nulls(len(values), _TS)  # numbers and the like are no dates: every row counts as bad


def _parse_text(values: pa.Array) -> pa.Array:
    for target in _TEXT_TARGETS:
        try:
            parsed = values.cast(target)
        except _CAST_ERRORS:
            continue
        if parsed.type.tz is None:
            parsed = parsed.cast(pa.timestamp(parsed.type.unit, tz="UTC"))
        return parsed.cast(_TS, safe=False)
    # Mixed or unusual forms: one by one, so a single bad value makes only its own row bad.
    return pa.array([_parse_one(v) for v in values.to_pylist()], type=_TS)


def _parse_one(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        return None


def _masks(plan: DatasetPlan, batch: pa.RecordBatch) -> _Masks:
    instants = to_instants(batch.column(plan.column))
    bad = pc.is_null(instants)
    expired = pc.fill_null(pc.less(instants, pa.scalar(plan.cutoff, type=_TS)), False)
    if plan.held_subjects and plan.subject_column is not None:
        held = pc.and_(expired, _held(plan, batch.column(plan.subject_column)))
    else:
        held = pa.array([False] * batch.num_rows, type=pa.bool_())
    return _Masks(pc.and_not(expired, held), _true(expired), _true(held), _true(bad))


def _true(mask: pa.Array) -> int:
    return int(pc.sum(mask.cast(pa.int64())).as_py() or 0)


def _held(plan: DatasetPlan, subjects: pa.Array) -> pa.Array:
    """True for rows whose subject's pseudonym is under a hold (raw identifiers stay in memory only)."""
    if pa.types.is_dictionary(subjects.type):
        subjects = subjects.dictionary_decode()
    assert plan.pseudonymize is not None  # plan_dataset refuses holds without it
    cache = plan._pseudonyms
    wanted = []
    for value in pc.unique(subjects).to_pylist():
        if value is None:
            continue
        text = str(value)
        if text not in cache:
            cache[text] = plan.pseudonymize(text)
        if cache[text] in plan.held_subjects:
            wanted.append(value)
    if not wanted:
        return pa.array([False] * len(subjects), type=pa.bool_())
    return pc.is_in(subjects, value_set=pa.array(wanted, type=subjects.type))


# --- applying -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FileResult:
    """What was done to one file; ``outcome`` is success, failure or recovered (finished after a crash)."""

    uri: str
    action: Action
    rows_before: int
    rows_after: int
    held: int = 0
    sha256_before: str | None = None
    sha256_after: str | None = None
    versions_purged: int = 0
    outcome: str = "success"
    error: str | None = None

    @property
    def removed(self) -> int:
        """Rows removed."""
        return self.rows_before - self.rows_after if self.outcome != "failure" else 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**dataclasses.asdict(self), "rows_removed": self.removed}


@dataclasses.dataclass
class DatasetResult:
    """What retention did to one dataset; ``failed`` when rows had bad dates or a file could not be done."""

    dataset: str
    cutoff: dt.datetime
    files: list[FileResult] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    legal_hold: str | None = None
    bad_dates: int = 0

    @property
    def failed(self) -> bool:
        """True when the run must not be reported as clean."""
        return bool(self.errors)

    @property
    def rows_removed(self) -> int:
        """Rows removed over every file."""
        return sum(f.removed for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "dataset": self.dataset,
            "cutoff": self.cutoff.isoformat(),
            "legal_hold": self.legal_hold,
            "rows_removed": self.rows_removed,
            "rows_held": sum(f.held for f in self.files),
            "files_rewritten": sum(1 for f in self.files if f.action == "rewrite" and f.outcome != "failure"),
            "files_deleted": sum(1 for f in self.files if f.action == "delete" and f.outcome != "failure"),
            "bad_dates": self.bad_dates,
            "failed": self.failed,
            "errors": list(self.errors),
            "files": [f.as_dict() for f in self.files],
        }


@dataclasses.dataclass
class _Apply:
    """Everything one ``apply_dataset`` call needs."""

    plan: DatasetPlan
    catalog: Catalog
    dataset: Dataset
    audit: AuditLog | None
    provider: KeyProvider | None
    keyring: LocalKeyring | str | None

    def key_provider(self, key_name: str) -> KeyProvider:
        """The provider given, else the one the catalog declares for ``key_name`` (built once)."""
        if self.provider is None:
            from airflow_aisec.crypto.factory import provider_for_key

            ring = self.keyring
            if ring is not None and not isinstance(ring, str):
                ring = str(ring.path)
            self.provider = provider_for_key(self.catalog, key_name, keyring=ring)
        return self.provider

    def record(self, key: str, outcome: str, **fields: Any) -> None:
        """Append one ``retention.delete`` entry (no-op without an audit log)."""
        if self.audit is not None:
            self.audit.append(
                ACTION, idempotency_key=key, dataset=self.plan.dataset, outcome=outcome, **fields
            )


def apply_dataset(
    plan: DatasetPlan,
    catalog: Catalog,
    dataset: Dataset,
    *,
    provider: KeyProvider | None = None,
    keyring: LocalKeyring | str | None = None,
    audit: AuditLog | None = None,
) -> DatasetResult:
    """Carry out ``plan``: rewrite and delete files, record intents and outcomes in ``audit``.

    ``provider`` (or ``keyring``, to build the catalog key's provider) is needed for encrypted files.
    Files whose rewrite or delete fails are reported in ``errors`` (the others still proceed).
    """
    ctx = _Apply(plan, catalog, dataset, audit, provider, keyring)
    result = DatasetResult(plan.dataset, plan.cutoff, errors=list(plan.errors), bad_dates=plan.bad_dates)
    if plan.legal_hold is not None:
        result.legal_hold = plan.legal_hold.reason
    if audit is not None:
        result.files.extend(_recover(ctx))
    for file_plan in plan.files:
        if file_plan.action != "keep":
            done = _apply_file(ctx, file_plan)
            result.files.append(done)
            if done.error:
                result.errors.append(done.error)
    _record_summary(ctx, result)
    return result


def _operation(plan: DatasetPlan, uri: str, sha256_before: str | None) -> str:
    """A stable id of one file operation: the same file version and cutoff give the same id."""
    basis = json.dumps([plan.dataset, uri, sha256_before, plan.cutoff.isoformat()])
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


def _apply_file(ctx: _Apply, file_plan: FilePlan) -> FileResult:
    plan = ctx.plan
    op = _operation(plan, file_plan.uri, file_plan.sha256_before)
    material = _key_material(file_plan.location) if file_plan.encrypted else None
    before = {"uri": file_plan.uri, "sha256": file_plan.sha256_before, "dataset": plan.dataset}
    ctx.record(
        f"{ACTION}:{op}:intent", "intent", inputs=[before], rows=file_plan.rows,
        details={
            **_rule(plan, op, file_plan.action), "rows_to_purge": file_plan.purge,
            "rows_held": file_plan.held, "key_material": material.uri if material else None,
        },
    )  # fmt: skip
    try:
        if file_plan.action == "rewrite":
            done = _rewrite(ctx, file_plan, material)
        else:
            done = _delete(file_plan, material)
    except (DatasetIOError, EncryptionError) as exc:
        message = f"dataset {plan.dataset}: {file_plan.uri}: {exc}"
        ctx.record(f"{ACTION}:{op}:failure", "failure", inputs=[before], details={
            **_rule(plan, op, file_plan.action), "error": message,
        })  # fmt: skip
        rows = file_plan.rows or 0
        return FileResult(file_plan.uri, file_plan.action, rows, rows, sha256_before=file_plan.sha256_before,
                          outcome="failure", error=message)  # fmt: skip
    # Outside the try: if purging old versions fails, the intent stays open and the next run's recovery
    # (which sees the file changed) purges them and records the outcome.
    _with_versions_purged(ctx, done, file_plan.location, material)
    _record_outcome(ctx, op, done, recovered=False)
    return done


def _rule(plan: DatasetPlan, op: str, file_action: str) -> dict[str, Any]:
    return {
        "operation": op,
        "file_action": file_action,
        "rule": plan.keep_for,
        "column": plan.column,
        "cutoff": plan.cutoff.isoformat(),
        "as_of": plan.as_of.isoformat(),
    }


def _record_outcome(
    ctx: _Apply, op: str, done: FileResult, *, recovered: bool, rule: dict[str, Any] | None = None
) -> None:
    """The outcome entry; ``rule`` (default: this plan's) is the intent's when finishing an older run."""
    plan = ctx.plan
    outputs = [{"uri": done.uri, "sha256": done.sha256_after, "dataset": plan.dataset}]
    ctx.record(
        f"{ACTION}:{op}:success", "success", rows=done.removed,
        inputs=[{"uri": done.uri, "sha256": done.sha256_before, "dataset": plan.dataset}],
        outputs=outputs if done.sha256_after else [],
        details={
            **(rule or _rule(plan, op, done.action)), "rows_before": done.rows_before,
            "rows_after": done.rows_after,
            "rows_removed": done.removed, "holds_honoured": done.held, "sha256_before": done.sha256_before,
            "sha256_after": done.sha256_after, "versions_purged": done.versions_purged,
            "recovered": recovered,
        },
    )  # fmt: skip


def _key_material(location: Location) -> Location | None:
    try:
        return find_key_material(location)
    except (DatasetIOError, EncryptionError):
        return None  # without key material the file is unreadable anyway; nothing else to clean up


def _rewrite(ctx: _Apply, file_plan: FilePlan, material: Location | None) -> FileResult:
    plan, location = ctx.plan, file_plan.location
    rows = file_plan.rows or 0
    expected = rows - file_plan.purge
    rewrite = open_rewrite(
        location, ctx.dataset, encrypted=file_plan.encrypted, key_provider=ctx.key_provider,
        expected_etag=file_plan.etag,
    )  # fmt: skip
    held = 0
    with rewrite.sink as writer:
        for batch in rewrite.batches:
            masks = _masks(plan, batch)
            held += masks.held
            writer.write(batch.filter(pc.invert(masks.purge)))
        if writer.rows != expected:  # raising here discards the new version: the original stays
            raise VerificationError(
                f"{location.uri} would keep {writer.rows} rows but the plan expects {expected}; "
                "it was not replaced"
            )
    return FileResult(
        file_plan.uri, "rewrite", rows, writer.rows, held, file_plan.sha256_before, writer.result.sha256
    )


def _delete(file_plan: FilePlan, material: Location | None) -> FileResult:
    location = file_plan.location
    delete_file(location, expected_etag=file_plan.etag)
    if material is not None:
        # After the data: a crash in between leaves an orphan key file, never data without its keys.
        delete_file(material)
    return FileResult(file_plan.uri, "delete", file_plan.rows or 0, 0, 0, file_plan.sha256_before)


def _with_versions_purged(
    ctx: _Apply, done: FileResult, location: Location, material: Location | None
) -> None:
    if ctx.plan.purge_versions and location.is_s3:
        done.versions_purged = purge_versions(location, gone=done.sha256_after is None)
        if material is not None:
            done.versions_purged += purge_versions(material, gone=True)


def purge_versions(location: Location, *, gone: bool = False) -> int:
    """Delete the noncurrent versions of an S3 object (and its delete markers); returns how many.

    With ``gone`` (the object was deleted) every version goes, so nothing of it remains. Versions are
    deleted before delete markers, so no old version ever becomes current on the way.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = location.s3_client()
    versions: list[str] = []
    markers: list[str] = []
    try:
        pages = client.get_paginator("list_object_versions").paginate(
            Bucket=location.bucket, Prefix=location.key
        )
        for page in pages:
            versions += [
                v["VersionId"]
                for v in page.get("Versions", [])
                if v["Key"] == location.key and (gone or not v["IsLatest"])
            ]
            markers += [m["VersionId"] for m in page.get("DeleteMarkers", []) if m["Key"] == location.key]
        for version in versions + markers:
            client.delete_object(Bucket=location.bucket, Key=location.key, VersionId=version)
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(exc, location.uri, "purged of its old versions") from exc
    return len(versions) + len(markers)


# --- crash recovery and summaries -----------------------------------------------------------------------


@dataclasses.dataclass
class _Journal:
    """This dataset's ``retention.delete`` entries among the newest audit entries."""

    intents: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    closed: set[str] = dataclasses.field(default_factory=set)
    # (file uri, digest before) → the operation that changed that version successfully.
    changed_by: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)

    def add(self, op: str, data: dict[str, Any]) -> None:
        if data.get("outcome") == "intent":
            self.intents[op] = data
            return
        self.closed.add(op)
        source = (data.get("inputs") or [{}])[0]
        if data.get("outcome") == "success" and source.get("uri"):
            self.changed_by[(source["uri"], source.get("sha256"))] = op


def _recover(ctx: _Apply) -> list[FileResult]:
    """Close the intents a killed run left without an outcome (see the module docstring).

    An intent this plan carries out again (same operation id: same file version and cutoff) is left to it.
    Otherwise, if its file still has the digest it had before, or another operation changed that version,
    it was not carried out: it is closed as ``skipped``. If not, its swap happened: the outcome is recorded
    as ``recovered``, after deleting the key material and old versions the operation would have deleted.
    """
    audit = ctx.audit
    assert audit is not None
    journal = _Journal()
    for entry in audit.entries(max(0, audit.size() - RECOVERY_WINDOW)):
        data = entry.data
        op = (data.get("details") or {}).get("operation")
        if data.get("action") == ACTION and data.get("dataset") == ctx.plan.dataset and op:
            journal.add(op, data)
    planned = {_operation(ctx.plan, f.uri, f.sha256_before) for f in ctx.plan.files if f.action != "keep"}
    done = []
    for op, data in journal.intents.items():
        if op not in journal.closed and op not in planned:
            recovered = _recover_one(ctx, op, data, journal)
            if recovered is not None:
                done.append(recovered)
    return done


def _recover_one(ctx: _Apply, op: str, intent: dict[str, Any], journal: _Journal) -> FileResult | None:
    source = intent["inputs"][0]
    details = intent["details"]
    location = Location.parse(source["uri"], ctx.plan.root.s3)
    try:
        current: str | None = _sha256_file(location)
    except DatasetIOError:
        current = None
    superseded = journal.changed_by.get((source["uri"], source["sha256"]))
    if current == source["sha256"] or superseded is not None:
        ctx.record(f"{ACTION}:{op}:skipped", "skipped", inputs=[source], details={
            **{k: details.get(k) for k in ("operation", "file_action", "rule", "column", "cutoff")},
            "not_performed": True, "superseded_by": superseded,
        })  # fmt: skip
        return None
    material = (
        Location.parse(details["key_material"], ctx.plan.root.s3) if details.get("key_material") else None
    )
    if material is not None and current is None:
        delete_file(material)
    rows = int(intent.get("rows") or 0)
    after = rows - int(details.get("rows_to_purge") or 0)
    done = FileResult(
        source["uri"], details["file_action"], rows, after, int(details.get("rows_held") or 0),
        source["sha256"], current, outcome="recovered",
    )  # fmt: skip
    _with_versions_purged(ctx, done, location, material)
    rule = {k: details.get(k) for k in ("operation", "file_action", "rule", "column", "cutoff", "as_of")}
    _record_outcome(ctx, op, done, recovered=True, rule=rule)
    return done


def _record_summary(ctx: _Apply, result: DatasetResult) -> None:
    """One entry per dataset and cutoff when nothing was done, and one for rows with bad dates."""
    plan = ctx.plan
    cutoff = plan.cutoff.isoformat()
    base = {"rule": plan.keep_for, "column": plan.column, "cutoff": cutoff, "files": len(plan.files)}
    if plan.legal_hold is not None:
        hold = {"reason": plan.legal_hold.reason, "until": plan.legal_hold.until.isoformat()}
        ctx.record(
            f"{ACTION}:{plan.dataset}:{cutoff}:skipped", "skipped", details={**base, "legal_hold": hold}
        )
    elif not result.files:
        ctx.record(f"{ACTION}:{plan.dataset}:{cutoff}:noop", "noop", rows=0, details=base)
    bad = [{"uri": f.uri, "bad_dates": f.bad_dates} for f in plan.files if f.bad_dates]
    if bad:
        digest = hashlib.sha256(json.dumps(bad, sort_keys=True).encode()).hexdigest()[:32]
        ctx.record(
            f"{ACTION}:{plan.dataset}:{cutoff}:bad-dates:{digest}", "failure", rows=plan.bad_dates,
            details={**base, "bad_dates": bad, "error": "rows with a missing or unparseable date were kept"},
        )  # fmt: skip


# --- whole catalog --------------------------------------------------------------------------------------


def retained_datasets(catalog: Catalog, names: Sequence[str] | None = None) -> list[Dataset]:
    """The datasets with a retention rule (``names`` selects some; naming one without a rule is an error)."""
    if not names:
        return [d for d in catalog.datasets.values() if d.retention is not None]
    chosen = [catalog.dataset(name) for name in names]
    for dataset in chosen:
        if dataset.retention is None:
            raise CatalogError([f"dataset {dataset.name}: has no retention rule"])
    return chosen


def plan_catalog(
    catalog: Catalog,
    as_of: dt.datetime,
    *,
    holds: Mapping[str, Hold] | None = None,
    pseudonymize: Callable[[str], str] | None = None,
    keyring: LocalKeyring | None = None,
    s3: S3Options | None = None,
    datasets: Sequence[str] | None = None,
) -> list[DatasetPlan]:
    """Plan every dataset with a retention rule (or those named); ``keyring`` decrypts encrypted ones."""
    from airflow_aisec.crypto.datasets import reader_for

    plans = []
    for dataset in retained_datasets(catalog, datasets):
        reader = reader_for(catalog, dataset, keyring) if keyring is not None and dataset.encryption else None
        plans.append(
            plan_dataset(
                catalog, dataset, as_of, holds=holds, pseudonymize=pseudonymize, reader=reader, s3=s3
            )
        )
    return plans


def apply_catalog(
    plans: Sequence[DatasetPlan],
    catalog: Catalog,
    *,
    keyring: LocalKeyring | str | None = None,
    audit: AuditLog | None = None,
) -> list[DatasetResult]:
    """Apply each plan (``apply_dataset``); a failed dataset does not stop the others."""
    return [
        apply_dataset(plan, catalog, catalog.dataset(plan.dataset), keyring=keyring, audit=audit)
        for plan in plans
    ]

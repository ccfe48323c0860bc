"""Retention plans: which rows of a dataset have outlived their rule, and what that means for each file.

``plan_dataset`` decides, per file, to ``keep`` it, ``rewrite`` it without its expired rows, or ``delete``
it because every row expired (``plan_files``: only the files named, as they are now, for one part of a
fanned-out run; each must be a file the dataset's own listing gives out). It reads as little as it can: a
plaintext Parquet file whose statistics show the retention column entirely on one side of the cutoff is
decided from its footer alone; anything else is scanned, reading only the retention column (and the subject
column when per-subject holds exist).

Rules, and why:

* A dataset-level ``legal_hold`` in force on ``as_of``'s day keeps every file: nothing is read or purged.
* Rows of a subject under a per-subject hold (``HoldList``, by pseudonym) are kept even when expired.
* A missing or unparseable retention value is never treated as old: such rows are kept and reported, and
  the plan is marked failed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.crypto.parquet import is_encrypted_parquet
from airflow_aisec.crypto.shredding import subject_column
from airflow_aisec.exceptions import CatalogError, ConfigError, DatasetIOError, EncryptionError, FanOutError
from airflow_aisec.io import (
    FileInfo,
    Location,
    S3Options,
    extension,
    is_hidden,
    list_dataset_files,
    read_file,
    sha256_file,
    stat_file,
    text_schema,
)
from airflow_aisec.retention.dates import INSTANT, as_utc, to_instants
from airflow_aisec.retention.statistics import parquet_bounds

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog, Dataset, LegalHold
    from airflow_aisec.crypto.datasets import DatasetReader
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.retention.holds import Hold

Action = Literal["keep", "rewrite", "delete"]


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
    size: int = 0

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
            "size": self.size,
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
class Verdicts:
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

    def add(self, rows: int, masks: Verdicts) -> None:
        self.rows += rows
        self.expired += masks.expired
        self.held += masks.held
        self.bad += masks.bad


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
    plan = _new_plan(catalog, dataset, as_of, holds, pseudonymize, s3)
    files = list_dataset_files(plan.root, plan.fmt, dataset=dataset.name, may_be_empty=dataset.may_be_empty)
    return _plan_files(plan, dataset, files, reader)


def plan_files(
    catalog: Catalog,
    dataset: Dataset,
    as_of: dt.datetime,
    uris: Sequence[str],
    *,
    holds: Mapping[str, Hold] | None = None,
    pseudonymize: Callable[[str], str] | None = None,
    reader: DatasetReader | None = None,
    s3: S3Options | None = None,
) -> DatasetPlan:
    """Plan retention of only the files ``uris`` of ``dataset``, each from its current version (a file no
    longer there is left out: it holds no row to purge); the rules and parameters of ``plan_dataset``.
    ``FanOutError``, before anything is read, for a URI the dataset's listing would not give (``_own_file``).
    """
    plan = _new_plan(catalog, dataset, as_of, holds, pseudonymize, s3)
    locations = [_own_file(plan, uri, s3) for uri in uris]  # every one checked before any is read
    found = (stat_file(location) for location in locations)
    return _plan_files(plan, dataset, [info for info in found if info is not None], reader)


def _own_file(plan: DatasetPlan, uri: str, s3: S3Options | None) -> Location:
    """The location of ``uri`` if the dataset's listing could give it out, else ``FanOutError``: spelled as
    the listing spells it (no ``..``, ``//`` or percent-encoded other path), and either the dataset's
    location itself when that is one file of its format, or a file below it, not hidden, of its format."""
    ext = extension(plan.fmt)
    relative: str | None = None
    try:
        location = Location.parse(uri, s3)
        relative = location.relative_to(plan.root)  # "" for the dataset's location itself
    except DatasetIOError:
        pass
    if relative == "":  # a dataset of one file, as ``list_files`` lists it
        own = plan.root.name.lower().endswith(ext)
    else:
        own = (
            relative is not None
            and relative.lower().endswith(ext)
            and not is_hidden(relative)
            and all(segment not in ("", ".", "..") for segment in relative.split("/"))
        )
    if not own or location.uri != uri:
        raise FanOutError(
            f"dataset {plan.dataset}: {uri} is not a file of the dataset (a {ext} file at or below "
            f"{plan.root.uri}, named as its listing names it)"
        )
    return location


def _new_plan(
    catalog: Catalog,
    dataset: Dataset,
    as_of: dt.datetime,
    holds: Mapping[str, Hold] | None,
    pseudonymize: Callable[[str], str] | None,
    s3: S3Options | None,
) -> DatasetPlan:
    """The plan of ``dataset`` before any file is judged: its rule, cutoff and holds."""
    rule = dataset.retention
    if rule is None:
        raise CatalogError([f"dataset {dataset.name}: has no retention rule"])
    as_of = as_utc(as_of)
    subject = subject_column(catalog, dataset)
    held = frozenset(holds or {}) if subject is not None else frozenset()
    if held and pseudonymize is None:
        raise ConfigError(f"dataset {dataset.name}: per-subject holds need a pseudonymize function")
    return DatasetPlan(
        dataset.name, dataset.format, Location.parse(dataset.uri, s3), rule.column, rule.keep_for, as_of,
        rule.cutoff(as_of), subject, rule.purge_versions, held_subjects=held, pseudonymize=pseudonymize,
    )  # fmt: skip


def _plan_files(
    plan: DatasetPlan, dataset: Dataset, files: Sequence[FileInfo], reader: DatasetReader | None
) -> DatasetPlan:
    """Judge each of ``files``, or keep them all unread under a legal hold in force."""
    if dataset.legal_hold is not None and dataset.legal_hold.active(plan.as_of.date()):
        plan.legal_hold = dataset.legal_hold
        plan.files = [
            FilePlan(i.location, "keep", None, etag=i.etag, method="legal-hold", size=i.size) for i in files
        ]
        return plan
    for info in files:
        file_plan = _plan_file(plan, info, reader)
        plan.files.append(file_plan)
        if file_plan.bad_dates:
            plan.errors.append(bad_dates_error(plan.dataset, info.uri, file_plan.bad_dates, plan.column))
    return plan


def bad_dates_error(dataset: str, uri: str, rows: int, column: str) -> str:
    """The error of a file with ``rows`` rows whose date in ``column`` is missing or unparseable."""
    return (
        f"dataset {dataset}: {rows} row(s) of {uri} have a missing or unparseable date in column "
        f"{column!r}; they are kept, not purged"
    )


def _plan_file(plan: DatasetPlan, info: FileInfo, reader: DatasetReader | None) -> FilePlan:
    encrypted = plan.fmt == "parquet" and is_encrypted_parquet(info.location.filesystem(), info.location.path)
    if plan.fmt == "parquet" and not encrypted:
        quick = _plan_from_statistics(plan, info)
        if quick is not None:
            return quick
    counts = _Counts()
    for batch in _scan_batches(plan, info, reader, encrypted):
        counts.add(batch.num_rows, verdicts(plan, batch))
    purge = counts.expired - counts.held
    action: Action = "keep" if purge == 0 else "delete" if purge == counts.rows else "rewrite"
    digest = sha256_file(info.location) if action != "keep" else None
    return FilePlan(
        info.location, action, counts.rows, counts.expired, counts.held, counts.bad, info.etag, digest,
        "scan", encrypted, info.size,
    )  # fmt: skip


def _plan_from_statistics(plan: DatasetPlan, info: FileInfo) -> FilePlan | None:
    """Decide from the Parquet footer alone when its statistics allow it, else None (scan the file)."""
    bounds = parquet_bounds(info.location, plan.column)
    if bounds is None:
        return None
    rows, low, high = bounds
    if low is None or high is None or low >= plan.cutoff:
        return FilePlan(info.location, "keep", rows, etag=info.etag, method="statistics", size=info.size)
    if high < plan.cutoff and not plan.held_subjects:
        digest = sha256_file(info.location)
        return FilePlan(
            info.location, "delete", rows, rows, 0, 0, info.etag, digest, "statistics", size=info.size
        )
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


def verdicts(plan: DatasetPlan, batch: pa.RecordBatch) -> Verdicts:
    instants = to_instants(batch.column(plan.column))
    bad = pc.is_null(instants)
    expired = pc.fill_null(pc.less(instants, pa.scalar(plan.cutoff, type=INSTANT)), False)
    if plan.held_subjects and plan.subject_column is not None:
        held = pc.and_(expired, _held(plan, batch.column(plan.subject_column)))
    else:
        held = pa.array([False] * batch.num_rows, type=pa.bool_())
    return Verdicts(pc.and_not(expired, held), _true(expired), _true(held), _true(bad))


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
    keys: KeySource | None = None,
    s3: S3Options | None = None,
    datasets: Sequence[str] | None = None,
) -> list[DatasetPlan]:
    """Plan every dataset with a retention rule (or those named); ``keys`` decrypt the encrypted ones."""
    from airflow_aisec.crypto.datasets import reader_for

    plans = []
    for dataset in retained_datasets(catalog, datasets):
        reader = reader_for(keys, dataset) if keys is not None and dataset.encryption else None
        plans.append(
            plan_dataset(
                catalog, dataset, as_of, holds=holds, pseudonymize=pseudonymize, reader=reader, s3=s3
            )
        )
    return plans

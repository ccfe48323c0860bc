"""Find every row of one data subject, in every dataset of the catalog, by following the reference graph.

Resolution runs in three passes, reading only the columns it needs:

1. **Identities.** Datasets with several identity columns (``customers``: ``customer_id`` and ``email``)
   turn the identity named in the request into all of the subject's identities.
2. **Rows.** In dependency order (referenced datasets first), a row is the subject's when one of its identity
   columns holds a known identity, or when a ``references`` column holds a value of the subject's rows in
   the dataset it points to. Values reachable only through another dataset are found that way.
3. **Mentions.** Free-text columns of every dataset are searched for the subject's identifiers (identities,
   and identifier-like PII of their rows such as e-mail addresses and phone numbers) as whole words, so a
   ticket of someone else that quotes the subject's e-mail is found too.

The identifiers found are raw personal data (``identifiers.Identifiers``); what is reported
(``Resolution.public``) names datasets, files and counts only. Rows are recognised by ``matching`` and read
by ``scan``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.catalog.graph import ReferenceGraph
from airflow_aisec.catalog.lake import dataset_files
from airflow_aisec.dsr.identifiers import MENTION_ENTITIES, MIN_MENTION, Identifiers
from airflow_aisec.dsr.matching import (
    Criteria,
    as_text,
    column_values,
    criteria,
    free_text_columns,
    in_batch,
    mention_mask,
)
from airflow_aisec.dsr.scan import FileScan, Scanner, read_columns, search
from airflow_aisec.exceptions import DsrError
from airflow_aisec.io import FileInfo, S3Options

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.dsr.scan import Prefilter


@dataclasses.dataclass
class FileMatch:
    """One file of a dataset: its rows, the subject's rows and the other rows mentioning the subject."""

    uri: str
    etag: str | None
    rows: int
    matched: int = 0
    mentions: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DatasetMatch:
    """The subject's presence in one dataset; ``files`` lists only the files holding or mentioning them."""

    dataset: str
    files: list[FileMatch] = dataclasses.field(default_factory=list)
    # Every file considered and its version (etag), read or ruled out by the subject index.
    scanned: dict[str, str | None] = dataclasses.field(default_factory=dict)
    how: list[str] = dataclasses.field(default_factory=list)
    # The files actually read for the subject's rows: uri → [etag, rows]. Verification skips only these
    # (at the same version), never a file the index ruled out.
    read: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    # Files whose subject-index entries failed authentication (and were read instead).
    index_rejected: list[str] = dataclasses.field(default_factory=list)

    @property
    def rows(self) -> int:
        """The subject's rows."""
        return sum(f.matched for f in self.files)

    @property
    def mentions(self) -> int:
        """Other rows mentioning the subject in free text."""
        return sum(f.mentions for f in self.files)

    def file(self, uri: str, etag: str | None, rows: int) -> FileMatch:
        """The entry of ``uri``, added on first use."""
        for found in self.files:
            if found.uri == uri:
                return found
        self.files.append(FileMatch(uri, etag, rows))
        return self.files[-1]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (no values)."""
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "mentions": self.mentions,
            "how": list(self.how),
            "files": [f.as_dict() for f in self.files if f.matched or f.mentions],
            "files_scanned": len(self.scanned),
            "scanned": dict(self.scanned),
            "read": {uri: list(v) for uri, v in self.read.items()},
            "index_rejected": list(self.index_rejected),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetMatch:
        """The inverse of ``as_dict``."""
        files = [FileMatch(**f) for f in data["files"]]
        read = {uri: list(v) for uri, v in (data.get("read") or {}).items()}
        rejected = list(data.get("index_rejected") or [])
        return cls(data["dataset"], files, dict(data["scanned"]), list(data["how"]), read, rejected)


@dataclasses.dataclass
class Resolution:
    """Where the subject is: one ``DatasetMatch`` per dataset (in dependency order) and their identifiers."""

    identity_type: str
    identifiers: Identifiers
    datasets: dict[str, DatasetMatch]

    @property
    def found(self) -> bool:
        """Whether any row of the subject, or any mention of them, was found."""
        return any(m.rows or m.mentions for m in self.datasets.values())

    def public(self) -> dict[str, Any]:
        """Datasets, files and counts: safe for logs, XCom and the audit log."""
        return {
            "identity_type": self.identity_type,
            "found": self.found,
            "datasets": {name: m.as_dict() for name, m in self.datasets.items()},
        }


def _referenced_columns(catalog: Catalog, name: str) -> set[str]:
    return {
        column
        for other in catalog.datasets.values()
        for target, column in other.reference_targets().values()
        if target == name and other.name != name
    }


def _collect(catalog: Catalog, dataset: Dataset, batch: pa.RecordBatch, ids: Identifiers) -> bool:
    """Learn the subject's identities, linked values and identifier-like PII from their rows; True if new."""
    new = False
    for kind, column in dataset.identity.items():
        if column in batch.schema.names:
            new |= ids.add_identity(kind, _values(batch.column(column)))
    for column in _referenced_columns(catalog, dataset.name):
        if column in batch.schema.names:
            ids.linked.setdefault((dataset.name, column), set()).update(_values(batch.column(column)))
    for column, spec in dataset.columns.items():
        if spec.pii in MENTION_ENTITIES and in_batch(batch, column):
            found = _values(column_values(batch, column)[0])
            ids.mentions |= {v for v in found if len(v.strip()) >= MIN_MENTION}
    return new


def _values(values: pa.Array | pa.ChunkedArray) -> set[str]:
    return {v for v in as_text(values).to_pylist() if v}


def _wanted_columns(catalog: Catalog, dataset: Dataset, match: Criteria) -> list[str]:
    names = set(match.columns) | set(dataset.identity.values()) | _referenced_columns(catalog, dataset.name)
    names |= {c for c, spec in dataset.columns.items() if spec.pii in MENTION_ENTITIES}
    return read_columns(dataset, names)


# --- the three passes ---------------------------------------------------------------------------------------


class Resolver:
    """Resolves one subject across a catalog (see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        scanner: Scanner | None = None,
        s3: S3Options | None = None,
        datasets: Sequence[str] | None = None,
        index: Prefilter | None = None,
    ) -> None:
        self.catalog = catalog
        self.scanner = scanner or Scanner()
        self.s3 = s3
        self.index = index
        self.graph = ReferenceGraph(catalog)
        self.only = set(datasets) if datasets else None
        self._files: dict[str, list[FileInfo]] = {}
        self._expanded: dict[str, tuple[dict[str, frozenset[str]], dict[str, FileScan]]] = {}

    def files(self, dataset: Dataset) -> list[FileInfo]:
        """The dataset's files (listed once); none at all is an error unless the dataset may be empty."""
        if dataset.name not in self._files:
            self._files[dataset.name] = dataset_files(dataset, self.s3)
        return self._files[dataset.name]

    def resolve(self, identity_type: str, value: str, *, seed: Identifiers | None = None) -> Resolution:
        """Where the subject named by ``identity_type=value`` is; ``seed`` adds identifiers found earlier."""
        if identity_type not in self.catalog.subjects.identities:
            known = ", ".join(self.catalog.subjects.identities)
            raise DsrError(f"identity type {identity_type!r} is not one of the catalog's: {known}")
        ids = Identifiers()
        if seed is not None:
            for kind, values in seed.identities.items():
                ids.add_identity(kind, values)
            for target, values in seed.linked.items():
                ids.linked.setdefault(target, set()).update(values)
            ids.mentions |= seed.mentions
        ids.add_identity(identity_type, [value])
        self._expand_identities(ids)
        matches = {name: DatasetMatch(name) for name in self.graph.order}
        for name in self.graph.order:
            self._match_rows(self.catalog.datasets[name], ids, matches[name])
        pattern = ids.mention_pattern()
        for name in self.graph.order:
            dataset = self.catalog.datasets[name]
            if free_text_columns(dataset) and pattern is not None:
                self._match_mentions(dataset, ids, pattern, matches[name])
        wanted = {n: m for n, m in matches.items() if self.only is None or n in self.only}
        if self.index is not None:
            for name, found in wanted.items():
                found.index_rejected = sorted(self.index.rejected.get(name, ()))
        return Resolution(identity_type, ids, wanted)

    def _expand_identities(self, ids: Identifiers) -> None:
        """Pass 1: identities of other types, from datasets that hold several (until nothing new).

        Each round searches only for the values learnt since the previous one (excluding rows already
        found), so a dataset is read about once per identity type. A dataset that only links by identities
        keeps what was found: pass 2 reuses it instead of reading it again.
        """
        several = [d for d in self.catalog.datasets.values() if len(d.identity) > 1]
        searched: dict[str, dict[str, frozenset[str]]] = {d.name: {} for d in several}
        found: dict[str, dict[str, FileScan]] = {d.name: {} for d in several}
        changed = True
        while changed:
            changed = False
            for dataset in several:
                known = {
                    dataset.identity[k]: frozenset(v)
                    for k, v in ids.identities.items()
                    if k in dataset.identity
                }
                before = searched[dataset.name]
                new = {c: v - before.get(c, frozenset()) for c, v in known.items()}
                new = {c: v for c, v in new.items() if v}
                if not new:
                    continue
                match = Criteria(dataset, new, Criteria(dataset, before))
                columns = _wanted_columns(self.catalog, dataset, Criteria(dataset, known))
                for scan in search(self.scanner, dataset, self.files(dataset), match, columns, self.index):
                    kept = found[dataset.name].setdefault(scan.info.uri, FileScan(scan.info))
                    kept.rows = scan.rows or kept.rows
                    kept.found += scan.found
                    kept.read = kept.read and scan.read  # read for every value searched, or not at all
                    for rows in scan.found:
                        changed |= _collect(self.catalog, dataset, rows, ids)
                searched[dataset.name] = known
        self._expanded = {name: (searched[name], found[name]) for name in searched}

    def rescan(
        self, ids: Identifiers, previous: DatasetMatch, owns: Callable[[str], bool] | None = None
    ) -> DatasetMatch:
        """The dataset's match now: files still at the version scanned keep their result, others are read.
        With ``owns``, only the files it accepts (a part of the dataset's files, ``dsr.parts``)."""
        dataset = self.catalog.dataset(previous.dataset)
        fresh = DatasetMatch(dataset.name, how=list(previous.how))
        todo = []
        for info in self.files(dataset):
            if owns is not None and not owns(info.uri):
                continue
            if info.etag is not None and previous.scanned.get(info.uri) == info.etag:
                fresh.scanned[info.uri] = info.etag
                fresh.files += [f for f in previous.files if f.uri == info.uri]
                if (previous.read.get(info.uri) or [None])[0] == info.etag:
                    fresh.read[info.uri] = list(previous.read[info.uri])
            else:
                todo.append(info)
        if todo:
            self._match_rows(dataset, ids, fresh, todo)
            pattern = ids.mention_pattern()
            if free_text_columns(dataset) and pattern is not None:
                self._match_mentions(dataset, ids, pattern, fresh, todo)
        rejected = self.index.rejected.get(dataset.name, set()) if self.index is not None else set()
        fresh.index_rejected = sorted(set(previous.index_rejected) | rejected)
        return fresh

    def _match_rows(
        self, dataset: Dataset, ids: Identifiers, found: DatasetMatch, files: Sequence[FileInfo] | None = None
    ) -> None:
        """Pass 2: the subject's rows in one dataset; learns values the datasets after it link by."""
        match = criteria(self.catalog, dataset, ids)
        found.how = sorted(match.columns)
        if not match.columns:
            return
        searched, scans = self._expanded.get(dataset.name, ({}, {}))
        if files is None and searched == match.columns:  # pass 1 already searched exactly this
            results = [scans.get(i.uri, FileScan(i, read=False)) for i in self.files(dataset)]
        else:
            columns = _wanted_columns(self.catalog, dataset, match)
            todo = self.files(dataset) if files is None else files
            results = search(self.scanner, dataset, todo, match, columns, self.index)
            for scan in results:
                for rows in scan.found:
                    _collect(self.catalog, dataset, rows, ids)
        for scan in results:
            found.scanned[scan.info.uri] = scan.info.etag
            if scan.read:
                found.read[scan.info.uri] = [scan.info.etag, scan.rows]
            if scan.matched:
                found.file(scan.info.uri, scan.info.etag, scan.rows).matched = scan.matched

    def _match_mentions(
        self,
        dataset: Dataset,
        ids: Identifiers,
        pattern: str,
        found: DatasetMatch,
        files: Sequence[FileInfo] | None = None,
    ) -> None:
        """Pass 3: other rows whose free text mentions the subject."""
        texts = free_text_columns(dataset)
        match = criteria(self.catalog, dataset, ids)
        columns = read_columns(dataset, set(texts) | set(match.columns))
        for info in self.files(dataset) if files is None else files:
            rows = mentions = 0
            for batch in self.scanner.batches(dataset, info, columns):
                rows += batch.num_rows
                others = pc.and_not(mention_mask(batch, texts, pattern), match.mask(batch))
                mentions += int(pc.sum(others.cast(pa.int64())).as_py() or 0)
            found.scanned[info.uri] = info.etag
            if mentions:
                found.file(info.uri, info.etag, rows).mentions = mentions


def resolve(
    catalog: Catalog,
    identity_type: str,
    value: str,
    *,
    scanner: Scanner | None = None,
    s3: S3Options | None = None,
) -> Resolution:
    """Where the subject named by ``identity_type=value`` is, in every dataset (see ``Resolver``)."""
    return Resolver(catalog, scanner=scanner, s3=s3).resolve(identity_type, value)

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

The identifiers found are raw personal data and stay in memory (``Identifiers``); to hand them from one
Airflow task to the next they are sealed with a key of the request's own (``seal``/``unseal``, used by
``run.StateStore``). What is reported (``Resolution.public``) names datasets, files and counts only.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import operator
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_aisec.catalog.graph import ReferenceGraph
from airflow_aisec.catalog.lake import dataset_files
from airflow_aisec.dsr.matching import fold, fold_texts
from airflow_aisec.exceptions import DsrError
from airflow_aisec.io import FileInfo, S3Options, read_file
from airflow_aisec.io.nested import leaves, top_column
from airflow_aisec.pii.strategies import IDENTIFIER_ENTITIES  # values that single a person out
from airflow_aisec.pii.types import FREE_TEXT
from airflow_aisec.rewrite import text_schema

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.datasets import DatasetReader
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.dsr.index import SubjectIndex

MIN_MENTION = 4
"""Shorter identifiers are not searched for in free text: they would match unrelated words."""
MENTION_ENTITIES = IDENTIFIER_ENTITIES | {"PERSON", "PHONE_NUMBER"}
"""Entity types whose values in the subject's own rows are searched for in other rows' free text: the
identifier-like ones, and the subject's name (someone else's message quoting it is about them)."""


@dataclasses.dataclass
class Identifiers:
    """The subject's raw identifiers (in memory only): identities, linked values and text mentions."""

    identities: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    # (dataset, column) → values of that column in the subject's rows, for the datasets that reference it.
    linked: dict[tuple[str, str], set[str]] = dataclasses.field(default_factory=dict)
    mentions: set[str] = dataclasses.field(default_factory=set)

    def __repr__(self) -> str:  # raw personal data: never in logs or tracebacks
        return f"Identifiers({sum(len(v) for v in self.identities.values())} identities)"

    def add_identity(self, kind: str, values: Iterable[str]) -> bool:
        """Add identities of ``kind``; True when one is new."""
        known = self.identities.setdefault(kind, set())
        new = {v for v in values if v} - known
        known |= new
        self.mentions |= {v for v in new if len(v) >= MIN_MENTION}
        return bool(new)

    def mention_pattern(self) -> str | None:
        """A case-insensitive RE2 pattern matching any mention as a whole word, or None."""
        words = sorted(self.mentions, key=len, reverse=True)
        if not words:
            return None
        alternatives = "|".join(_mention_regex(w) for w in words)
        return rf"(?i)(?:^|[^0-9A-Za-z_])(?:{alternatives})(?:$|[^0-9A-Za-z_])"

    def mask_mentions(self, text: str, tag: str = "<REDACTED>") -> str:
        """``text`` with every whole-word mention of the subject replaced by ``tag``."""
        words = sorted(self.mentions, key=len, reverse=True)
        if not words:
            return text
        pattern = "|".join(_mention_regex(w) for w in words)
        return re.sub(rf"(?i)(?<![0-9A-Za-z_])(?:{pattern})(?![0-9A-Za-z_])", tag, text)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON form (raw values: seal it before it leaves the process)."""
        return {
            "identities": {k: sorted(v) for k, v in self.identities.items()},
            "linked": [[d, c, sorted(v)] for (d, c), v in sorted(self.linked.items())],
            "mentions": sorted(self.mentions),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identifiers:
        """The inverse of ``as_json``."""
        return cls(
            {k: set(v) for k, v in data["identities"].items()},
            {(d, c): set(v) for d, c, v in data["linked"]},
            set(data["mentions"]),
        )

    def seal(self, key: bytes, associated: bytes) -> str:
        """AES-256-GCM ciphertext of these identifiers (URL-safe base64), authenticating ``associated``
        (what the identifiers belong to: request id, type, subject) with them."""
        nonce = secrets.token_bytes(12)
        body = json.dumps(self.as_json(), sort_keys=True).encode("utf-8")
        return base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, body, associated)).decode("ascii")

    @classmethod
    def unseal(cls, sealed: str, key: bytes, associated: bytes) -> Identifiers:
        """The identifiers ``seal`` sealed with the same key and ``associated``; ``DsrError`` otherwise."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            body = AESGCM(key).decrypt(raw[:12], raw[12:], associated)
        except (InvalidTag, ValueError):
            raise DsrError(
                "the sealed identifiers do not open: they belong to another request (request id, type or "
                "subject) or were altered"
            ) from None
        return cls.from_json(json.loads(body))


def _mention_regex(word: str) -> str:
    """``word`` as a regular expression (RE2 and Python alike) matching it with any run of white space
    between its parts: a name written "Oona  Quillfeather" or across a line break is still the name."""
    return r"\s+".join(re.escape(part) for part in word.split()) or re.escape(word)


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


# --- reading ------------------------------------------------------------------------------------------------


class Scanner:
    """Reads chosen columns of a dataset's files, decrypting what is encrypted (CSV as text).

    With ``statistics=False`` every row is read: Parquet row-group statistics, which live in the file's own
    footer and can be edited by anyone who can write the file, no longer decide that rows are skipped.
    """

    def __init__(
        self, readers: Mapping[str, DatasetReader] | None = None, *, statistics: bool = True
    ) -> None:
        self.readers = dict(readers or {})
        self.statistics = statistics

    def batches(
        self, dataset: Dataset, info: FileInfo, columns: Sequence[str] | None
    ) -> Iterator[pa.RecordBatch]:
        """The batches of ``info`` with ``columns`` only (None: every column)."""
        reader = self.readers.get(dataset.name)
        wanted = list(columns) if columns is not None else None
        if dataset.format == "csv":
            schema = text_schema(info.location)
            if schema is None:
                return
            for batch in read_file(info, "csv", columns=wanted, schema=schema):
                yield reader.subjects.open(batch) if reader is not None and reader.subjects else batch
            return
        if reader is not None:
            yield from reader(info, dataset.format, wanted)
        else:
            yield from read_file(info, dataset.format, columns=wanted)


@dataclasses.dataclass
class FileScan:
    """One file searched for the subject: its rows (when known) and the subject's rows found in it."""

    info: FileInfo
    rows: int = 0
    found: list[pa.RecordBatch] = dataclasses.field(default_factory=list)
    read: bool = True  # False: the subject index ruled the file out unread

    @property
    def matched(self) -> int:
        """The subject's rows in the file."""
        return sum(b.num_rows for b in self.found)


def search(
    scanner: Scanner,
    dataset: Dataset,
    files: Sequence[FileInfo],
    match: Criteria,
    columns: Sequence[str],
    index: SubjectIndex | None = None,
) -> list[FileScan]:
    """The subject's rows (``columns`` of them) in each of ``files``.

    Plaintext Parquet files are searched with Arrow's dataset scanner: the filter is pushed down, so row
    groups whose statistics exclude the subject's values are skipped unread, and files are read on several
    threads. Other files (CSV, JSONL, encrypted Parquet, or Parquet files whose schemas disagree) are read
    batch by batch. With a subject ``index``, files it rules out are not read at all.
    """
    readable = index.candidates(dataset, files, match) if index is not None else list(files)
    plain = [i for i in readable if _plain_parquet(scanner, dataset, i)]
    done = _search_parquet(dataset, plain, match, columns) if plain and scanner.statistics else None
    results = {} if done is None else {f.info.uri: f for f in done}
    wanted = {i.uri for i in readable}
    results.update({i.uri: FileScan(i, read=False) for i in files if i.uri not in wanted})
    for info in files:
        if info.uri in results:
            continue
        scan = results[info.uri] = FileScan(info)
        for batch in scanner.batches(dataset, info, columns):
            scan.rows += batch.num_rows
            rows = batch.filter(match.mask(batch))
            if rows.num_rows:
                scan.found.append(rows)
    return [results[i.uri] for i in files]


def _plain_parquet(scanner: Scanner, dataset: Dataset, info: FileInfo) -> bool:
    if dataset.format != "parquet":
        return False
    reader = scanner.readers.get(dataset.name)
    if reader is None or reader.provider is None:
        return True
    from airflow_aisec.crypto.parquet import is_encrypted_parquet

    location = info.location
    return reader.subjects is None and not is_encrypted_parquet(location.filesystem(), location.path)


def _search_parquet(
    dataset: Dataset, files: Sequence[FileInfo], match: Criteria, columns: Sequence[str]
) -> list[FileScan] | None:
    """Two scans: the searched columns of every file find the candidate files (row groups whose statistics
    exclude the values are skipped unread), then the wanted columns of the candidates alone are read."""
    import pyarrow.dataset as pads

    by_path = {i.location.path: FileScan(i) for i in files}
    filesystem = files[0].location.filesystem()
    try:
        lake = pads.dataset(list(by_path), format="parquet", filesystem=filesystem)
        expression = match.expression(lake.schema)
        candidates = Criteria(match.dataset, match.columns).expression(lake.schema)
        if expression is None or candidates is None or not set(columns) <= set(lake.schema.names):
            return None
        for fragment in lake.get_fragments():  # rows examined, from each footer
            by_path[fragment.path].rows = fragment.metadata.num_rows
        hits = set()
        for tagged in lake.scanner(columns=sorted(match.columns), filter=candidates).scan_batches():
            if tagged.record_batch.num_rows:
                hits.add(tagged.fragment.path)
        if hits:
            found = pads.dataset(sorted(hits), format="parquet", filesystem=filesystem, schema=lake.schema)
            for tagged in found.scanner(columns=list(columns), filter=expression).scan_batches():
                if tagged.record_batch.num_rows:
                    scan = by_path[tagged.fragment.path]
                    scan.found.append(tagged.record_batch)
                    scan.rows = tagged.fragment.metadata.num_rows
    except (pa.ArrowException, OSError):
        return None  # e.g. files whose schemas disagree: read them one by one, which names the culprit
    return list(by_path.values())


def catalog_scanner(catalog: Catalog, keyring: LocalKeyring) -> Scanner:
    """A ``Scanner`` that decrypts the catalog's encrypted datasets with keys from ``keyring``."""
    from airflow_aisec.crypto.datasets import reader_for

    return Scanner(
        {d.name: reader_for(catalog, d, keyring) for d in catalog.datasets.values() if d.encryption}
    )


def as_text(values: pa.Array | pa.ChunkedArray, casefold: bool = False) -> pa.Array:
    """Values as strings (dictionary-decoded, numbers in decimal), normalized by ``matching.fold`` with
    ``casefold``."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    return fold(values) if casefold else values


def member(values: pa.Array | pa.ChunkedArray, wanted: set[str], casefold: bool = False) -> pa.Array:
    """True where a value is one of ``wanted`` (never null)."""
    if not wanted:
        return falses(len(values))
    keys = sorted(fold_texts(wanted) if casefold else wanted)
    found = pc.is_in(as_text(values, casefold), value_set=pa.array(keys, pa.string()))
    return pc.fill_null(found, False)


def casefolded(dataset: Dataset, column: str) -> bool:
    """E-mail addresses are matched regardless of case."""
    spec = dataset.columns.get(column)
    return spec is not None and spec.pii == "EMAIL_ADDRESS"


@dataclasses.dataclass(frozen=True)
class Criteria:
    """How the subject's rows of one dataset are recognised: column → values it may hold.

    ``excluded`` (rows an earlier search already found) are left out, so searching only for newly learnt
    values never counts a row twice.
    """

    dataset: Dataset
    columns: dict[str, frozenset[str]]
    excluded: Criteria | None = None

    def mask(self, batch: pa.RecordBatch) -> pa.Array:
        """True for the subject's rows of ``batch``."""
        result = falses(batch.num_rows)
        for column, values in self.columns.items():
            found = member(batch.column(column), set(values), casefolded(self.dataset, column))
            result = pc.or_(result, found)
        if self.excluded is not None and self.excluded.columns:
            result = pc.and_not(result, self.excluded.mask(batch))
        return result

    def expression(self, schema: pa.Schema) -> pc.Expression | None:
        """The same test as a dataset filter, which Parquet row-group statistics can prune with (None: the
        schema lacks a column)."""
        terms = []
        for column, values in self.columns.items():
            if column not in schema.names:
                return None
            terms.append(_term(column, schema.field(column).type, values, casefolded(self.dataset, column)))
        found = functools.reduce(operator.or_, [t for t in terms if t is not None], pc.scalar(False))
        if self.excluded is not None and self.excluded.columns:
            before = self.excluded.expression(schema)
            if before is None:
                return None
            found = found & ~before
        return found


def _term(column: str, kind: pa.DataType, values: frozenset[str], casefold: bool) -> pc.Expression | None:
    field = pc.field(column)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if casefold:
            return fold(field).isin(pa.array(sorted(fold_texts(values)), kind))
        return field.isin(pa.array(sorted(values), kind))
    typed = []
    for value in sorted(values):
        try:
            typed.append(pa.scalar(value).cast(kind))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue  # a value this column cannot hold matches no row
    return field.isin(pa.array([t.as_py() for t in typed], kind)) if typed else None


def falses(n: int) -> pa.Array:
    """``n`` times False."""
    return pa.repeat(pa.scalar(False), n)


def criteria(catalog: Catalog, dataset: Dataset, ids: Identifiers) -> Criteria:
    """The identity and reference columns of ``dataset`` and the subject's values for each."""
    columns: dict[str, set[str]] = {}
    for kind, column in dataset.identity.items():
        if ids.identities.get(kind):
            columns.setdefault(column, set()).update(ids.identities[kind])
    for column, target in dataset.reference_targets().items():
        if ids.linked.get(target) and target[0] != dataset.name:
            columns.setdefault(column, set()).update(ids.linked[target])
    return Criteria(dataset, {c: frozenset(v) for c, v in columns.items()})


def free_text_columns(dataset: Dataset) -> list[str]:
    """The columns the catalog declares as free text (top-level names, or paths such as ``notes[].body``)."""
    return [name for name, col in dataset.columns.items() if col.pii == FREE_TEXT]


def read_columns(dataset: Dataset, names: Iterable[str]) -> list[str]:
    """The top-level columns to read for ``names`` (columns and paths into them). CSV has no nested fields:
    a CSV header may hold a dot."""
    if dataset.format == "csv":
        return sorted(set(names))
    return sorted({top_column(n) for n in names})


def in_batch(batch: pa.RecordBatch, name: str) -> bool:
    """Whether ``batch`` holds the column ``name``, or the column the path ``name`` goes into."""
    return name in batch.schema.names or top_column(name) in batch.schema.names


def column_values(batch: pa.RecordBatch, name: str) -> tuple[pa.Array | pa.ChunkedArray, pa.Array | None]:
    """The values of ``name`` in ``batch``: a column's (and None), or the leaves of a path into a column and
    the row each comes from."""
    if name in batch.schema.names:
        return batch.column(name), None
    found = leaves(batch.column(top_column(name)), name)
    return found.values, found.rows


def rows_of(values_mask: pa.Array, rows: pa.Array | None, num_rows: int) -> pa.Array:
    """A per-row mask from a per-value one: true where any value of the row is (``rows`` None: already one
    per row)."""
    if rows is None:
        return pc.fill_null(values_mask, False)
    hit = pc.filter(rows, pc.fill_null(values_mask, False))
    mask = np.zeros(num_rows, dtype=bool)
    mask[hit.to_numpy(zero_copy_only=False)] = True
    return pa.array(mask, pa.bool_())


def mention_mask(batch: pa.RecordBatch, columns: Sequence[str], pattern: str | None) -> pa.Array:
    """True for rows whose free text (top-level columns or paths) mentions the subject."""
    result = falses(batch.num_rows)
    if pattern is None:
        return result
    for column in columns:
        values, rows = column_values(batch, column)
        found = pc.match_substring_regex(as_text(values), pattern=pattern)
        result = pc.or_(result, rows_of(found, rows, batch.num_rows))
    return result


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
        index: SubjectIndex | None = None,
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

    def rescan(self, ids: Identifiers, previous: DatasetMatch) -> DatasetMatch:
        """The dataset's match now: files still at the version scanned keep their result, others are read."""
        dataset = self.catalog.dataset(previous.dataset)
        fresh = DatasetMatch(dataset.name, how=list(previous.how))
        todo = []
        for info in self.files(dataset):
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

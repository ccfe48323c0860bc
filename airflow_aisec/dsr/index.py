"""The subject index: which files of a dataset may hold a data subject, known without reading them.

For every file of a dataset and each of its identity and reference columns holding text, the index keeps a
Bloom filter of the column's values, each hashed with BLAKE2b keyed by the keyring key ``aisec-dsr-index``
(e-mail addresses lower-cased first). A request then reads only the files whose filters may contain one of
the subject's values, plus every file the index does not cover at its current version (new, or changed since
it was indexed: an entry is trusted only for the exact file version, its etag, it was built from). A Bloom
filter has no false negatives, so no row of the subject is ever skipped; its false positives (about 1 %) only
cost a read.

Every entry is authenticated: an HMAC-SHA256 under a key derived from ``aisec-dsr-index`` covers the
dataset, the file's URI, version (etag) and size, the column, the row count and the filter's bits. An entry
whose MAC does not verify (someone with write access to the index zeroed its bits, or copied it from another
file) is treated as absent, so its file is read, and it is counted in ``SubjectIndex.rejected`` for the
request to report. Without the key nobody can write an entry a request trusts.

The index holds no identifier, only bits set by keyed hashes. It is kept at
``<[aisec] dsr_index>/<dataset>.idx`` (a JSON header line, then the filters' bits), refreshed by
``aisec dsr index`` or the ``aisec_dsr_index`` DAG (files whose version changed are indexed again, vanished
ones dropped). A request drops the entries of the files it rewrote, so an erased subject leaves no trace in
the index; those files are read by later requests until the next refresh. Without an index every file is
read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_aisec.catalog.lake import dataset_files
from airflow_aisec.dsr.matching import Criteria, as_text, casefolded, fold_text
from airflow_aisec.exceptions import DsrError
from airflow_aisec.files import locked
from airflow_aisec.io import FileInfo, Location, S3Options, put_small_file

if TYPE_CHECKING:
    import numpy as np

    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.dsr.scan import Scanner

log = logging.getLogger(__name__)

INDEX_KEY = "aisec-dsr-index"
FORMAT = "aisec-dsr-index"
FORMAT_VERSION = 2  # version 1 had no MACs: such an index is ignored until it is rebuilt
FALSE_POSITIVES = 0.01
_DIGEST = 16


def indexed_columns(dataset: Dataset) -> list[str]:
    """The columns a request matches the subject by: identity and reference columns."""
    return sorted(set(dataset.identity.values()) | set(dataset.references))


@dataclasses.dataclass
class Bloom:
    """A Bloom filter of ``m`` bits and ``k`` hash functions over 16-byte keyed digests (double hashing)."""

    m: int
    k: int
    bits: bytes

    @classmethod
    def build(cls, digests: np.ndarray, false_positives: float = FALSE_POSITIVES) -> Bloom:
        """The filter of ``digests`` (an ``(n, 2)`` array of uint64), sized for ``false_positives``."""
        import numpy as np

        n = max(len(digests), 1)
        m = max(64, math.ceil(-n * math.log(false_positives) / math.log(2) ** 2 / 8) * 8)
        k = max(1, round(m / n * math.log(2)))
        bits = np.zeros(m // 8, dtype=np.uint8)
        for position in _positions(digests, m, k):
            np.bitwise_or.at(bits, (position >> np.uint64(3)).astype(np.int64), _bit(position))
        return cls(m, k, bits.tobytes())

    def may_contain(self, digests: np.ndarray) -> bool:
        """Whether any of ``digests`` may have been added (never False for one that was)."""
        import numpy as np

        if not len(digests):
            return False
        if len(digests) <= 8:  # a request looks up a few values: plain integers beat array set-up
            return any(self._has(int(h1), int(h2)) for h1, h2 in digests)
        bits = np.frombuffer(self.bits, dtype=np.uint8)
        present = np.ones(len(digests), dtype=bool)
        for position in _positions(digests, self.m, self.k):
            present &= (bits[(position >> np.uint64(3)).astype(np.int64)] & _bit(position)) != 0
        return bool(present.any())

    def _has(self, h1: int, h2: int) -> bool:
        h2 |= 1
        for i in range(self.k):
            position = (h1 + i * h2) % (1 << 64) % self.m
            if not self.bits[position >> 3] & (1 << (position & 7)):
                return False
        return True


def _positions(digests: np.ndarray, m: int, k: int) -> Iterable[np.ndarray]:
    import numpy as np

    h1 = digests[:, 0]
    h2 = digests[:, 1] | np.uint64(1)
    with np.errstate(over="ignore"):  # the double hashing wraps around 2**64 on purpose
        for i in range(k):
            yield (h1 + np.uint64(i) * h2) % np.uint64(m)


def _bit(position: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.left_shift(np.uint8(1), (position & np.uint64(7)).astype(np.uint8))


def keyed_digests(key: bytes, texts: Iterable[str]) -> np.ndarray:
    """BLAKE2b digests of ``texts`` keyed with ``key``, as an ``(n, 2)`` uint64 array."""
    import numpy as np

    joined = b"".join(
        hashlib.blake2b(t.encode("utf-8"), key=key, digest_size=_DIGEST).digest() for t in texts
    )
    return np.frombuffer(joined, dtype=np.uint64).reshape(-1, 2)


@dataclasses.dataclass
class FileFilter:
    """The filter of one column of one file version."""

    uri: str
    etag: str
    column: str
    rows: int
    bloom: Bloom
    size: int = -1

    def mac(self, key: bytes, dataset: str) -> str:
        """HMAC-SHA256 of everything a request trusts in this entry."""
        head = [dataset, self.uri, self.etag, self.size, self.column, self.rows, self.bloom.m, self.bloom.k]
        message = json.dumps(head, separators=(",", ":")).encode("utf-8") + b"\n" + self.bloom.bits
        return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclasses.dataclass
class RefreshStats:
    """What refreshing a dataset's index did."""

    dataset: str
    files: int = 0
    indexed: int = 0
    reused: int = 0
    dropped: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dataclasses.asdict(self)


class SubjectIndex:
    """The subject index of a catalog's datasets, stored below ``root`` (a folder or ``s3://`` prefix)."""

    def __init__(self, root: str, keyring: LocalKeyring, *, s3: S3Options | None = None) -> None:
        self.root = Location.parse(root, s3)
        self.keyring = keyring
        self._entries: dict[str, dict[tuple[str, str], FileFilter] | None] = {}
        self._key: tuple[int, bytes] | None = None
        self._mac_key: bytes | None = None
        # dataset → URIs of the files whose entries failed authentication (read instead of trusted).
        self.rejected: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"SubjectIndex({self.root.uri!r})"

    def _current_key(self) -> tuple[int, bytes]:
        if self._key is None:
            version = self.keyring.ensure(INDEX_KEY, "symmetric")
            assert version.material is not None
            self._key = (version.version, hashlib.sha256(version.material).digest())
            self._mac_key = hmac.new(version.material, b"aisec-dsr-index:entry-mac", hashlib.sha256).digest()
        return self._key

    def _entry_mac_key(self) -> bytes:
        self._current_key()
        assert self._mac_key is not None
        return self._mac_key

    def location(self, dataset: str) -> Location:
        """Where the index of ``dataset`` is kept."""
        return self.root.join(f"{dataset}.idx")

    # -- reading -----------------------------------------------------------------------------------------

    def entries(self, dataset: str) -> dict[tuple[str, str], FileFilter] | None:
        """(file uri, column) → entry, or None when the dataset has no usable index (none, or another key)."""
        if dataset not in self._entries:
            self._entries[dataset] = self._load(dataset)
        return self._entries[dataset]

    def _load(self, dataset: str) -> dict[tuple[str, str], FileFilter] | None:
        data = _read_bytes(self.location(dataset))
        if data is None:
            return None
        header_line, _, blob = data.partition(b"\n")
        try:
            header = json.loads(header_line)
        except ValueError:
            return None  # unreadable: read every file, the next refresh rewrites it
        if (
            header.get("format") != FORMAT
            or header.get("version") != FORMAT_VERSION
            or header.get("key_version") != self._current_key()[0]
        ):
            return None
        entries = {}
        key = self._entry_mac_key()
        for item in header.get("entries") or []:
            entry = _entry(item, blob)
            mac = item.get("mac") if isinstance(item, dict) else None
            if entry is None or not isinstance(mac, str) or not _same(entry.mac(key, dataset), mac):
                uri = item.get("uri") if isinstance(item, dict) else None
                self.rejected.setdefault(dataset, set()).add(str(uri))
                continue  # not trusted: the file is read as if it were not indexed
            entries[(entry.uri, entry.column)] = entry
        if self.rejected.get(dataset):
            log.warning(
                "subject index of dataset %s: entries of %d file(s) fail authentication: the files are read",
                dataset, len(self.rejected[dataset]),
            )  # fmt: skip
        return entries

    def candidates(self, dataset: Dataset, files: Sequence[FileInfo], match: Criteria) -> list[FileInfo]:
        """The files that may hold a row matching ``match``: all but those the index rules out."""
        entries = self.entries(dataset.name)
        if not entries or not match.columns:
            return list(files)
        key = self._current_key()[1]
        wanted = {
            column: keyed_digests(key, sorted({_normal(dataset, column, v) for v in values}))
            for column, values in match.columns.items()
        }
        kept = []
        for info in files:
            covering = [entries.get((info.uri, column)) for column in wanted]
            if any(e is None or e.etag != info.etag or e.size != info.size for e in covering):
                kept.append(info)  # not indexed at this version: read it
            elif any(e.bloom.may_contain(wanted[e.column]) for e in covering if e is not None):
                kept.append(info)
        return kept

    # -- building ----------------------------------------------------------------------------------------

    def refresh(
        self,
        dataset: Dataset,
        scanner: Scanner,
        files: Sequence[FileInfo] | None = None,
    ) -> RefreshStats:
        """Index the files of ``dataset`` (default: listed now) whose version is not indexed yet, drop the
        entries of vanished files, and save."""
        started = time.perf_counter()
        stats = RefreshStats(dataset.name)
        columns = indexed_columns(dataset)
        if not columns:
            return stats
        listed = list(files) if files is not None else dataset_files(dataset, self.root.s3)
        stats.files = len(listed)
        with _lock(self.location(dataset.name)):
            self._entries.pop(dataset.name, None)
            old = self.entries(dataset.name) or {}
            kept: dict[tuple[str, str], FileFilter] = {}
            current = {i.uri for i in listed}
            for info in listed:
                # A file version is indexed once: its text columns get entries (others are always read).
                same = [e for c in columns if (e := _current(old.get((info.uri, c)), info)) is not None]
                if same:
                    kept.update({(e.uri, e.column): e for e in same})
                    stats.reused += 1
                    continue
                for entry in self._index_file(dataset, scanner, info, columns):
                    kept[(entry.uri, entry.column)] = entry
                stats.indexed += 1
            stats.dropped = len({uri for uri, _ in old} - current)
            self._save(dataset.name, kept)
        stats.seconds = time.perf_counter() - started
        return stats

    def forget(self, dataset: Dataset, uris: Iterable[str]) -> int:
        """Drop the entries of these files (a request rewrote them): their filters held the erased subject.

        The files are read by requests until the next refresh indexes their new versions. Returns how many
        entries were dropped.
        """
        gone = set(uris)
        if not self.entries(dataset.name):
            return 0  # no index for this dataset: nothing to forget (and no folder to create)
        with _lock(self.location(dataset.name)):
            self._entries.pop(dataset.name, None)
            old = self.entries(dataset.name)
            if not old:
                return 0
            kept = {k: e for k, e in old.items() if e.uri not in gone}
            if len(kept) != len(old):
                self._save(dataset.name, kept)
        return len(old) - len(kept)

    def _index_file(
        self, dataset: Dataset, scanner: Scanner, info: FileInfo, columns: list[str]
    ) -> list[FileFilter]:
        key = self._current_key()[1]
        texts: dict[str, set[str]] = {c: set() for c in columns}
        text_columns = set(columns)
        rows = 0
        for batch in scanner.batches(dataset, info, columns):
            rows += batch.num_rows
            for column in columns:
                values = batch.column(column)
                if not _is_text(values.type):
                    text_columns.discard(column)  # only text columns are indexed: the file is read for others
                    continue
                normal = as_text(values, casefolded(dataset, column))
                texts[column].update(v for v in normal.unique().to_pylist() if v is not None)
        if info.etag is None:
            return []
        blooms = {c: Bloom.build(keyed_digests(key, sorted(texts[c]))) for c in sorted(text_columns)}
        return [FileFilter(info.uri, info.etag, c, rows, bloom, info.size) for c, bloom in blooms.items()]

    def _save(self, dataset: str, entries: dict[tuple[str, str], FileFilter]) -> None:
        version = self._current_key()[0]
        key = self._entry_mac_key()
        items, blobs, offset = [], [], 0
        for (uri, column), entry in sorted(entries.items()):
            items.append({"uri": uri, "column": column, "etag": entry.etag, "size": entry.size,
                          "rows": entry.rows, "m": entry.bloom.m, "k": entry.bloom.k, "offset": offset,
                          "mac": entry.mac(key, dataset)})  # fmt: skip
            blobs.append(entry.bloom.bits)
            offset += len(entry.bloom.bits)
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "dataset": dataset,
            "key_version": version,
            "entries": items,
        }
        put_small_file(
            self.location(dataset),
            json.dumps(header, sort_keys=True).encode("utf-8") + b"\n" + b"".join(blobs),
        )
        self._entries[dataset] = dict(entries)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def _current(entry: FileFilter | None, info: FileInfo) -> FileFilter | None:
    """``entry`` if it was built from this very version of the file."""
    return entry if entry is not None and entry.etag == info.etag and entry.size == info.size else None


def _entry(item: Any, blob: bytes) -> FileFilter | None:
    """One entry of the index file as written, or None when it is malformed."""
    try:
        m, k, offset = int(item["m"]), int(item["k"]), int(item["offset"])
        if m <= 0 or m % 8 or k <= 0 or offset < 0 or offset + m // 8 > len(blob):
            return None
        bloom = Bloom(m, k, blob[offset : offset + m // 8])
        return FileFilter(
            str(item["uri"]), str(item["etag"]), str(item["column"]), int(item["rows"]), bloom,
            int(item.get("size", -1)),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _normal(dataset: Dataset, column: str, value: str) -> str:
    # The request side of the data's normalization, so the digests agree with those of ``_index_file``.
    return fold_text(value) if casefolded(dataset, column) else value


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def refresh_catalog(
    catalog: Catalog, index: SubjectIndex, scanner: Scanner, datasets: Sequence[str] | None = None
) -> list[RefreshStats]:
    """Refresh the index of every dataset with identity or reference columns (or those named)."""
    chosen = [catalog.dataset(n) for n in datasets] if datasets else list(catalog.datasets.values())
    return [index.refresh(d, scanner) for d in chosen if indexed_columns(d)]


# --- storage ----------------------------------------------------------------------------------------------


def _lock(location: Location) -> Any:
    import contextlib

    return locked(Path(location.path)) if not location.is_s3 else contextlib.nullcontext()


def _read_bytes(location: Location) -> bytes | None:
    try:
        with location.filesystem().open_input_stream(location.path) as handle:
            return bytes(handle.read())
    except FileNotFoundError:
        return None
    except OSError as exc:
        if "not found" in str(exc).lower() or "no such file" in str(exc).lower():
            return None
        raise DsrError(f"cannot read the subject index {location.uri}: {exc.__class__.__name__}") from None

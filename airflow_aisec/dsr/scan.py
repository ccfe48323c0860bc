"""Reading a dataset's files for the subject: the columns needed, decrypted, and the rows that match.

``Scanner`` reads chosen columns of a file (decrypting encrypted datasets); ``search`` finds the subject's
rows (``matching.Criteria``) in a dataset's files, pushing the filter down into plaintext Parquet and leaving
unread the files a ``Prefilter`` (the subject index, ``dsr.index.SubjectIndex``) rules out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from airflow_aisec.dsr.matching import Criteria
from airflow_aisec.io import FileInfo, read_file, text_schema
from airflow_aisec.io.nested import top_column

if TYPE_CHECKING:
    from airflow_aisec.catalog import Dataset
    from airflow_aisec.crypto.datasets import DatasetReader
    from airflow_aisec.crypto.keysource import KeySource


class Prefilter(Protocol):
    """What rules files out before they are read: the subject index (``dsr.index.SubjectIndex``)."""

    # dataset → URIs of the files whose entries failed authentication (read instead of trusted).
    rejected: dict[str, set[str]]

    def candidates(self, dataset: Dataset, files: Sequence[FileInfo], match: Criteria) -> list[FileInfo]:
        """The files that may hold a row matching ``match``: all but those ruled out."""
        ...


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
    index: Prefilter | None = None,
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


def catalog_scanner(keys: KeySource) -> Scanner:
    """A ``Scanner`` that decrypts the encrypted datasets of ``keys``' catalog."""
    from airflow_aisec.crypto.datasets import reader_for

    return Scanner({d.name: reader_for(keys, d) for d in keys.catalog.datasets.values() if d.encryption})


def read_columns(dataset: Dataset, names: Iterable[str]) -> list[str]:
    """The top-level columns to read for ``names`` (columns and paths into them). CSV has no nested fields:
    a CSV header may hold a dot."""
    if dataset.format == "csv":
        return sorted(set(names))
    return sorted({top_column(n) for n in names})

"""What the lake actually holds, compared with what the catalog declares.

A column in the files that the catalog does not declare may be new personal data that no rule covers
(schema drift); a declared column missing from the files breaks retention and erasure. Both are reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_aisec.catalog import Catalog, Dataset
from airflow_aisec.catalog.lake import dataset_files
from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io import FileInfo, S3Options, read_file
from airflow_aisec.io.nested import top_column


class FileReader(Protocol):
    """Reads one file's shape (rows, column names), decrypting it if needed."""

    def shape(self, info: FileInfo, fmt: str) -> tuple[int, list[str]]: ...


@dataclasses.dataclass
class DatasetInventory:
    """Files, rows and column drift of one catalog dataset."""

    dataset: str
    uri: str
    format: str
    files: int = 0
    rows: int = 0
    bytes: int = 0
    columns: list[str] = dataclasses.field(default_factory=list)
    missing_columns: list[str] = dataclasses.field(default_factory=list)
    undeclared_columns: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def drift(self) -> bool:
        """True when the files and the catalog disagree about the columns, or a file is unreadable."""
        return bool(self.missing_columns or self.undeclared_columns or self.problems)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form (XCom, ``--json``)."""
        return {**dataclasses.asdict(self), "drift": self.drift}


def _file_shape(info: FileInfo, fmt: str) -> tuple[int, list[str]]:
    """Rows and column names of one file; Parquet answers from its footer, other formats are streamed."""
    if fmt == "parquet":
        try:
            with info.location.filesystem().open_input_file(info.location.path) as handle:
                meta = pq.ParquetFile(handle).metadata
                return meta.num_rows, list(meta.schema.to_arrow_schema().names)
        except (pa.ArrowInvalid, OSError) as e:
            raise DatasetIOError(f"{info.uri} is not a readable parquet file") from e
    rows, names = 0, list[str]()
    for batch in read_file(info, fmt):
        rows += batch.num_rows
        names = names or list(batch.schema.names)
    return rows, names


def inventory_dataset(
    dataset: Dataset, s3: S3Options | None = None, reader: FileReader | None = None
) -> DatasetInventory:
    """Count the files and rows of ``dataset`` and compare its columns with the catalog.

    ``reader`` reads files the catalog says are encrypted (see ``airflow_aisec.crypto.datasets.reader_for``).
    """
    result = DatasetInventory(dataset.name, dataset.uri, dataset.format)
    try:
        files = dataset_files(dataset, s3)
    except DatasetIOError as e:
        result.problems.append(str(e))
        return result
    seen: set[str] = set()
    for info in files:
        try:
            rows, names = reader.shape(info, dataset.format) if reader else _file_shape(info, dataset.format)
        except DatasetIOError as e:
            result.problems.append(str(e))
            continue
        result.files += 1
        result.rows += rows
        result.bytes += info.size
        result.columns += [n for n in names if n not in seen]
        seen.update(names)
    if result.files:
        # A declared path (``payload.ip``) is found in, and declares, its top-level column.
        declared = set(dataset.columns) | {top_column(c) for c in dataset.columns}
        result.missing_columns = [c for c in dataset.columns if c not in seen and top_column(c) not in seen]
        result.undeclared_columns = [c for c in result.columns if c not in declared]
    return result


def take_inventory(
    catalog: Catalog,
    s3: S3Options | None = None,
    on_dataset: Callable[[DatasetInventory], None] | None = None,
    readers: Mapping[str, FileReader] | None = None,
) -> list[DatasetInventory]:
    """Inventory every dataset of the catalog, in catalog order (``readers``: per dataset, for encrypted)."""
    results = []
    for dataset in catalog.datasets.values():
        results.append(inventory_dataset(dataset, s3, (readers or {}).get(dataset.name)))
        if on_dataset is not None:
            on_dataset(results[-1])
    return results

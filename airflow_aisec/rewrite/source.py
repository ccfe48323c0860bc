"""Rewriting one file of a catalog dataset in place, safely: the shared plumbing of retention and DSRs.

``open_rewrite`` gives the file's batches (decrypted when it is an encrypted Parquet file) and a sink that
writes the new version to a temporary place and swaps it in atomically, against the version that was read
(``expected_etag``), only when the block exits cleanly. An encrypted file is written back encrypted under
the catalog's key and columns; values sealed per subject are read and written back sealed, as they were.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_aisec.crypto.parquet import (
    atomic_write_encrypted,
    encrypted_schema,
    is_encrypted_parquet,
    read_encrypted_batches,
)
from airflow_aisec.exceptions import DatasetIOError, EncryptionError
from airflow_aisec.io import Location, atomic_write, read_file, text_schema

if TYPE_CHECKING:
    from airflow_aisec.catalog import Dataset
    from airflow_aisec.crypto.providers import KeyProvider


@dataclasses.dataclass
class Rewrite:
    """The file's schema and batches, and the atomic writer (a context manager) of its new version."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    sink: Any


def plain_source(fmt: str, location: Location) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema a rewrite keeps, and the file's batches (CSV as text)."""
    if fmt == "parquet":
        try:
            with location.filesystem().open_input_file(location.path) as handle:
                schema = pq.ParquetFile(handle).schema_arrow
        except (OSError, pa.ArrowException):
            raise DatasetIOError(f"{location.uri} is not a readable parquet file") from None
        return schema, read_file(location, "parquet")
    if fmt == "csv":
        text = text_schema(location)
        if text is None:
            raise DatasetIOError(f"{location.uri} is empty")
        return text, read_file(location, "csv", schema=text)
    batches = read_file(location, fmt)
    first = next(batches, None)
    if first is None:
        raise DatasetIOError(f"{location.uri} is empty")
    return first.schema, itertools.chain([first], batches)


def open_rewrite(
    location: Location,
    dataset: Dataset,
    *,
    encrypted: bool,
    key_provider: Callable[[str], KeyProvider],
    expected_etag: str | None,
    schema: pa.Schema | None = None,
) -> Rewrite:
    """The batches of ``location`` and a sink replacing it; ``schema`` overrides the one written."""
    if encrypted:
        encryption = dataset.encryption
        if encryption is None:  # the new version must be encrypted as the old one was, so a key is needed
            raise EncryptionError(f"{location.uri} is encrypted but the catalog has no encryption block")
        provider = key_provider(encryption.key)
        source_schema = encrypted_schema(location, provider)
        batches = read_encrypted_batches(location, provider)
        sink: Any = atomic_write_encrypted(
            location, schema or source_schema, provider, encryption.key, encryption.columns,
            expected_etag=expected_etag,
        )  # fmt: skip
        return Rewrite(source_schema, batches, sink)
    source_schema, batches = plain_source(dataset.format, location)
    sink = atomic_write(location, dataset.format, schema or source_schema, expected_etag=expected_etag)
    return Rewrite(source_schema, batches, sink)


def count_rows(location: Location, dataset: Dataset, key_provider: Callable[[str], KeyProvider]) -> int:
    """The rows of a dataset file as it is now, read in full (decrypted when it is encrypted)."""
    if dataset.format == "parquet" and is_encrypted_parquet(location.filesystem(), location.path):
        if dataset.encryption is None:
            raise EncryptionError(f"{location.uri} is encrypted but the catalog has no encryption block")
        batches = read_encrypted_batches(location, key_provider(dataset.encryption.key))
    else:
        _, batches = plain_source(dataset.format, location)
    return sum(batch.num_rows for batch in batches)

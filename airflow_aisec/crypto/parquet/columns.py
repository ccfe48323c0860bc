"""Which master key encrypts which Parquet columns, checked against a file's schema before writing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_aisec.exceptions import EncryptionError

ColumnKeys = Mapping[str, Sequence[str]]
"""Master key name -> the columns (top-level names or dotted leaf paths) it encrypts."""


def column_keys(key_name: str, columns: Sequence[str] | ColumnKeys) -> dict[str, list[str]]:
    """Normalise ``columns`` (all under ``key_name``, or a mapping master key -> columns) and check it."""
    if not key_name:
        raise EncryptionError("an encryption key name is required")
    if isinstance(columns, str):
        raise EncryptionError(f"columns must be a list of column names, not the string {columns!r}")
    mapping: dict[str, list[str]] = (
        {str(k): list(v) for k, v in columns.items()}
        if isinstance(columns, Mapping)
        else {key_name: list(columns)}
    )
    seen: dict[str, str] = {}
    for key, names in mapping.items():
        if isinstance(names, str) or not names:
            raise EncryptionError(f"master key {key!r} must encrypt a non-empty list of columns")
        for name in names:
            if name in seen:
                raise EncryptionError(
                    f"column {name!r} is assigned to master keys {seen[name]!r} and {key!r}"
                )
            seen[name] = key
    return mapping


def _column_paths(schema: pa.Schema) -> set[str]:
    """Every column path pyarrow accepts for encryption: top-level names, leaf paths and what is between."""
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink)
    parquet_schema = pq.ParquetFile(pa.BufferReader(sink.getvalue())).schema
    paths: set[str] = set()
    for index in range(len(parquet_schema)):
        parts = parquet_schema.column(index).path.split(".")
        paths.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return paths


def check_columns(schema: pa.Schema, keys: ColumnKeys, where: str) -> None:
    """Raise ``EncryptionError`` naming every column of ``keys`` that ``schema`` does not have."""
    known = _column_paths(schema)
    unknown = [name for names in keys.values() for name in names if name not in known]
    if unknown:
        raise EncryptionError(
            f"cannot encrypt {where}: unknown column(s) {', '.join(unknown)} "
            f"(the file has {', '.join(schema.names)})"
        )

"""Streaming writers of one dataset file (Parquet, CSV, JSON Lines) from Arrow record batches.

Memory stays bounded by the batch size: no writer holds a whole file. Error messages name the file and never
quote its content, which may be PII.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io.formats import (
    CONTENT_ERRORS,
    JSONL_CHUNK_ROWS,
    check_format,
    conform,
    display_path,
    short_error,
    slices,
)


class BatchWriter:
    """Writes record batches of one schema to one file; ``rows`` counts rows written so far.

    Batches are cast to the schema given at open (same column names required). ``close`` finishes the file;
    ``abort`` closes it without caring whether it is complete (the caller then deletes it).
    """

    fmt: str = ""

    def __init__(self, stream: pa.NativeFile, schema: pa.Schema, label: str) -> None:
        self.schema = schema
        self.label = label
        self.rows = 0
        self._stream = stream
        self._closed = False

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append a batch (or every batch of a table)."""
        if self._closed:
            raise DatasetIOError(f"{self.label} is already closed")
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        for batch in batches:
            batch = conform(batch, self.schema, self.label)
            with self._errors():
                self._write(batch)
            self.rows += batch.num_rows

    def close(self) -> None:
        """Finish the file (footer, flush) and close the stream."""
        if self._closed:
            return
        self._closed = True
        with self._errors():
            self._finish()
            self._stream.close()

    def abort(self) -> None:
        """Close without finishing; errors are ignored because the file is about to be discarded."""
        if self._closed:
            return
        self._closed = True
        for step in (self._finish, self._stream.close):
            with contextlib.suppress(Exception):
                step()

    def _errors(self) -> _WriteErrors:
        return _WriteErrors(self.fmt, self.label)

    def _write(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError


class _WriteErrors:
    """Turns Arrow and OS errors raised while writing into ``DatasetIOError`` naming the file."""

    def __init__(self, fmt: str, label: str) -> None:
        self.fmt = fmt
        self.label = label

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, DatasetIOError):
            return
        if isinstance(exc, (*CONTENT_ERRORS, ValueError, TypeError)):
            raise DatasetIOError(f"cannot write {self.fmt} file {self.label}: {type(exc).__name__}") from None
        if isinstance(exc, OSError):
            raise DatasetIOError(f"cannot write {self.label}: {short_error(exc)}") from exc


class ParquetBatchWriter(BatchWriter):
    """Buffers small batches into row groups of about ``row_group_rows`` rows.

    Readers skip whole row groups by their statistics, and a row group per small batch would make files
    larger and slower to read; the buffer bounds memory to one row group. ``parquet_options`` go to
    ``pyarrow.parquet.ParquetWriter`` (e.g. ``encryption_properties``).
    """

    fmt = "parquet"
    ROW_GROUP_ROWS = 131_072

    def __init__(
        self,
        stream: pa.NativeFile,
        schema: pa.Schema,
        label: str,
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
        **parquet_options: Any,
    ) -> None:
        super().__init__(stream, schema, label)
        self._row_group_rows = row_group_rows
        self._writer = pq.ParquetWriter(stream, schema, **parquet_options)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def _write(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self._row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self._pending, self._pending_rows = [], 0

    def _finish(self) -> None:
        self._flush()
        self._writer.close()


class _CsvWriter(BatchWriter):
    fmt = "csv"

    def __init__(self, stream: pa.NativeFile, schema: pa.Schema, label: str) -> None:
        super().__init__(stream, schema, label)
        self._writer = pacsv.CSVWriter(stream, schema)

    def _write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def _finish(self) -> None:
        self._writer.close()


class _JsonlWriter(BatchWriter):
    fmt = "jsonl"

    def _write(self, batch: pa.RecordBatch) -> None:
        for chunk in slices(_json_ready(batch), JSONL_CHUNK_ROWS):
            lines = [_json_line(row) for row in chunk.to_pylist()]
            self._stream.write(("\n".join(lines) + "\n").encode("utf-8"))

    def _finish(self) -> None:
        return None


def _json_line(row: dict[str, Any]) -> str:
    # NaN and infinities are refused: they are not JSON, and writing null instead would change the data.
    return json.dumps(row, ensure_ascii=False, allow_nan=False, default=_json_default, separators=(",", ":"))


def _json_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Replace top-level date, time and timestamp columns by ISO-8601 text (keeps nanoseconds)."""
    arrays = [_temporal_text(column) for column in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _temporal_text(array: pa.Array) -> pa.Array:
    t = array.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            return pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")
        # Zoned instants are written in UTC with "Z": unambiguous, and Arrow reads it back into any zone.
        return pc.strftime(array.cast(pa.timestamp(t.unit, tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_date(t) or pa.types.is_time(t):
        return array.cast(pa.string())
    return array


def _json_default(value: Any) -> Any:
    # Values json cannot encode natively, found inside nested lists and structs or in decimal columns.
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot write a {type(value).__name__} value as JSON")


_WRITERS: dict[str, type[BatchWriter]] = {
    "parquet": ParquetBatchWriter,
    "csv": _CsvWriter,
    "jsonl": _JsonlWriter,
}


def open_writer(
    fs: pafs.FileSystem, path: str, fmt: str, schema: pa.Schema, *, label: str | None = None
) -> BatchWriter:
    """Create (or truncate) ``path`` and return a writer of ``fmt`` for ``schema``.

    ``label`` names the file in error messages (default: the path).
    """
    writer_type = _WRITERS[check_format(fmt)]
    name = label or display_path(fs, path)
    with _WriteErrors(fmt, name):
        stream = fs.open_output_stream(path)
        try:
            return writer_type(stream, schema, name)
        except BaseException:
            stream.close()
            raise

"""Streaming readers and writers of one dataset file (Parquet, CSV, JSON Lines) as Arrow record batches.

Memory stays bounded by the batch size (and an 8 MiB parse block for CSV/JSON): no reader or writer here
holds a whole file. Error messages name the file and never quote its content, which may be PII; for a
malformed CSV or JSON Lines file they also give the line and the reason (``airflow_aisec.io.diagnose``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq

from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io.diagnose import (
    QuoteCounter,
    check_quotes_closed,
    csv_locator,
    locate_jsonl_problem,
    located_error,
)
from airflow_aisec.io.nested import repair_null_lists

FORMATS: Final = ("parquet", "csv", "jsonl")
EXTENSIONS: Final = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl"}
DEFAULT_BATCH_SIZE: Final = 65_536

# Large enough for any sane row (a row may not straddle more than one block), small enough to stay bounded.
_BLOCK_SIZE = 8 << 20
_JSONL_CHUNK_ROWS = 8_192
# Arrow errors about content; their messages may quote the offending row, so they are not repeated.
_CONTENT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class _ReadSpec:
    fs: pafs.FileSystem
    path: str
    columns: list[str] | None
    target: pa.Schema | None  # the caller's schema, restricted to ``columns``
    batch_size: int
    file_schema: pa.Schema | None  # the caller's schema of the whole file


_Reader = Callable[[_ReadSpec], Iterator[pa.RecordBatch]]


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is a supported format, else raise ``DatasetIOError``."""
    if fmt not in FORMATS:
        raise DatasetIOError(f"unsupported dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def extension(fmt: str) -> str:
    """The file extension of ``fmt``, with the dot (``.parquet``)."""
    return EXTENSIONS[check_format(fmt)]


def display_path(fs: pafs.FileSystem, path: str) -> str:
    """How a file is named in messages: ``s3://bucket/key`` or the local path."""
    return f"s3://{path}" if fs.type_name == "s3" else path


def conform(batch: pa.RecordBatch, schema: pa.Schema, where: str) -> pa.RecordBatch:
    """Reorder and cast ``batch`` to ``schema``; missing or unexpected columns are an error, never dropped."""
    names = batch.schema.names
    missing = [n for n in schema.names if n not in names]
    extra = [n for n in names if n not in schema.names]
    if missing or extra:
        detail = "; ".join(
            part
            for part in (
                f"missing column(s) {', '.join(missing)}" if missing else "",
                _unexpected(extra, bool(missing)) if extra else "",
            )
            if part
        )
        raise DatasetIOError(f"{where} does not match the expected schema: {detail}")
    if batch.schema.equals(schema, check_metadata=False):
        return batch
    arrays = [_cast_column(batch.column(f.name), f, where) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _unexpected(extra: list[str], header_suspect: bool) -> str:
    """The file's own column names, named only when they read as a header: in a file whose header is
    damaged or missing, the "names" are values of its first rows."""
    if not header_suspect and all(_PLAIN_NAME.fullmatch(name) for name in extra):
        return f"unexpected column(s) {', '.join(extra)}"
    return f"{len(extra)} unexpected column(s) (names not shown: the header may be damaged or hold data)"


def _cast_column(array: pa.Array, field: pa.Field, where: str) -> pa.Array:
    if array.type == field.type:
        return array
    try:
        return array.cast(field.type)
    except _CONTENT_ERRORS:
        # The Arrow message quotes the value that failed, so only the column and types are named.
        raise DatasetIOError(
            f"{where}: column {field.name!r} cannot be converted from {array.type} to {field.type}"
        ) from None


def _slices(batch: pa.RecordBatch, batch_size: int) -> Iterator[pa.RecordBatch]:
    for offset in range(0, batch.num_rows, batch_size):
        yield batch.slice(offset, batch_size)


def _project(schema: pa.Schema | None, columns: list[str] | None) -> pa.Schema | None:
    if schema is None or columns is None:
        return schema
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise DatasetIOError(f"requested column(s) {', '.join(missing)} are not in the expected schema")
    return pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)


def read_batches(
    fs: pafs.FileSystem,
    path: str,
    fmt: str,
    *,
    columns: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    schema: pa.Schema | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream one file as record batches of at most ``batch_size`` rows.

    ``columns`` selects and orders columns; ``schema`` (of the whole file) casts every batch to it, and a file
    whose columns differ from it is an error. Without ``schema``, CSV and JSON types are inferred from the
    first 8 MiB, so pass it whenever the types matter. Unreadable content raises ``DatasetIOError`` naming
    the file.
    """
    reader = _READERS[check_format(fmt)]
    if batch_size < 1:
        raise DatasetIOError(f"batch_size must be positive, got {batch_size}")
    wanted = list(columns) if columns is not None else None
    target = _project(schema, wanted)
    where = display_path(fs, path)
    with _read_errors(where, fmt):
        for batch in reader(_ReadSpec(fs, path, wanted, target, batch_size, schema)):
            if wanted is not None:
                batch = _select(batch, wanted, where)
            if target is not None:
                batch = conform(batch, target, where)
            yield from _slices(batch, batch_size)


@contextlib.contextmanager
def _read_errors(where: str, fmt: str) -> Iterator[None]:
    """Turns whatever reading a file raises into ``DatasetIOError`` naming the file, never its content."""
    try:
        yield
    except DatasetIOError:
        raise
    except FileNotFoundError:
        raise DatasetIOError(f"{where} does not exist") from None
    except _CONTENT_ERRORS:
        raise DatasetIOError(f"{where} is not a readable {fmt} file") from None
    except UnicodeDecodeError:
        # The error holds the undecodable bytes and what surrounds them: neither is repeated.
        raise DatasetIOError(f"{where} is not a readable {fmt} file (not UTF-8 text)") from None
    except KeyError as exc:
        raise DatasetIOError(f"{where}: {exc}") from None
    except OSError as exc:
        raise DatasetIOError(f"cannot read {where}: {_short(exc)}") from exc
    except pa.ArrowException as exc:
        raise DatasetIOError(f"{where} is not a readable {fmt} file ({type(exc).__name__})") from None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"


def _select(batch: pa.RecordBatch, columns: list[str], where: str) -> pa.RecordBatch:
    if batch.schema.names == columns:
        return batch
    missing = [c for c in columns if c not in batch.schema.names]
    if missing:
        raise DatasetIOError(f"{where} has no column(s) {', '.join(missing)}")
    return batch.select(columns)


def _is_empty(fs: pafs.FileSystem, path: str) -> bool:
    # Arrow's CSV and JSON readers reject a zero-byte file; for us it is a file with no rows.
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(path)
    return bool(info.size == 0)


def _read_parquet(spec: _ReadSpec) -> Iterator[pa.RecordBatch]:
    fs, path, columns = spec.fs, spec.path, spec.columns
    with fs.open_input_file(path) as source:
        parquet = pq.ParquetFile(source)
        if columns is not None:
            missing = [c for c in columns if c not in parquet.schema_arrow.names]
            if missing:
                raise DatasetIOError(f"{display_path(fs, path)} has no column(s) {', '.join(missing)}")
        yield from parquet.iter_batches(batch_size=spec.batch_size, columns=columns)


def _read_csv(spec: _ReadSpec) -> Iterator[pa.RecordBatch]:
    fs, path, columns, target = spec.fs, spec.path, spec.columns, spec.target
    if _is_empty(fs, path):
        return
    convert = pacsv.ConvertOptions(
        column_types=target,
        include_columns=columns,
        # Only an unquoted empty field is null: "NA", "null" or "nan" in a text column are real values, and a
        # quoted "" stays an empty string, matching what CSVWriter produces.
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    skip_empty = spec.file_schema is None or len(spec.file_schema) != 1
    reader = None
    with fs.open_input_stream(path) as raw:
        source = QuoteCounter(raw)
        try:
            reader = pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(block_size=_BLOCK_SIZE),
                parse_options=pacsv.ParseOptions(
                    # Free text (addresses, notes) may contain line breaks inside quotes.
                    newlines_in_values=True,
                    # In a one-column file a null is written as an empty line, which must stay a row.
                    ignore_empty_lines=skip_empty,
                ),
                convert_options=convert,
            )
            if target is None and any(pa.types.is_binary(f.type) for f in reader.schema):
                # Inference turns a column with bytes that are not UTF-8 into binary: text it is not.
                raise pa.ArrowInvalid("invalid UTF8 data")
            yield from reader
        except (*_CONTENT_ERRORS, UnicodeDecodeError) as exc:
            types = {f.name: f.type for f in (target or (reader.schema if reader else pa.schema([])))}
            locate = csv_locator(exc, types, skip_empty_lines=skip_empty)
            raise located_error(fs, path, display_path(fs, path), "csv", exc, locate) from None
    if source.quotes % 2:  # odd: maybe a quoted value the file never closes (a file cut short)
        check_quotes_closed(fs, path, display_path(fs, path))


def _json_parse_schema(target: pa.Schema) -> pa.Schema:
    # Arrow's JSON parser cannot turn text into dates or times, so temporal columns are read as text and cast.
    def parsed(field: pa.Field) -> pa.Field:
        t = field.type
        if pa.types.is_temporal(t) and not pa.types.is_duration(t):
            return field.with_type(pa.string())
        return field

    return pa.schema([parsed(f) for f in target])


def _read_jsonl(spec: _ReadSpec) -> Iterator[pa.RecordBatch]:
    fs, path, columns, target = spec.fs, spec.path, spec.columns, spec.target
    if _is_empty(fs, path):
        return
    parse = pajson.ParseOptions(
        explicit_schema=_json_parse_schema(target) if target is not None else None,
        # Fields outside the schema are kept so ``conform`` can refuse them instead of silently dropping data.
        unexpected_field_behavior="ignore" if columns is not None and target is not None else "infer",
    )
    with fs.open_input_stream(path) as source:
        try:
            reader = pajson.open_json(
                source, read_options=pajson.ReadOptions(block_size=_BLOCK_SIZE), parse_options=parse
            )
            for batch in reader:
                # Arrow's JSON parser keeps bytes that are not UTF-8 in text columns; a full validation
                # refuses them here rather than in whatever reads the values later.
                batch = repair_null_lists(batch)
                batch.validate(full=True)
                yield batch
        except (*_CONTENT_ERRORS, UnicodeDecodeError) as exc:
            locate = functools.partial(locate_jsonl_problem, schema=target)
            raise located_error(fs, path, display_path(fs, path), "jsonl", exc, locate) from None


_READERS: dict[str, _Reader] = {"parquet": _read_parquet, "csv": _read_csv, "jsonl": _read_jsonl}


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
        if isinstance(exc, (*_CONTENT_ERRORS, ValueError, TypeError)):
            raise DatasetIOError(f"cannot write {self.fmt} file {self.label}: {type(exc).__name__}") from None
        if isinstance(exc, OSError):
            raise DatasetIOError(f"cannot write {self.label}: {_short(exc)}") from exc


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
        for chunk in _slices(_json_ready(batch), _JSONL_CHUNK_ROWS):
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

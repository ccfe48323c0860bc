"""Streaming readers of one dataset file (Parquet, CSV, JSON Lines) as Arrow record batches; format names.

The writers are in ``airflow_aisec.io.writers``.

Memory stays bounded by the batch size (and an 8 MiB parse block for CSV/JSON): no reader or writer here
holds a whole file. Error messages name the file and never quote its content, which may be PII; for a
malformed CSV or JSON Lines file they also give the line and the reason (``airflow_aisec.io.diagnose``).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
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
JSONL_CHUNK_ROWS = 8_192
# Arrow errors about content; their messages may quote the offending row, so they are not repeated.
CONTENT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
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
    except CONTENT_ERRORS:
        # The Arrow message quotes the value that failed, so only the column and types are named.
        raise DatasetIOError(
            f"{where}: column {field.name!r} cannot be converted from {array.type} to {field.type}"
        ) from None


def slices(batch: pa.RecordBatch, batch_size: int) -> Iterator[pa.RecordBatch]:
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
            yield from slices(batch, batch_size)


@contextlib.contextmanager
def _read_errors(where: str, fmt: str) -> Iterator[None]:
    """Turns whatever reading a file raises into ``DatasetIOError`` naming the file, never its content."""
    try:
        yield
    except DatasetIOError:
        raise
    except FileNotFoundError:
        raise DatasetIOError(f"{where} does not exist") from None
    except CONTENT_ERRORS:
        raise DatasetIOError(f"{where} is not a readable {fmt} file") from None
    except UnicodeDecodeError:
        # The error holds the undecodable bytes and what surrounds them: neither is repeated.
        raise DatasetIOError(f"{where} is not a readable {fmt} file (not UTF-8 text)") from None
    except KeyError as exc:
        raise DatasetIOError(f"{where}: {exc}") from None
    except OSError as exc:
        raise DatasetIOError(f"cannot read {where}: {short_error(exc)}") from exc
    except pa.ArrowException as exc:
        raise DatasetIOError(f"{where} is not a readable {fmt} file ({type(exc).__name__})") from None


def short_error(exc: BaseException) -> str:
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
        except (*CONTENT_ERRORS, UnicodeDecodeError) as exc:
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
        except (*CONTENT_ERRORS, UnicodeDecodeError) as exc:
            locate = functools.partial(locate_jsonl_problem, schema=target)
            raise located_error(fs, path, display_path(fs, path), "jsonl", exc, locate) from None


_READERS: dict[str, _Reader] = {"parquet": _read_parquet, "csv": _read_csv, "jsonl": _read_jsonl}

"""Where a CSV or JSON Lines file goes wrong: the line and the reason, never the value.

Arrow's readers refuse a bad file without saying where (their JSON row numbers restart at every 8 MiB
block), and their messages quote the offending row, which may be personal data. When a read fails, the
file is read again, line by line, to find the first line at fault; the reason given is built from counts,
column names and types only. This second pass runs only on the error path.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs

from airflow_aisec.exceptions import DatasetIOError

Problem = tuple[int, str]  # (1-based line, reason)

_CHUNK_BYTES: Final = 1 << 20
_TYPE_CHECK_ROWS: Final = 4_096
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
_CSV_TOKENS = re.compile(r'["\n,]')


class _Found(Exception):
    """Raised from inside a line iterator to stop parsing at a line that cannot be decoded."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def name(column: str) -> str:
    """A column name as messages show it: quoted when it reads as a name, else withheld (a damaged
    header, or a JSON key, may hold data)."""
    return repr(column) if _PLAIN_NAME.fullmatch(column) else "a column whose name is not shown"


def byte_lines(stream: Any) -> Iterator[bytes]:
    """The lines of a binary stream, each with its ``\\n`` (the last one may lack it)."""
    pending = b""
    while True:
        data = stream.read(_CHUNK_BYTES)
        if not data:
            break
        parts = (pending + bytes(data)).split(b"\n")
        pending = parts.pop()
        for part in parts:
            yield part + b"\n"
    if pending:
        yield pending


class _TextLines:
    """Decoded lines, counted; a line that is not UTF-8 stops the iteration with its number."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        for raw in byte_lines(self._stream):
            self.number += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                reason = f"bytes that are not UTF-8 text (byte {e.start + 1} of the line)"
                raise _Found(self.number, reason) from None
            yield text.removeprefix("\ufeff") if self.number == 1 else text


# --- CSV ----------------------------------------------------------------------------------------------------


def locate_csv_problem(
    stream: Any,
    types: Mapping[str, pa.DataType] | None = None,
    *,
    skip_empty_lines: bool = True,
    column: int | None = None,
) -> Problem | None:
    """The first line of a CSV file that is not UTF-8, has another number of fields than the header, or
    holds a value that does not parse as its column's type in ``types``; None when none is found.

    ``column`` (an index in the header) restricts the type check to the column Arrow named, which is much
    faster on a large file.
    """
    lines = _TextLines(stream)
    reader = csv.reader(lines)
    checker = _TypeChecker(types or {}, column)
    try:
        header = next(reader, None)
        if header is None:
            return None
        checker.bind(header)
        start = lines.number + 1
        for row in reader:
            end = lines.number
            if row or not skip_empty_lines:
                if len(row) != len(header):
                    return start, _field_count(len(row), len(header), start, end)
                found = checker.add(start, row)
                if found:
                    return found
            start = end + 1
        return checker.flush()
    except _Found as e:
        return e.line, e.reason
    except csv.Error:
        return lines.number, "malformed CSV quoting"


def _field_count(got: int, expected: int, start: int, end: int) -> str:
    reason = f"{got} field(s) where the header has {expected}"
    if end > start:  # a quoted value ran over several lines: the likely cause is a quote never closed
        reason += f" (this row runs over lines {start}-{end}: check for an unbalanced quote)"
    return reason


class _TypeChecker:
    """Parses buffered values of typed columns with Arrow's own CSV converter, to find the first that
    fails (same rules as the reader: only an empty field is null)."""

    def __init__(self, types: Mapping[str, pa.DataType], only: int | None = None) -> None:
        self._types = dict(types)
        self._only = only
        self._columns: list[tuple[int, str, pa.DataType]] = []
        self._rows: list[tuple[int, list[str]]] = []

    def bind(self, header: list[str]) -> None:
        self._columns = [
            (i, column, self._types[column])
            for i, column in enumerate(header)
            if column in self._types
            and not pa.types.is_string(self._types[column])
            and self._only in (None, i)
        ]

    def add(self, line: int, row: list[str]) -> Problem | None:
        if not self._columns:
            return None
        self._rows.append((line, row))
        return self.flush() if len(self._rows) >= _TYPE_CHECK_ROWS else None

    def flush(self) -> Problem | None:
        rows, self._rows = self._rows, []
        first: Problem | None = None
        for index, column, arrow_type in self._columns:
            bad = _first_unparsable([row[index] for _, row in rows], arrow_type)
            if bad is not None and (first is None or rows[bad][0] < first[0]):
                first = rows[bad][0], f"column {name(column)}: a value that does not parse as {arrow_type}"
        return first


def _parses(values: list[str], arrow_type: pa.DataType) -> bool:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["v", "k"])
    # A second column keeps an empty value an empty field (alone on its row it would be written as "").
    writer.writerows([value, "0"] for value in values)
    try:
        pacsv.read_csv(
            pa.py_buffer(text.getvalue().encode("utf-8")),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={"v": arrow_type}, null_values=[""], strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return True


def _first_unparsable(values: list[str], arrow_type: pa.DataType) -> int | None:
    """Index of the first value Arrow cannot parse as ``arrow_type`` (a bisection: few parses)."""
    if not values or _parses(values, arrow_type):
        return None
    low, high = 0, len(values)  # the first bad value is in values[low:high]
    while high - low > 1:
        middle = (low + high) // 2
        if _parses(values[low:middle], arrow_type):
            low = middle
        else:
            high = middle
    return low


def open_quote_at_end(lines: Iterable[str], delimiter: str = ",") -> int | None:
    """The line where a quoted field opens that the file never closes, or None.

    Arrow takes such a field, up to the end of the file, as one value: a file cut inside a quoted value
    would otherwise read as complete. The rules are Arrow's: a quote opens a field only at its start, and a
    quote right after a closing one is an escaped quote.
    """
    tokens = _CSV_TOKENS if delimiter == "," else re.compile(f'["\\n{re.escape(delimiter)}]')
    quoted, opened = False, 0
    for number, line in enumerate(lines, 1):
        field_begin, last_close = 0, -2
        for match in tokens.finditer(line):
            token, pos = match.group(), match.start()
            if quoted:
                if token == '"':  # nosec B105 # a CSV quote character, not a password
                    quoted, last_close = False, pos
            elif token == '"':  # nosec B105 # a CSV quote character, not a password
                if pos == field_begin:
                    quoted, opened = True, number
                elif pos == last_close + 1:
                    quoted = True
            else:
                field_begin, last_close = pos + 1, -2
    return opened if quoted else None


# --- reading with Arrow ------------------------------------------------------------------------------------


class QuoteCounter:
    """A read-only stream that counts the quote characters passing through it (cheap: one ``count``
    per block), so that a file ending inside a quoted value can be caught without a second read."""

    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream
        self.quotes = 0
        self.closed = False

    def read(self, nbytes: int = -1) -> bytes:
        data = self._stream.read(nbytes)
        self.quotes += data.count(b'"')
        return bytes(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def check_quotes_closed(fs: pafs.FileSystem, path: str, where: str) -> None:
    """Raise ``DatasetIOError`` when the file ends inside a quoted value, naming the line it opens on."""
    with fs.open_input_stream(path) as again:
        try:
            opened = open_quote_at_end(line.decode("utf-8") for line in byte_lines(again))
        except UnicodeDecodeError:
            return  # Arrow decoded every value it read; nothing more to say
    if opened is not None:
        raise DatasetIOError(
            f"{where}: line {opened}: a quoted value opens here and is never "
            "closed (the file may be cut short)"
        )


def located_error(
    fs: pafs.FileSystem,
    path: str,
    where: str,
    fmt: str,
    exc: BaseException,
    locate: Callable[[Any], Problem | None],
) -> DatasetIOError:
    """The error to raise for a file Arrow refused: the first line at fault and why, found by reading the
    file again, else the kind of problem Arrow saw (never its message, which quotes the data)."""
    try:
        with fs.open_input_stream(path) as again:
            found = locate(again)
    except (OSError, pa.ArrowException):
        found = None
    if found is not None:
        line, reason = found
        return DatasetIOError(f"{where}: line {line}: {reason}")
    return DatasetIOError(f"{where} is not a readable {fmt} file ({_arrow_hint(exc)})")


def csv_locator(
    exc: BaseException, types: Mapping[str, pa.DataType], *, skip_empty_lines: bool
) -> Callable[[Any], Problem | None]:
    """What finds the line of a CSV error; only the column Arrow names, when it names one, is type-checked."""
    hint = _CSV_COLUMN.search(str(exc))
    return functools.partial(
        locate_csv_problem,
        types=types,
        skip_empty_lines=skip_empty_lines,
        column=int(hint[1]) if hint else None,
    )


_CSV_COLUMN = re.compile(r"In CSV column #(\d+): CSV conversion error")
_ARROW_HINTS = (
    (re.compile(r"Expected (\d+) columns, got (\d+)"), "a row has {1} field(s) where the header has {0}"),
    (re.compile(r"CSV column #(\d+): CSV conversion error to ([^:]+):"), "column #{0}: a value is not {1}"),
    (re.compile(r"invalid UTF8"), "bytes that are not UTF-8 text"),
    (re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)"), "field {0} changes from {1} to {2}"),
)


def _arrow_hint(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    text = str(exc)
    for pattern, template in _ARROW_HINTS:
        match = pattern.search(text)
        if match:
            return template.format(*match.groups())
    return type(exc).__name__


# --- JSON Lines ---------------------------------------------------------------------------------------------


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return "an array"


def _arrow_kind(arrow_type: pa.DataType) -> str | None:
    """The JSON kind a value of ``arrow_type`` is written as (None: any kind is acceptable)."""
    t = arrow_type
    if pa.types.is_boolean(t):
        return "a boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "a number"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_temporal(t):
        return "a string"
    if pa.types.is_struct(t):
        return "an object"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "an array"
    return None


def locate_jsonl_problem(stream: Any, schema: pa.Schema | None = None) -> Problem | None:
    """The first line of a JSON Lines file that is not UTF-8, not a JSON object, or holds a field of
    another kind than ``schema`` says (or, without one, than the field had on an earlier line)."""
    expected: dict[str, tuple[str, str]] = {}  # field → (kind, why that kind)
    if schema is not None:
        for field in schema:
            kind = _arrow_kind(field.type)
            if kind:
                expected[field.name] = (kind, f"not {kind} as its type {field.type} requires")
    lines = _TextLines(stream)
    try:
        for text in lines:
            if not text.strip():
                continue
            found = _check_json_line(text, lines.number, expected)
            if found:
                return lines.number, found
    except _Found as e:
        return e.line, e.reason
    return None


def _check_json_line(text: str, number: int, expected: dict[str, tuple[str, str]]) -> str | None:
    try:
        record = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as e:
        # The decoder's message says what is wrong (never the text itself) and where in the line.
        return f"not valid JSON ({e.msg} at character {e.colno})"
    if not isinstance(record, dict):
        return f"{_json_kind(record)} where a JSON object is expected"
    for field, value in record.items():
        kind = _json_kind(value)
        if kind == "null":
            continue
        if field not in expected:
            expected[field] = (kind, f"but {kind} on line {number}")
            continue
        want, since = expected[field]
        if kind != want:
            return f"field {name(field)} is {kind}, {since}"
    return None

"""Check a catalog against the data it describes: every declared column is in every file, with its type.

A catalog can be valid and still not match the lake: a misspelt column (``emial``) is a column no masking,
retention or erasure ever touches, and a column the catalog does not list may be personal data no rule
covers. This reads only the schema of each file of each dataset (the Parquet footer; the header and the
first block of a CSV or JSON Lines file, as the readers infer it), never the whole data, and reports, by
dataset and file:

* ``location``: the dataset's location is missing or holds no file of its format (error);
* ``missing_column``: a catalog column (or nested path, ``payload.ip``) that is not in the file, with a
  "did you mean" when a column of the file has a near name (error);
* ``type_mismatch``: a column whose type in the file is not the ``type`` the catalog declares (error);
* ``unreadable``: a file that cannot be read (error), or whose footer is encrypted and cannot be read
  without its key (``encrypted``, a warning: it is not known to be wrong);
* ``unlisted_column``: a column of the file the catalog does not list (information).

Messages name datasets, files, columns and types, never a value.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from airflow_aisec.catalog.lake import dataset_files
from airflow_aisec.exceptions import AisecError, DatasetIOError, EmptyDatasetError
from airflow_aisec.io import FileInfo, Location, S3Options, read_file
from airflow_aisec.io.diagnose import locate_csv_problem, locate_jsonl_problem
from airflow_aisec.io.diagnose import name as shown_name
from airflow_aisec.io.nested import looks_nested, parse_path, resolve

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog, Column, Dataset
    from airflow_aisec.catalog.problems import Report
    from airflow_aisec.crypto.keysource import KeySource

Severity = Literal["error", "warning", "info"]
# Reads the schema of an encrypted Parquet file of a dataset (its footer key comes from the catalog's key).
EncryptedSchema = Callable[["Dataset", Location], pa.Schema]

_HEAD_BYTES = 1 << 20  # how much of a CSV or JSON Lines file is read to infer its column types


@dataclasses.dataclass(frozen=True)
class DataProblem:
    """One finding about one dataset (``file`` None: about the dataset as a whole)."""

    dataset: str
    kind: str
    message: str
    severity: Severity = "error"
    file: str | None = None
    column: str | None = None

    @property
    def path(self) -> tuple[str, ...]:
        """The catalog field the finding is about, to locate it in the catalog file."""
        if self.column is not None and self.kind != "unlisted_column":
            return ("datasets", self.dataset, "columns", self.column)
        if self.kind == "location":
            return ("datasets", self.dataset, "uri")
        return ("datasets", self.dataset)

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"dataset {self.dataset}: {where}{self.message}"

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form for ``--json`` output and XCom."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DataCheck:
    """Everything ``check_data`` found, and which files it read."""

    problems: list[DataProblem] = dataclasses.field(default_factory=list)
    files: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # dataset → files read

    def of(self, severity: Severity) -> list[DataProblem]:
        """The findings of one severity."""
        return [p for p in self.problems if p.severity == severity]

    def grouped(self, severity: Severity) -> list[tuple[DataProblem, str]]:
        """The findings of one severity, the same finding in several files of a dataset once: each with
        its text (``dataset D: F: message``, or ``dataset D: message (in N files: F and N-1 more)``)."""
        groups: dict[tuple[str, str, str | None, str], list[DataProblem]] = {}
        for p in self.of(severity):
            groups.setdefault((p.dataset, p.kind, p.column, p.message), []).append(p)
        found = []
        for (dataset, _kind, _column, message), items in groups.items():
            first = items[0]
            if len(items) == 1:
                found.append((first, str(first)))
            else:
                more = f"{first.file} and {len(items) - 1} more"
                found.append((first, f"dataset {dataset}: {message} (in {len(items)} files: {more})"))
        return found

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings and information allowed)."""
        return not self.of("error")

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form: files read per dataset and every finding."""
        return {
            "ok": self.ok,
            "files": self.files,
            "errors": [p.as_dict() for p in self.of("error")],
            "warnings": [p.as_dict() for p in self.of("warning")],
            "info": [p.as_dict() for p in self.of("info")],
        }


class _Encrypted(Exception):
    """A file whose schema cannot be read without a key the check was not given or could not use."""


def check_data(
    catalog: Catalog, s3: S3Options | None = None, *, encrypted_schema: EncryptedSchema | None = None
) -> DataCheck:
    """Compare every dataset's files with its catalog columns (see the module docstring).

    ``encrypted_schema`` reads the footer of an encrypted Parquet file (see ``encrypted_schemas``);
    without it such files are reported as not checkable.
    """
    result = DataCheck()
    for dataset in catalog.datasets.values():
        result.problems += check_dataset(dataset, s3, encrypted_schema, result.files)
    return result


def check_dataset(
    dataset: Dataset,
    s3: S3Options | None = None,
    encrypted_schema: EncryptedSchema | None = None,
    files_read: dict[str, list[str]] | None = None,
) -> list[DataProblem]:
    """The findings of one dataset, file by file."""
    found: list[DataProblem] = []
    read = files_read.setdefault(dataset.name, []) if files_read is not None else []
    try:
        files = dataset_files(dataset, s3)
    except EmptyDatasetError as e:
        return [_location_problem(dataset, s3, str(e))]
    except DatasetIOError as e:
        return [DataProblem(dataset.name, "location", f"cannot list {dataset.uri}: {e}")]
    if not files:
        found.append(DataProblem(dataset.name, "empty", "no file to check (may_be_empty)", "info"))
    for info in files:
        try:
            schema = file_schema(info, dataset, encrypted_schema)
        except _Encrypted as e:
            found.append(DataProblem(dataset.name, "encrypted", str(e), "warning", info.uri))
            continue
        except DatasetIOError as e:
            found.append(
                DataProblem(dataset.name, "unreadable", _without_prefix(str(e), info.uri), file=info.uri)
            )
            continue
        read.append(info.uri)
        if schema is not None:
            found += _compare(dataset, info, schema)
    return found


def _without_prefix(message: str, uri: str) -> str:
    # Read errors start with the file, which the finding names already.
    for prefix in (f"{uri}: ", f"{uri.removeprefix('file://')}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _location_problem(dataset: Dataset, s3: S3Options | None, message: str) -> DataProblem:
    """A location without files of the dataset's format; envelope-encrypted files are said to be there."""
    from airflow_aisec.crypto.datasets import envelope_files

    try:
        envelopes = envelope_files(Location.parse(dataset.uri, s3))
    except (AisecError, OSError):
        envelopes = []
    if envelopes:
        return DataProblem(
            dataset.name,
            "encrypted",
            f"{dataset.uri}: {len(envelopes)} envelope-encrypted file(s) (.aisec) and no {dataset.format} "
            "file: their columns cannot be checked without decrypting them",
            "warning",
        )
    return DataProblem(dataset.name, "location", message.removeprefix(f"dataset {dataset.name}: "))


# --- reading schemas --------------------------------------------------------------------------------------


def file_schema(
    info: FileInfo, dataset: Dataset, encrypted_schema: EncryptedSchema | None = None
) -> pa.Schema | None:
    """The schema of one file, from its footer or its first block; None for a file with no header at all."""
    fmt = dataset.format
    if fmt == "parquet":
        return _parquet_schema(info, dataset, encrypted_schema)
    if info.size == 0:
        return None
    try:
        with info.location.filesystem().open_input_stream(info.location.path) as stream:
            schema = _text_schema(stream, fmt)
        # Arrow infers binary for a CSV column with bytes that are not UTF-8; the reader refuses it.
        if not any(pa.types.is_binary(f.type) for f in schema):
            return schema
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        pass
    # The head does not parse (or a row is longer than it): the reader says where and why, or reads it.
    for batch in read_file(info, fmt):
        return batch.schema
    return None


def _text_schema(stream: pa.NativeFile, fmt: str) -> pa.Schema:
    read = pacsv.ReadOptions(block_size=_HEAD_BYTES)
    if fmt == "csv":
        convert = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        return pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert).schema
    return pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=_HEAD_BYTES)).schema


def _parquet_schema(info: FileInfo, dataset: Dataset, encrypted_schema: EncryptedSchema | None) -> pa.Schema:
    from airflow_aisec.crypto.parquet import is_encrypted_parquet

    fs, path = info.location.filesystem(), info.location.path
    if is_encrypted_parquet(fs, path):
        if encrypted_schema is None:
            raise _Encrypted(
                "its footer is encrypted (Parquet modular encryption): its columns cannot be checked "
                "without the dataset's key"
            )
        try:
            return encrypted_schema(dataset, info.location)
        except (AisecError, OSError) as e:
            raise _Encrypted(f"its footer is encrypted and cannot be read: {e}") from None
    try:
        with fs.open_input_file(path) as handle:
            return pq.ParquetFile(handle).schema_arrow
    except (pa.ArrowException, OSError):
        raise DatasetIOError(f"{info.uri} is not a readable parquet file") from None


def encrypted_schemas(keys: KeySource) -> EncryptedSchema:
    """Reads encrypted Parquet footers with the provider of the key the catalog names for each dataset."""
    from airflow_aisec.crypto.parquet import encrypted_schema

    def read(dataset: Dataset, location: Location) -> pa.Schema:
        if dataset.encryption is None:
            raise DatasetIOError("the catalog declares no encryption key for this dataset")
        return encrypted_schema(location, keys.provider(dataset.encryption.key))

    return read


# --- comparing --------------------------------------------------------------------------------------------


def _compare(dataset: Dataset, info: FileInfo, schema: pa.Schema) -> Iterator[DataProblem]:
    text = dataset.format != "parquet"
    show = shown_name if dataset.format == "csv" else repr  # a damaged CSV header may hold data
    listed: set[str] = set()
    for column, spec in dataset.columns.items():
        nested = looks_nested(column) and column not in schema.names
        listed.add(parse_path(column).column if nested else column)
        try:
            actual = _column_type(schema, column, nested, show)
        except _Missing as e:
            yield DataProblem(dataset.name, "missing_column", str(e), file=info.uri, column=column)
            continue
        mismatch = _type_mismatch(spec, actual, text)
        if mismatch:
            message = f"column {column}: {mismatch}{_where(info, dataset, column, spec)}"
            yield DataProblem(dataset.name, "type_mismatch", message, file=info.uri, column=column)
    for name in schema.names:
        if name not in listed:
            yield DataProblem(
                dataset.name, "unlisted_column",
                f"column {show(name)} ({schema.field(name).type}) is in the data but not in the catalog",
                "info", info.uri,
            )  # fmt: skip


class _Missing(Exception):
    """A catalog column or path the file does not have; the message says why, with a near name if any."""


def _column_type(schema: pa.Schema, column: str, nested: bool, show: Callable[[str], str]) -> pa.DataType:
    if nested:
        try:
            return resolve(schema, column)
        except AisecError as e:
            raise _Missing(f"column {column}: not in the data: {e}") from None
    if column in schema.names:
        return schema.field(column).type
    near = _near(column, schema.names)
    hint = f" (did you mean {show(near)}?)" if near else ""
    raise _Missing(f"column {column} is not in the data{hint}")


def _near(column: str, names: list[str]) -> str | None:
    by_case = [n for n in names if n.casefold() == column.casefold()]
    if by_case:
        return by_case[0]
    close = difflib.get_close_matches(column, names, n=1, cutoff=0.75)
    return close[0] if close else None


# Declared types: a family name (``int``, ``timestamp``), or an exact Arrow type (``timestamp[us, tz=UTC]``).
_FAMILIES: dict[str, Callable[[pa.DataType], bool]] = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "int": pa.types.is_integer,
    "float": pa.types.is_floating,
    "decimal": pa.types.is_decimal,
    "bool": pa.types.is_boolean,
    "date": pa.types.is_date,
    "timestamp": pa.types.is_timestamp,
    "time": pa.types.is_time,
    "binary": lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t),
    "struct": pa.types.is_struct,
    "list": lambda t: pa.types.is_list(t) or pa.types.is_large_list(t),
}
_ALIASES = {"str": "string", "text": "string", "integer": "int", "double": "float", "boolean": "bool"}
# In text files types are inferred from the values, so a declared type accepts what its values read as.
_TEXT_ACCEPTS = {"string": set(_FAMILIES), "float": {"int", "float"}, "timestamp": {"date", "timestamp"}}


def _family(t: pa.DataType) -> str | None:
    return next((name for name, test in _FAMILIES.items() if test(t)), None)


def _type_mismatch(spec: Column, actual: pa.DataType, text: bool) -> str | None:
    """Why the file's type does not match the declared one, or None."""
    if not spec.type or pa.types.is_null(actual):  # a column with only nulls so far has no type to compare
        return None
    declared = spec.type.strip()
    key = _ALIASES.get(declared.lower(), declared.lower())
    family = key if key in _FAMILIES else _family_of_exact(declared)
    if family is None:
        return None  # not a type this check knows; the catalog checks flag it if it must
    actual_family = _family(actual)
    if text:
        ok = actual_family in _TEXT_ACCEPTS.get(family, {family})
    elif key in _FAMILIES:
        ok = actual_family == family
    else:
        ok = str(actual) == declared or str(actual).split("[")[0] == declared
    return None if ok else f"declared {declared}, but the data holds {actual}"


def _family_of_exact(declared: str) -> str | None:
    for prefix, family in (("int", "int"), ("uint", "int"), ("float", "float"), ("date", "date"),
                           ("timestamp", "timestamp"), ("time", "time"), ("decimal", "decimal"),
                           ("large_string", "string"), ("large_list", "list"), ("list", "list"),
                           ("struct", "struct")):  # fmt: skip
        if declared.startswith(prefix):
            return family
    return None


def _where(info: FileInfo, dataset: Dataset, column: str, spec: Column) -> str:
    """`` (line N: why)``: the first line of a text file whose value does not read as the declared
    type, so the data can be fixed (or the catalog)."""
    canonical = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "date": pa.date32()}
    key = _ALIASES.get((spec.type or "").lower(), (spec.type or "").lower())
    if dataset.format == "parquet" or key not in canonical:
        return ""
    try:
        with info.location.filesystem().open_input_stream(info.location.path) as stream:
            if dataset.format == "csv":
                found = locate_csv_problem(stream, {column: canonical[key]})
            else:
                found = locate_jsonl_problem(stream, pa.schema([(column, canonical[key])]))
    except (OSError, pa.ArrowException):
        return ""
    if found is None:
        return ""
    line, reason = found
    return (
        f" (first at line {line})"
        if reason.startswith(f"column {shown_name(column)}:")
        else (f" (line {line}: {reason})")
    )


def add_to_report(report: Report, check: DataCheck) -> None:
    """Record the errors and warnings of ``check`` in a catalog report, at the catalog field each is about
    (so they carry the catalog's line), the same finding in several files once; information stays in
    ``check``."""
    for problem, text in check.grouped("error"):
        report.error(problem.path, text)
    for problem, text in check.grouped("warning"):
        report.warning(problem.path, text)

"""A dataset: a local folder or S3 prefix holding files of one format, read and written as Arrow batches.

Names starting with ``.`` or ``_`` (at any depth) are not part of a dataset: that skips our temporary files,
``_SUCCESS`` markers and ``_temporary`` folders of other writers, and hidden files.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from airflow_aisec.exceptions import DatasetIOError, EmptyDatasetError
from airflow_aisec.io.atomic import WriteResult, atomic_write
from airflow_aisec.io.formats import DEFAULT_BATCH_SIZE, extension, read_batches
from airflow_aisec.io.storage import Location, s3_error, s3_head, stat_etag


@dataclass(frozen=True)
class FileInfo:
    """One file of a dataset; ``etag`` identifies its current version (pass it to ``atomic_write``)."""

    location: Location
    size: int
    etag: str
    modified: dt.datetime

    @property
    def uri(self) -> str:
        """Display form of the file's location."""
        return self.location.uri


def is_hidden(relative_path: str) -> bool:
    """True when any component of a ``/``-separated path starts with ``.`` or ``_``."""
    return any(part.startswith((".", "_")) for part in relative_path.split("/") if part)


def _wanted(relative_path: str, ext: str) -> bool:
    return not is_hidden(relative_path) and relative_path.lower().endswith(ext)


def stat_file(location: Location) -> FileInfo | None:
    """Size, version and modification time of one file, or None when there is no such file."""
    if location.is_s3:
        return _stat_s3(location)
    try:
        st = os.stat(location.path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatasetIOError(f"cannot inspect {location.uri}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        return None
    modified = dt.datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=dt.UTC)
    return FileInfo(location, st.st_size, stat_etag(st), modified)


def _stat_s3(location: Location) -> FileInfo | None:
    head = s3_head(location) if location.key else None
    if head is None:
        return None
    return FileInfo(location, int(head["ContentLength"]), str(head["ETag"]), head["LastModified"])


def list_files(location: Location, fmt: str) -> list[FileInfo]:
    """Every file of format ``fmt`` below ``location`` (recursively), sorted by path.

    A location that is itself a file of that format gives a one-element list; a missing folder or an empty
    prefix gives an empty list.
    """
    ext = extension(fmt)
    if location.name.lower().endswith(ext):
        single = stat_file(location)
        if single is not None:
            return [single]
    files = _list_s3(location, ext) if location.is_s3 else _list_local(location, ext)
    return sorted(files, key=lambda info: info.location.path)


def list_dataset_files(
    location: Location, fmt: str, *, dataset: str, may_be_empty: bool = False
) -> list[FileInfo]:
    """``list_files`` of a named dataset, where nothing is an error: a wrong path or variable would
    otherwise read as a dataset without data (retention purging nothing, a request finding nothing).

    ``EmptyDatasetError`` names the dataset and the resolved location, and says whether it is missing or
    empty; ``may_be_empty`` (the catalog's ``may_be_empty: true``) allows an empty or missing location.
    """
    files = list_files(location, fmt)
    if files or may_be_empty:
        return files
    raise EmptyDatasetError(_empty_message(dataset, location, fmt))


def _empty_message(dataset: str, location: Location, fmt: str) -> str:
    """Why ``dataset`` has no files at ``location``: missing, or holding no ``fmt`` file."""
    if location.is_s3:
        why = f"no {extension(fmt)} object under this prefix"
    elif not os.path.exists(location.path):
        why = "the location does not exist"
    else:
        why = f"no {extension(fmt)} file in it"
    return (
        f"dataset {dataset}: {location.uri}: {why}; check the path and the variables it is made of, or "
        "declare the dataset `may_be_empty: true` if it may really hold nothing"
    )


def _raise_walk_error(exc: OSError) -> None:
    raise DatasetIOError(f"cannot list {exc.filename}: {exc.strerror}") from exc


def _list_local(root: Location, ext: str) -> list[FileInfo]:
    if not os.path.isdir(root.path):
        return []
    found: list[FileInfo] = []
    # Errors are raised, not skipped: a folder we cannot read must not look like a folder with no data.
    for dirpath, dirnames, filenames in os.walk(root.path, onerror=_raise_walk_error):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for filename in filenames:
            if not _wanted(filename, ext):
                continue
            info = stat_file(Location("file", os.path.join(dirpath, filename)))
            if info is not None:
                found.append(info)
    return found


def _list_s3(root: Location, ext: str) -> list[FileInfo]:
    from botocore.exceptions import BotoCoreError, ClientError

    prefix = f"{root.key}/" if root.key else ""
    found: list[FileInfo] = []
    try:
        pages = root.s3_client().get_paginator("list_objects_v2").paginate(Bucket=root.bucket, Prefix=prefix)
        for page in pages:
            found.extend(_s3_page(root, prefix, page, ext))
    except ClientError as exc:
        raise s3_error(exc, root.uri, "listed") from exc
    except BotoCoreError as exc:
        raise s3_error(exc, root.uri, "listed") from exc
    return found


def _s3_page(root: Location, prefix: str, page: dict[str, Any], ext: str) -> Iterator[FileInfo]:
    for obj in page.get("Contents", []):
        key = str(obj["Key"])
        if _wanted(key[len(prefix) :], ext):
            location = Location("s3", f"{root.bucket}/{key}", root.s3)
            yield FileInfo(location, int(obj["Size"]), str(obj["ETag"]), obj["LastModified"])


def read_file(
    location: Location | FileInfo,
    fmt: str,
    *,
    columns: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    schema: pa.Schema | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream one file as record batches of at most ``batch_size`` rows (see ``formats.read_batches``)."""
    where = location.location if isinstance(location, FileInfo) else location
    return read_batches(
        where.filesystem(), where.path, fmt, columns=columns, batch_size=batch_size, schema=schema
    )


def read_dataset(
    location: Location,
    fmt: str,
    *,
    columns: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    schema: pa.Schema | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream every file of the dataset in path order, one batch (at most ``batch_size`` rows) at a time."""
    for info in list_files(location, fmt):
        yield from read_file(info, fmt, columns=columns, batch_size=batch_size, schema=schema)


def write_dataset_file(
    dataset: Location,
    fmt: str,
    data: pa.Table | Iterable[pa.RecordBatch],
    schema: pa.Schema | None = None,
    *,
    name: str | None = None,
    overwrite: bool = False,
    verify: bool = True,
) -> WriteResult:
    """Write one new file into the dataset folder atomically and return its ``WriteResult``.

    ``name`` defaults to ``part-<uuid><ext>``; an existing file of that name is an error unless ``overwrite``.
    ``schema`` defaults to the table's schema and is required for an iterable of batches.
    """
    ext = extension(fmt)
    name = name or f"part-{uuid.uuid4().hex}{ext}"
    if is_hidden(name) or not name.lower().endswith(ext):
        raise DatasetIOError(
            f"file name {name!r} would not be part of the dataset: it must end with {ext} "
            "and no part may start with '.' or '_'"
        )
    if schema is None:
        if not isinstance(data, pa.Table):
            raise DatasetIOError(f"a schema is needed to write batches to {dataset.uri}")
        schema = data.schema
    batches = data.to_batches() if isinstance(data, pa.Table) else data
    with atomic_write(dataset.join(name), fmt, schema, overwrite=overwrite, verify=verify) as writer:
        for batch in batches:
            writer.write(batch)
    return writer.result


_FORMATS_BY_EXTENSION = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}


def guess_format(location: Location, fmt: str | None = None) -> str:
    """The format given, else the one of the location's extension, else the one of the files it holds."""
    if fmt:
        return fmt
    for ext, name in _FORMATS_BY_EXTENSION.items():
        if location.name.lower().endswith(ext):
            return name
    for name in ("parquet", "jsonl", "csv"):
        if list_files(location, name):
            return name
    raise DatasetIOError(f"{location.uri}: {_why_no_dataset_files(location)}")


def _why_no_dataset_files(location: Location) -> str:
    """Why a location holds no file to read: missing, empty, or holding files of other kinds (a wrong path
    needs another fix than a wrong format)."""
    fs = location.filesystem()
    try:
        kind = fs.get_file_info(location.path).type
        if kind == pafs.FileType.NotFound:
            return "no object under this prefix" if location.is_s3 else "no such file or folder"
        if kind == pafs.FileType.File:
            return "the format of this file cannot be told from its name: name it *.parquet, *.jsonl or *.csv"
        selector = pafs.FileSelector(location.path, recursive=True, allow_not_found=True)
        files = [f.path for f in fs.get_file_info(selector) if f.type == pafs.FileType.File]
    except (OSError, pa.ArrowException) as e:
        raise DatasetIOError(f"cannot list {location.uri}: {e.__class__.__name__}") from None
    what = "prefix" if location.is_s3 else "folder"
    visible = [path for path in files if not is_hidden(path[len(location.path) :])]
    if not files:
        return f"the {what} is empty"
    if not visible:
        return f"the {what} holds only hidden files (names starting with . or _ are not part of a dataset)"
    others = sorted({PurePosixPath(path).suffix or "(no extension)" for path in visible})
    return (
        f"a {what} with no parquet, jsonl or csv files (it holds {', '.join(others[:5])} files); dataset "
        "files are named *.parquet, *.jsonl or *.csv"
    )


def text_schema(location: Location) -> pa.Schema | None:
    """Every column of a CSV file as text (None for an empty file).

    CSV types are guessed by Arrow; reading text instead keeps identifiers such as ``00123`` intact, both
    when matching a subject and when a rewrite writes the rows back.
    """
    first = next(iter(read_file(location, "csv", batch_size=1)), None)
    if first is None:
        return None
    return pa.schema([pa.field(name, pa.string()) for name in first.schema.names])

"""Atomic, verified replacement of one dataset file: readers see the old file or the new one, never a mix.

Every destructive step (retention rewrites, erasure, masking, encryption) writes through ``atomic_write``:
the new version is written beside the target (local) or to a local spool file (S3), read back in full, hashed,
and only then swapped in. If anything fails, or the process is killed, the original is untouched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from airflow_aisec.exceptions import ConcurrentModificationError, DatasetIOError, VerificationError
from airflow_aisec.io.formats import check_format, read_batches
from airflow_aisec.io.staging import (
    BYTES_CONTENT_TYPE,
    CHUNK,
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    MIN_PART_SIZE,
    TEMP_MARKER,
    Publication,
    check_target,
    fsync_path,
    publish,
    staging_file,
)
from airflow_aisec.io.storage import Location, current_etag, s3_error, same_etag
from airflow_aisec.io.writers import BatchWriter, open_writer

__all__ = [
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "TEMP_MARKER",
    "AtomicWriter",
    "WriteResult",
    "atomic_write",
    "delete_file",
    "purge_versions",
    "put_small_file",
    "sha256_file",
    "verify_file",
]


@dataclass(frozen=True)
class WriteResult:
    """What was written: ``sha256`` is the hex digest of the exact bytes now stored (for lineage)."""

    uri: str
    rows: int
    bytes: int
    sha256: str
    etag: str | None = None


class AtomicWriter:
    """The writer yielded by ``atomic_write``; ``result`` is set once the new version is in place."""

    def __init__(self, target: Location, writer: BatchWriter) -> None:
        self.target = target
        self._writer = writer
        self._result: WriteResult | None = None

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._writer.rows

    @property
    def result(self) -> WriteResult:
        """The committed file; raises ``DatasetIOError`` before the ``with`` block has exited cleanly."""
        if self._result is None:
            raise DatasetIOError(f"{self.target.uri}: the new version is not committed yet")
        return self._result

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append a batch (or every batch of a table) to the new version."""
        self._writer.write(data)

    def committed(self, result: WriteResult) -> None:
        """Record that the new version is in place (by the writer of its format, once published)."""
        self._result = result


@contextlib.contextmanager
def atomic_write(
    target: Location,
    fmt: str,
    schema: pa.Schema,
    *,
    expected_etag: str | None = None,
    overwrite: bool = False,
    verify: bool = True,
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
    part_size: int = DEFAULT_PART_SIZE,
    new_file_mode: int | None = None,
) -> Iterator[AtomicWriter]:
    """Write a new version of the file ``target`` and swap it in atomically when the block exits cleanly.

    ``expected_etag`` (from ``FileInfo.etag``, taken *before* reading the file) replaces only that version;
    without it the file must not exist yet, unless ``overwrite`` allows an unconditional replace. A changed
    file raises ``ConcurrentModificationError``. With ``verify`` the new version is read back in full and
    must hold every row written (else ``VerificationError``). On S3, files above ``multipart_threshold``
    bytes are uploaded in parts of ``part_size`` bytes. ``new_file_mode`` (local files, e.g. 0o600 for
    plaintext) is the mode of a new file and the most a replaced file keeps of its permissions. After the
    block, ``writer.result`` is the ``WriteResult``.
    """
    publication = Publication(
        target, check_format(fmt), expected_etag, overwrite, multipart_threshold, part_size,
        new_file_mode=new_file_mode,
    )  # fmt: skip
    publication.check()
    with staging_file(target, fmt) as staging:
        sink = open_writer(pafs.LocalFileSystem(), staging, fmt, schema, label=target.uri)
        writer = AtomicWriter(target, sink)
        try:
            yield writer
            writer._writer.close()
        except BaseException:
            writer._writer.abort()
            raise
        if verify:
            verify_file(staging, fmt, schema, writer.rows, target.uri)
        published = publish(staging, publication)
        writer.committed(
            WriteResult(target.uri, writer.rows, published.size, published.sha256, published.etag)
        )


def verify_file(path: str, fmt: str, schema: pa.Schema, expected_rows: int, uri: str) -> None:
    """Read the local file ``path`` in full; raise ``VerificationError`` unless it parses with every row."""
    try:
        rows = sum(batch.num_rows for batch in read_batches(pafs.LocalFileSystem(), path, fmt, schema=schema))
    except DatasetIOError as exc:
        raise VerificationError(
            f"the new version of {uri} does not read back ({exc}); the original is untouched"
        ) from exc
    if rows != expected_rows:
        raise VerificationError(
            f"the new version of {uri} holds {rows} rows but {expected_rows} were written; "
            "the original is untouched"
        )


def sha256_file(location: Location) -> str:
    """Hex SHA-256 of the bytes of an existing file, streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with location.filesystem().open_input_stream(location.path) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise DatasetIOError(f"{location.uri} does not exist") from None
    except OSError as exc:
        if isinstance(exc, DatasetIOError):
            raise
        raise DatasetIOError(f"cannot read {location.uri}: {exc}") from exc
    return digest.hexdigest()


def delete_file(location: Location, expected_etag: str | None = None) -> bool:
    """Delete a file; True if it existed. A missing file is not an error (deleting is idempotent).

    With ``expected_etag`` only that version is deleted; if the file changed, ``ConcurrentModificationError``.
    """
    check_target(location)
    current = current_etag(location)
    if current is None:
        return False
    if expected_etag is not None and not same_etag(current, expected_etag):
        raise ConcurrentModificationError(f"{location.uri} changed since it was read; it was not deleted")
    if location.is_s3:
        _delete_s3(location, expected_etag)
    else:
        _delete_local(location)
    return True


def _delete_local(location: Location) -> None:
    try:
        os.unlink(location.path)
        fsync_path(os.path.dirname(location.path), os.O_RDONLY)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DatasetIOError(f"cannot delete {location.uri}: {exc.strerror}") from exc


def _delete_s3(location: Location, expected_etag: str | None) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    conditions = {"IfMatch": expected_etag} if expected_etag is not None else {}
    try:
        location.s3_client().delete_object(Bucket=location.bucket, Key=location.key, **conditions)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return
        raise s3_error(exc, location.uri, "deleted") from exc
    except BotoCoreError as exc:
        raise s3_error(exc, location.uri, "deleted") from exc


def purge_versions(location: Location, *, gone: bool = False) -> int:
    """Delete the noncurrent versions of an S3 object (and its delete markers); returns how many.

    With ``gone`` (the object was deleted) every version goes, so nothing of it remains. Versions are
    deleted before delete markers, so no old version ever becomes current on the way.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = location.s3_client()
    versions: list[str] = []
    markers: list[str] = []
    try:
        pages = client.get_paginator("list_object_versions").paginate(
            Bucket=location.bucket, Prefix=location.key
        )
        for page in pages:
            versions += [
                v["VersionId"]
                for v in page.get("Versions", [])
                if v["Key"] == location.key and (gone or not v["IsLatest"])
            ]
            markers += [m["VersionId"] for m in page.get("DeleteMarkers", []) if m["Key"] == location.key]
        for version in versions + markers:
            client.delete_object(Bucket=location.bucket, Key=location.key, VersionId=version)
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(exc, location.uri, "purged of its old versions") from exc
    return len(versions) + len(markers)


def put_small_file(location: Location, data: bytes, *, exclusive: bool = False) -> None:
    """Replace a small file the product owns (not a dataset file) with ``data``: locally owner-only, atomic
    and fsynced (``write_private``); on S3 one PUT, which S3 applies whole or not at all.

    With ``exclusive`` the file is only created: if it exists, ``ConcurrentModificationError`` and nothing
    changes (S3: a conditional PUT, ``If-None-Match: *``).
    """
    if not location.is_s3:
        from airflow_aisec.files import write_private

        try:
            write_private(Path(location.path), data, exclusive=exclusive)
        except FileExistsError:
            raise ConcurrentModificationError(f"{location.uri} already exists; it was not replaced") from None
        return
    if exclusive:
        _create_s3(location, data)
        return
    with location.filesystem().open_output_stream(location.path) as out:
        out.write(data)


def _create_s3(location: Location, data: bytes) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        location.s3_client().put_object(
            Bucket=location.bucket,
            Key=location.key,
            Body=data,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode("ascii"),
            ContentType=BYTES_CONTENT_TYPE,
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
            raise ConcurrentModificationError(f"{location.uri} already exists; it was not replaced") from None
        raise s3_error(exc, location.uri, "created") from exc
    except BotoCoreError as exc:
        raise s3_error(exc, location.uri, "created") from exc

"""Atomic, verified replacement of one dataset file: readers see the old file or the new one, never a mix.

Every destructive step (retention rewrites, erasure, masking, encryption) writes through ``atomic_write``:
the new version is written beside the target (local) or to a local spool file (S3), read back in full, hashed,
and only then swapped in. If anything fails, or the process is killed, the original is untouched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import os
import stat
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.fs as pafs

from airflow_aisec.exceptions import ConcurrentModificationError, DatasetIOError, VerificationError
from airflow_aisec.io.formats import BatchWriter, check_format, extension, open_writer, read_batches
from airflow_aisec.io.storage import Location, current_etag, local_etag, s3_error, same_etag

TEMP_MARKER: Final = ".aisec-tmp-"
DEFAULT_MULTIPART_THRESHOLD: Final = 512 << 20
DEFAULT_PART_SIZE: Final = 64 << 20
# S3 limits: every part but the last is at least 5 MiB, and an upload has at most 10 000 parts.
MIN_PART_SIZE: Final = 5 << 20
_MAX_PARTS = 10_000
_CHUNK = 1 << 20
_CONTENT_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "jsonl": "application/jsonl",
}
_BYTES_CONTENT_TYPE = "application/octet-stream"  # any other file (envelopes, decrypted files)


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


@dataclass(frozen=True)
class _Plan:
    target: Location
    fmt: str  # a dataset format, or any other name for arbitrary bytes (application/octet-stream)
    expected_etag: str | None
    overwrite: bool
    multipart_threshold: int
    part_size: int
    sse_kms_key_id: str | None = None  # S3: request SSE-KMS under this key
    # Local: the mode of a new file (else what the umask allows); a replaced file keeps no more of its own.
    new_file_mode: int | None = None


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
    plan = _Plan(
        target, check_format(fmt), expected_etag, overwrite, multipart_threshold, part_size,
        new_file_mode=new_file_mode,
    )  # fmt: skip
    _check_target(target)
    # Fail before doing any work when the file has already changed; the swap checks again.
    _check_version(plan)
    staging = _create_staging(target, fmt)
    try:
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
        digest, size = _digest_local(staging)
        etag = _publish_s3(staging, plan, digest, size) if target.is_s3 else _publish_local(staging, plan)
        writer._result = WriteResult(target.uri, writer.rows, size, digest.hexdigest(), etag)
    finally:
        # After a local swap the staging name no longer exists; in every other case it is garbage.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)


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


def _check_target(target: Location) -> None:
    if target.is_s3 and not target.key:
        raise DatasetIOError(f"{target.uri} names a bucket, not a file")
    if not target.is_s3 and os.path.isdir(target.path):
        raise DatasetIOError(f"{target.uri} is a directory, not a file")


def _check_version(plan: _Plan) -> None:
    if plan.overwrite and plan.expected_etag is None:
        return
    current = current_etag(plan.target)
    if plan.expected_etag is None:
        if current is not None:
            raise ConcurrentModificationError(f"{plan.target.uri} already exists; it was not replaced")
    elif not same_etag(current, plan.expected_etag):
        raise ConcurrentModificationError(f"{plan.target.uri} changed since it was read; it was not replaced")


def _create_staging(target: Location, fmt: str) -> str:
    """Create the empty local file that receives the new version; only its owner can read it while hidden."""
    if target.is_s3:
        suffix = extension(fmt) if fmt in _CONTENT_TYPES else None  # arbitrary bytes: no extension
        fd, path = tempfile.mkstemp(prefix=".aisec-spool-", suffix=suffix)
        os.close(fd)
        return path
    directory = os.path.dirname(target.path)
    try:
        os.makedirs(directory, exist_ok=True)
        # Same directory as the target, so the final rename never crosses filesystems.
        path = os.path.join(directory, f".{target.name}{TEMP_MARKER}{uuid.uuid4().hex}")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise DatasetIOError(f"cannot create a temporary file beside {target.uri}: {exc.strerror}") from exc
    return path


def _digest_local(path: str) -> tuple[Any, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest, size


def _fsync_path(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_local(staging: str, plan: _Plan) -> str | None:
    target = plan.target.path
    try:
        # The data must be on disk before the rename is, or a crash could leave an empty file under the name.
        _fsync_path(staging, os.O_RDWR)
        _keep_mode(staging, target, plan.new_file_mode)
        _check_version(plan)
        if plan.expected_etag is None and not plan.overwrite:
            _link_new(staging, plan.target)
        else:
            os.replace(staging, target)
        _fsync_path(os.path.dirname(target), os.O_RDONLY)
    except DatasetIOError:
        raise
    except OSError as exc:
        raise DatasetIOError(f"cannot replace {plan.target.uri}: {exc.strerror}") from exc
    return local_etag(target)


def _keep_mode(staging: str, target: str, new_file_mode: int | None = None) -> None:
    """Give the new version the permissions of the file it replaces (0600 stays 0600), else the default.

    With ``new_file_mode`` a replaced file keeps no permission beyond it: plaintext written over a
    world-readable file is owner-only all the same.
    """
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        if new_file_mode is not None:
            mode &= new_file_mode
    except FileNotFoundError:
        mode = new_file_mode if new_file_mode is not None else 0o666 & ~_current_umask()
    os.chmod(staging, mode)


def _current_umask() -> int:
    # Read, not set-and-restore: os.umask() would briefly change it for every thread of the process.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _link_new(staging: str, target: Location) -> None:
    """Create ``target`` from ``staging`` only if it does not exist (a hard link never overwrites)."""
    try:
        os.link(staging, target.path)
    except FileExistsError:
        raise ConcurrentModificationError(f"{target.uri} already exists; it was not replaced") from None
    except OSError:
        # Filesystems without hard links: the check in _check_version is the best available.
        os.replace(staging, target.path)


def _s3_conditions(plan: _Plan) -> dict[str, str]:
    if plan.expected_etag is not None:
        return {"IfMatch": plan.expected_etag}
    return {} if plan.overwrite else {"IfNoneMatch": "*"}


def _s3_upload_args(plan: _Plan) -> dict[str, str]:
    """The content type, and the SSE-KMS request if any, of a new object."""
    args = {"ContentType": _CONTENT_TYPES.get(plan.fmt, _BYTES_CONTENT_TYPE)}
    if plan.sse_kms_key_id is not None:
        args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=plan.sse_kms_key_id)
    return args


def _publish_s3(staging: str, plan: _Plan, digest: Any, size: int) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    target = plan.target
    conditions = _s3_conditions(plan)
    # S3 enforces the conditions itself; this check also covers S3-compatible stores that ignore them.
    _check_version(plan)
    try:
        if size > plan.multipart_threshold:
            return _upload_multipart(staging, plan, size, conditions)
        return _upload_single(staging, plan, digest, size, conditions)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404 and "IfMatch" in conditions:
            raise ConcurrentModificationError(f"{target.uri} was deleted since it was read") from exc
        raise s3_error(exc, target.uri, "replaced") from exc
    except BotoCoreError as exc:
        raise s3_error(exc, target.uri, "replaced") from exc


def _upload_single(staging: str, plan: _Plan, digest: Any, size: int, conditions: dict[str, str]) -> str:
    target = plan.target
    with open(staging, "rb") as body:
        response = target.s3_client().put_object(
            Bucket=target.bucket,
            Key=target.key,
            Body=body,
            ContentLength=size,
            ChecksumAlgorithm="SHA256",
            # S3 recomputes it and rejects the upload if the bytes changed on the way.
            ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"),
            **_s3_upload_args(plan),
            **conditions,
        )
    return str(response["ETag"])


def _upload_multipart(staging: str, plan: _Plan, size: int, conditions: dict[str, str]) -> str:
    target = plan.target
    client = target.s3_client()
    part_size = max(plan.part_size, MIN_PART_SIZE, -(-size // _MAX_PARTS))
    upload = client.create_multipart_upload(
        Bucket=target.bucket, Key=target.key, ChecksumAlgorithm="SHA256", **_s3_upload_args(plan)
    )
    upload_id = upload["UploadId"]
    try:
        parts = _upload_parts(client, target, upload_id, staging, part_size)
        # Nothing is visible until this call, which applies the same conditions as a single PUT.
        response = client.complete_multipart_upload(
            Bucket=target.bucket,
            Key=target.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            MpuObjectSize=size,
            **conditions,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(Bucket=target.bucket, Key=target.key, UploadId=upload_id)
        raise
    return str(response["ETag"])


def _upload_parts(
    client: Any, target: Location, upload_id: str, staging: str, part_size: int
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    with open(staging, "rb") as handle:
        for number in itertools.count(1):
            chunk = handle.read(part_size)
            if not chunk:
                break
            checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode("ascii")
            response = client.upload_part(
                Bucket=target.bucket,
                Key=target.key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
            parts.append({"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum})
    return parts


def sha256_file(location: Location) -> str:
    """Hex SHA-256 of the bytes of an existing file, streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with location.filesystem().open_input_stream(location.path) as stream:
            while chunk := stream.read(_CHUNK):
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
    _check_target(location)
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
        _fsync_path(os.path.dirname(location.path), os.O_RDONLY)
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
            ContentType=_BYTES_CONTENT_TYPE,
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
            raise ConcurrentModificationError(f"{location.uri} already exists; it was not replaced") from None
        raise s3_error(exc, location.uri, "created") from exc
    except BotoCoreError as exc:
        raise s3_error(exc, location.uri, "created") from exc

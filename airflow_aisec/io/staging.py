"""Staging and publishing of a new file version: the one way anything in the package replaces a file.

A new version is written to a staging file (beside the target, or a local spool file for S3), verified by
its writer, then published: flushed and renamed into place, or uploaded to S3 with a SHA-256 checksum and a
condition on the version it replaces. ``atomic_write`` and both encrypted formats (``crypto.parquet``,
``crypto.envelope``) write through these functions; a reader sees the old version or the new one, never a mix.
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
from typing import Any, Final, Protocol

from airflow_aisec.exceptions import ConcurrentModificationError, DatasetIOError
from airflow_aisec.io.formats import extension
from airflow_aisec.io.storage import Location, current_etag, local_etag, s3_error, same_etag

TEMP_MARKER: Final = ".aisec-tmp-"
DEFAULT_MULTIPART_THRESHOLD: Final = 512 << 20
DEFAULT_PART_SIZE: Final = 64 << 20
# S3 limits: every part but the last is at least 5 MiB, and an upload has at most 10 000 parts.
MIN_PART_SIZE: Final = 5 << 20
_MAX_PARTS = 10_000
CHUNK: Final = 1 << 20
_CONTENT_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "jsonl": "application/jsonl",
}
BYTES_CONTENT_TYPE: Final = "application/octet-stream"  # any other file (envelopes, decrypted files)


@dataclass(frozen=True)
class Publication:
    """Where a staged file goes and on which condition: the target, its format, the version it replaces.

    ``expected_etag`` replaces only that version; without it the target must not exist yet, unless
    ``overwrite`` allows an unconditional replace. ``fmt`` is a dataset format (its content type on S3) or
    any other name for arbitrary bytes.
    """

    target: Location
    fmt: str
    expected_etag: str | None = None
    overwrite: bool = False
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    part_size: int = DEFAULT_PART_SIZE
    sse_kms_key_id: str | None = None  # S3: request SSE-KMS under this key
    # Local: the mode of a new file (else what the umask allows); a replaced file keeps no more of its own.
    new_file_mode: int | None = None

    def check(self) -> None:
        """Fail early when the target is no file or has already changed; ``publish`` checks again."""
        check_target(self.target)
        _check_version(self)


@dataclass(frozen=True)
class Published:
    """The new version in place: its version token, the SHA-256 of its exact bytes, and its size."""

    etag: str | None
    sha256: str
    size: int


class Digest(Protocol):
    """A running SHA-256 (``hashlib`` or a hashing stream) of the bytes of a staged file."""

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


@contextlib.contextmanager
def staging_file(target: Location, fmt: str) -> Iterator[str]:
    """The path of a new empty staging file for ``target``, removed on exit unless published (renamed).

    It may hold unverified data (plaintext, during decryption), so it goes on every path, errors included.
    """
    path = create_staging(target, fmt)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def publish(
    staging: str, publication: Publication, digest: Digest | None = None, size: int | None = None
) -> Published:
    """Swap the verified local file ``staging`` in as ``publication.target``: rename it, or upload it to S3.

    Local files are flushed to disk and renamed, with a version check just before; S3 uploads are
    conditional on the version and carry a SHA-256 checksum S3 verifies. ``digest`` and ``size`` are those
    of the staged bytes when the writer already hashed them; else they are computed here. A changed target
    raises ``ConcurrentModificationError`` and nothing is replaced.
    """
    if digest is None or size is None:
        digest, size = _digest_local(staging)
    target = publication.target
    etag = (
        _publish_s3(staging, publication, digest, size)
        if target.is_s3
        else _publish_local(staging, publication)
    )
    return Published(etag, digest.hexdigest(), size)


def check_target(target: Location) -> None:
    """Raise ``DatasetIOError`` unless ``target`` names a file (not a bucket or a directory)."""
    if target.is_s3 and not target.key:
        raise DatasetIOError(f"{target.uri} names a bucket, not a file")
    if not target.is_s3 and os.path.isdir(target.path):
        raise DatasetIOError(f"{target.uri} is a directory, not a file")


def _check_version(plan: Publication) -> None:
    if plan.overwrite and plan.expected_etag is None:
        return
    current = current_etag(plan.target)
    if plan.expected_etag is None:
        if current is not None:
            raise ConcurrentModificationError(f"{plan.target.uri} already exists; it was not replaced")
    elif not same_etag(current, plan.expected_etag):
        raise ConcurrentModificationError(f"{plan.target.uri} changed since it was read; it was not replaced")


def create_staging(target: Location, fmt: str) -> str:
    """Create the empty local file that receives the new version of ``target``; only its owner can read it.

    Beside the target (so the final rename never crosses filesystems), or a local spool file for S3.
    """
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
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest, size


def fsync_path(path: str, flags: int) -> None:
    """Flush ``path`` (a file, or a directory with ``os.O_RDONLY``) to disk."""
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_local(staging: str, plan: Publication) -> str | None:
    target = plan.target.path
    try:
        # The data must be on disk before the rename is, or a crash could leave an empty file under the name.
        fsync_path(staging, os.O_RDWR)
        _keep_mode(staging, target, plan.new_file_mode)
        _check_version(plan)
        if plan.expected_etag is None and not plan.overwrite:
            _link_new(staging, plan.target)
        else:
            os.replace(staging, target)
        fsync_path(os.path.dirname(target), os.O_RDONLY)
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


def _s3_conditions(plan: Publication) -> dict[str, str]:
    if plan.expected_etag is not None:
        return {"IfMatch": plan.expected_etag}
    return {} if plan.overwrite else {"IfNoneMatch": "*"}


def _s3_upload_args(plan: Publication) -> dict[str, str]:
    """The content type, and the SSE-KMS request if any, of a new object."""
    args = {"ContentType": _CONTENT_TYPES.get(plan.fmt, BYTES_CONTENT_TYPE)}
    if plan.sse_kms_key_id is not None:
        args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=plan.sse_kms_key_id)
    return args


def _publish_s3(staging: str, plan: Publication, digest: Any, size: int) -> str:
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


def _upload_single(
    staging: str, plan: Publication, digest: Any, size: int, conditions: dict[str, str]
) -> str:
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


def _upload_multipart(staging: str, plan: Publication, size: int, conditions: dict[str, str]) -> str:
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

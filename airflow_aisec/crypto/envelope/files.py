"""Envelope encryption of files (local or S3): atomic, verified before anything is published."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_aisec.crypto.envelope.format import (
    DEFAULT_CHUNK_SIZE,
    EnvelopeHeader,
    Readable,
    Writable,
    read_into,
)
from airflow_aisec.crypto.envelope.streams import (
    ProviderResolver,
    decrypt_stream,
    encrypt_stream,
    rewrap_stream,
)
from airflow_aisec.crypto.providers import KeyProvider
from airflow_aisec.exceptions import VerificationError

if TYPE_CHECKING:
    from airflow_aisec.io.staging import Publication
    from airflow_aisec.io.storage import Location

# airflow_aisec.io (and with it pyarrow, ~100 MB resident) is imported only by the file-level functions, so
# a process that only streams (a task decrypting a model file, the benchmark) needs nothing but cryptography.

_BYTES = "bytes"  # the "format" of arbitrary files to io.staging: application/octet-stream, no extension


@dataclass(frozen=True)
class EnvelopeResult:
    """A file written by ``encrypt_file``, ``decrypt_file`` or ``rewrap_header``.

    ``bytes`` and ``sha256`` (hex) describe the exact bytes now stored at ``uri``; ``plaintext_bytes`` is the
    size of the plaintext; ``header`` is the envelope's header (for decryption: the source's).
    """

    uri: str
    bytes: int
    sha256: str
    plaintext_bytes: int
    header: EnvelopeHeader
    etag: str | None = None


def encrypt_file(
    source: Location,
    target: Location,
    provider: KeyProvider,
    key_name: str,
    context: Mapping[str, str],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    expected_etag: str | None = None,
    sse_kms_key_id: str | None = None,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> EnvelopeResult:
    """Encrypt the file ``source`` into the envelope file ``target``, atomically and verified.

    The envelope is written beside the target (local) or to a local spool file (S3), then read back and
    decrypted with ``provider`` (every tag, and the plaintext's SHA-256 against the source's) before it is
    renamed into place or uploaded. ``target`` must not exist, unless ``overwrite`` or ``expected_etag``
    (replace only that version; else ``ConcurrentModificationError``). S3 uploads carry a SHA-256 checksum
    S3 verifies and, with ``sse_kms_key_id``, request SSE-KMS under that key; files above
    ``multipart_threshold`` bytes go up in parts of ``part_size`` (defaults: those of ``atomic_write``).
    On any failure the target is untouched.
    """
    from airflow_aisec.io.staging import staging_file
    from airflow_aisec.io.storage import open_input

    plan = _plan(target, expected_etag, overwrite, sse_kms_key_id, multipart_threshold, part_size)
    plan.check()
    with staging_file(target, _BYTES) as staging:
        with open_input(source) as opened, _open_staged(staging) as out:
            plain = _HashingReader(opened.stream)
            header = encrypt_stream(plain, out, provider, key_name, context, chunk_size, name=source.uri)
        written, check = _verify_envelope(staging, provider, f"the encrypted copy of {source.uri}")
        if (check.count, check.hexdigest()) != (plain.count, plain.hexdigest()):
            raise VerificationError(
                f"the encrypted copy of {source.uri} does not decrypt to the source; "
                f"{target.uri} is untouched"
            )
        etag = _publish(staging, plan, written)
    return EnvelopeResult(target.uri, written.count, written.hexdigest(), plain.count, header, etag)


def decrypt_file(
    source: Location,
    target: Location,
    provider: KeyProvider | ProviderResolver,
    *,
    context: Mapping[str, str] | None = None,
    overwrite: bool = False,
    expected_etag: str | None = None,
    sse_kms_key_id: str | None = None,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> EnvelopeResult:
    """Decrypt the envelope file ``source`` into ``target``; plaintext appears there only once fully verified.

    The plaintext goes to an owner-only temporary file beside the target (local) or a local spool file (S3),
    and is renamed or uploaded only after every chunk, the final one included, has been authenticated. A new
    local file is created owner-only (0600); a replaced one keeps no permission beyond those. ``context``,
    ``overwrite``, ``expected_etag`` and the S3 options are as in ``decrypt_stream`` and ``encrypt_file``.
    """
    from airflow_aisec.io.staging import staging_file
    from airflow_aisec.io.storage import open_input

    # A new local file is owner-only: it holds plaintext.
    plan = _plan(target, expected_etag, overwrite, sse_kms_key_id, multipart_threshold, part_size, 0o600)
    plan.check()
    with staging_file(target, _BYTES) as staging:
        with open_input(source) as opened, _open_staged(staging) as out:
            written = _HashingWriter(out)
            header = decrypt_stream(opened.stream, written, provider, context=context, name=source.uri)
        etag = _publish(staging, plan, written)
    return EnvelopeResult(target.uri, written.count, written.hexdigest(), written.count, header, etag)


def rewrap_header(
    location: Location,
    provider: KeyProvider | ProviderResolver,
    new_key_name: str | None = None,
    *,
    sse_kms_key_id: str | None = None,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> EnvelopeResult:
    """Re-wrap the data key of the envelope file ``location`` under the current version of its master key.

    With ``new_key_name``, under that key instead. Only the header changes; the body is copied byte for byte,
    so rotation costs one read and one write, not a re-encryption. The new file is verified (the new header
    unwraps through ``provider`` and every chunk authenticates) and replaces the original only if that has
    not changed since it was read (else ``ConcurrentModificationError``). After a rewrap the old master key
    version can be destroyed. On S3 the object keeps its SSE-KMS key unless ``sse_kms_key_id`` is given.
    """
    from airflow_aisec.io.staging import check_target, staging_file
    from airflow_aisec.io.storage import open_input

    check_target(location)
    label = location.uri
    with staging_file(location, _BYTES) as staging:
        with open_input(location) as opened, _open_staged(staging) as out:
            new = rewrap_stream(opened.stream, out, provider, new_key_name, name=label)
        written, check = _verify_envelope(staging, provider, f"the re-wrapped copy of {label}")
        plan = _plan(
            location,
            opened.etag,
            True,
            sse_kms_key_id or opened.sse_kms_key_id,
            multipart_threshold,
            part_size,
        )
        etag = _publish(staging, plan, written)
    return EnvelopeResult(label, written.count, written.hexdigest(), check.count, new, etag)


class _HashingReader:
    """Passes reads through, counting and hashing the bytes."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        self.count += len(data)
        return data

    def readinto(self, buffer: memoryview, /) -> int:
        count = read_into(self._raw, buffer)
        self._digest.update(buffer[:count])
        self.count += count
        return count

    def digest(self) -> bytes:
        return self._digest.digest()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _HashingWriter:
    """Counts and hashes the bytes written, passing them on to ``raw`` (if any)."""

    def __init__(self, raw: Writable | None = None) -> None:
        self._raw = raw
        self._digest = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes, /) -> int:
        if self._raw is not None:
            self._raw.write(data)
        self._digest.update(data)
        self.count += len(data)
        return len(data)

    def digest(self) -> bytes:
        return self._digest.digest()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _verify_envelope(
    path: str, provider: KeyProvider | ProviderResolver, name: str
) -> tuple[_HashingReader, _HashingWriter]:
    """Decrypt the local envelope ``path`` in full, discarding the plaintext; return both digests."""
    with open(path, "rb") as handle:
        envelope = _HashingReader(handle)
        plaintext = _HashingWriter()
        decrypt_stream(envelope, plaintext, provider, name=name)
    return envelope, plaintext


# --- sources, staging and publishing ---------------------------------------------------------------------


def _plan(
    target: Location,
    expected_etag: str | None,
    overwrite: bool,
    sse_kms_key_id: str | None,
    multipart_threshold: int | None,
    part_size: int | None,
    new_file_mode: int | None = None,
) -> Publication:
    """Where and on which condition a staged file is published; S3 multipart defaults: ``atomic_write``'s."""
    from airflow_aisec.io.staging import DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, Publication

    threshold = DEFAULT_MULTIPART_THRESHOLD if multipart_threshold is None else multipart_threshold
    size = DEFAULT_PART_SIZE if part_size is None else part_size
    return Publication(
        target, _BYTES, expected_etag, overwrite, threshold, size, sse_kms_key_id, new_file_mode
    )


def _open_staged(path: str) -> io.BufferedWriter:
    """Open the staging file for writing, refusing a symlink planted under its name."""
    return open(path, "wb", opener=lambda name, flags: os.open(name, flags | os.O_NOFOLLOW))


def _publish(staging: str, plan: Publication, written: _HashingReader | _HashingWriter) -> str | None:
    """Move the verified staging file to the target (rename or upload); return the new version token."""
    from airflow_aisec.io.staging import publish

    return publish(staging, plan, written, written.count).etag

"""An in-place envelope encryption: the envelope ``<name>.aisec`` replaces its plaintext file.

For each plaintext file:

1. The plaintext is read once to take its SHA-256 together with the version token of exactly the bytes read
   (``open_input``: a local file's inode, mtime and size; the ETag of the S3 object version streamed).
2. An envelope already beside it (a run killed after writing it) is recognised when it decrypts, under the
   master key asked for and with the file's own context, to exactly that SHA-256; otherwise the envelope is
   written (``encrypt_file``: a temporary place, verified, then renamed or uploaded, replacing only the
   envelope version inspected) and checked the same way.
3. The plaintext is deleted only against the version read in step 1 (``delete_file`` with that token; on S3
   also a conditional ``DeleteObject``). A plaintext changed since is kept, and so is its envelope:
   ``EncryptionError`` names the file and nothing is lost.
4. With ``purge_versions`` (the catalog's ``retention.purge_versions``, for S3 versioned buckets) every
   version of the deleted plaintext object goes too, or the old versions would keep the plaintext.

A run killed at any point leaves the plaintext (with or without a verified envelope beside it) or only the
envelope; a rerun finishes the file without encrypting it twice. The plaintext is never deleted unless a
verified envelope of exactly the version deleted is in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_aisec.crypto.envelope import Readable, decrypt_stream, encrypt_file
from airflow_aisec.exceptions import (
    ConcurrentModificationError,
    EncryptionError,
    KeyringError,
    VerificationError,
)
from airflow_aisec.io import delete_file, purge_versions, stat_file
from airflow_aisec.io.storage import open_input

if TYPE_CHECKING:
    from airflow_aisec.crypto.providers import KeyProvider
    from airflow_aisec.io import Location

_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Replaced:
    """A plaintext file replaced by its envelope: the digests of both, whether an envelope already there was
    recognised (``reused``), and how many old S3 versions of the plaintext were purged."""

    source_sha256: str
    target_sha256: str
    reused: bool
    versions_purged: int = 0


class _Hashing:
    """A byte sink that hashes what is written to it, or a reader of ``raw`` that hashes what it reads."""

    def __init__(self, raw: Readable | None = None) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def write(self, data: bytes, /) -> int:
        self.digest.update(data)
        return len(data)

    def read(self, size: int = -1, /) -> bytes:
        if self._raw is None:
            raise ValueError("a hashing sink is not readable")
        data = self._raw.read(size)
        self.digest.update(data)
        return data


def read_version(location: Location) -> tuple[str, str | None]:
    """The SHA-256 of a file and the version token of exactly the bytes hashed."""
    with open_input(location) as opened:
        digest = hashlib.sha256()
        while chunk := opened.stream.read(_CHUNK):
            digest.update(chunk)
        return digest.hexdigest(), opened.etag


def envelope_of(
    envelope: Location, provider: KeyProvider, key_name: str, context: Mapping[str, str], sha256: str
) -> str | None:
    """The SHA-256 of ``envelope`` when it decrypts in full, under ``key_name`` and with ``context``, to the
    plaintext of digest ``sha256``; None otherwise (missing, another key, context or plaintext, damaged)."""
    plain = _Hashing()
    try:
        with open_input(envelope) as opened:
            raw = _Hashing(opened.stream)
            header = decrypt_stream(raw, plain, provider, context=context, name=envelope.uri)
    except (EncryptionError, KeyringError, OSError):  # DatasetIOError is an OSError: missing, unreadable
        return None
    if header.key_name != key_name or plain.digest.hexdigest() != sha256:
        return None
    return raw.digest.hexdigest()


def replace_with_envelope(
    source: Location,
    envelope: Location,
    provider: KeyProvider,
    key_name: str,
    context: Mapping[str, str],
    *,
    sse_kms_key_id: str | None = None,
    purge: bool = False,
    version: tuple[str, str | None] | None = None,
) -> Replaced:
    """Encrypt ``source`` into ``envelope`` and delete ``source`` (see the module docstring); ``version``:
    step 1 already done by the caller (``read_version``)."""
    before, version_token = version if version is not None else read_version(source)
    digest = envelope_of(envelope, provider, key_name, context, before)
    reused = digest is not None
    if digest is None:
        existing = stat_file(
            envelope
        )  # another version's envelope, or a damaged one: replaced, that one only
        encrypt_file(
            source, envelope, provider, key_name, context, sse_kms_key_id=sse_kms_key_id,
            expected_etag=existing.etag if existing is not None else None,
        )  # fmt: skip
        digest = envelope_of(envelope, provider, key_name, context, before)
        if digest is None:
            raise VerificationError(
                f"{envelope.uri} does not decrypt to {source.uri} as it was read (sha256 {before[:12]}…): "
                f"{source.uri} changed while it was encrypted; it was not deleted, encrypt again"
            )
    try:
        delete_file(source, expected_etag=version_token)
    except ConcurrentModificationError:
        raise EncryptionError(
            f"{source.uri} changed after it was encrypted into {envelope.uri}; it was not deleted and both "
            "files are kept: encrypt again to replace the envelope with the new version"
        ) from None
    purged = purge_versions(source, gone=True) if purge and source.is_s3 else 0
    return Replaced(before, digest, reused, purged)

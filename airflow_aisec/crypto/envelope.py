"""Envelope encryption of any file (CSV, JSON Lines, Parquet, model files, ...): streamed and authenticated.

Each file gets a fresh 256-bit data key from a ``KeyProvider``; only its wrapped form is stored, in the
header. The body is AES-256-GCM in chunks (1 MiB of plaintext by default), so memory stays constant whatever
the size. Each chunk's nonce holds its index and a final-chunk flag (the STREAM construction of Hoang,
Reyhanitabar, Rogaway and Vizár, as in Tink's and age's streaming AEADs), so truncation, reordering, chunks
moved between positions or files, and appended bytes all fail authentication.

File format, version 1 (integers big-endian; ``docs/envelope-format.md`` is the full specification, with test
vectors)::

    offset  size  field
    0       8     magic b"AISECENV"
    8       1     format version: 1
    9       4     N, the length of the metadata (at most 1 MiB)
    13      N     metadata: ASCII JSON object, keys sorted, no whitespace, exactly these keys:
                    chunk_size    plaintext bytes per chunk (1 B .. 64 MiB)
                    context       the encryption context, {str: str}
                    key_name      the master key that wrapped the data key
                    key_version   its version when it wrapped it
                    nonce_prefix  7 random bytes, base64
                    provider      the key provider's kind ("local", ...)
                    salt          16 random bytes, base64 (identifies the file)
                    wrapped_key   the wrapped data key, base64 (opaque to this module)
    13+N    32    header tag: HMAC-SHA256(header key, bytes 0 .. 13+N)
    45+N    ...   chunks: ciphertext || 16-byte GCM tag; every chunk holds chunk_size plaintext bytes except
                  the final one (0 .. chunk_size bytes, so an empty file is one empty final chunk)

    payload key || header key = HKDF-SHA256(data key, salt=salt, info=b"AISECENV v1 keys"), 32 bytes each
    nonce of chunk i          = nonce_prefix (7) || i (uint32) || 0x01 for the final chunk, else 0x00
    associated data of chunks = SHA-256(magic || version || chunk_size (uint32) || salt || nonce_prefix
                                        || canonical JSON of the context)

The chunks bind only the parts of the header that never change, and the header tag authenticates all of it
(including the key name, version and wrapped key). So ``rewrap_header`` can re-wrap the data key under a new
master key version by rewriting only the header and its tag: the body is copied byte for byte.

``encrypt_file``, ``decrypt_file`` and ``rewrap_header`` never leave a partial or unverified file at the
target: they write beside it (local) or to a local spool file (S3), verify every tag, and only then rename or
upload. Plaintext keys live only in memory (Python cannot wipe ``bytes``; the process must be trusted).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import itertools
import json
import os
import secrets
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_aisec.crypto.providers import DATA_KEY_BYTES, KeyProvider, context_bytes
from airflow_aisec.exceptions import (
    EncryptionError,
    VerificationError,
)

if TYPE_CHECKING:
    from airflow_aisec.io.staging import Publication
    from airflow_aisec.io.storage import Location

# airflow_aisec.io (and with it pyarrow, ~100 MB resident) is imported only by the file-level functions, so
# a process that only streams (a task decrypting a model file, the benchmark) needs nothing but cryptography.

MAGIC: Final = b"AISECENV"
FORMAT_VERSION: Final = 1
DEFAULT_CHUNK_SIZE: Final = 1 << 20
MAX_CHUNK_SIZE: Final = 64 << 20  # bounds the memory a (possibly hostile) header can make a reader allocate
MAX_METADATA: Final = 1 << 20
TAG_SIZE: Final = 16
HEADER_TAG_SIZE: Final = 32
SALT_SIZE: Final = 16
NONCE_PREFIX_SIZE: Final = 7
MAX_CHUNKS: Final = 1 << 32  # the chunk index is a uint32 in the nonce
_PREFIX = struct.Struct(">BI")  # format version, metadata length
_COUNTER = struct.Struct(">IB")  # chunk index, final flag
_IMMUTABLE = struct.Struct(">BI")  # format version, chunk size: in the chunks' associated data
_HKDF_INFO = b"AISECENV v1 keys"
_META_FIELDS: dict[str, type] = {
    "chunk_size": int,
    "context": dict,
    "key_name": str,
    "key_version": int,
    "nonce_prefix": str,
    "provider": str,
    "salt": str,
    "wrapped_key": str,
}
_COPY = 1 << 20
_BYTES = "bytes"  # the "format" of arbitrary files to io.staging: application/octet-stream, no extension
_EMPTY = memoryview(b"")

ProviderResolver = Callable[[str], KeyProvider]
"""Returns the key provider of a kind (``"local"``, ...) named in an envelope header."""


class Readable(Protocol):
    """A binary stream to read from (a file, ``io.BytesIO``, a boto3 ``StreamingBody``, ...)."""

    def read(self, size: int = ..., /) -> bytes: ...


class Writable(Protocol):
    """A binary stream to write to."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class EnvelopeHeader:
    """The header of an envelope file; ``size`` is its length in bytes, header tag included."""

    version: int
    chunk_size: int
    provider: str
    key_name: str
    key_version: int
    context: Mapping[str, str] = field(hash=False)
    wrapped_key: bytes = field(repr=False)
    salt: bytes = field(repr=False)
    nonce_prefix: bytes = field(repr=False)
    size: int = 0

    def metadata(self) -> bytes:
        """The canonical JSON metadata (sorted keys, no whitespace, ASCII)."""
        meta = {
            "chunk_size": self.chunk_size,
            "context": dict(self.context),
            "key_name": self.key_name,
            "key_version": self.key_version,
            "nonce_prefix": _b64(self.nonce_prefix),
            "provider": self.provider,
            "salt": _b64(self.salt),
            "wrapped_key": _b64(self.wrapped_key),
        }
        return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode("ascii")

    def chunk_aad(self) -> bytes:
        """The associated data of every chunk: a digest of the parts of the header a re-wrap keeps."""
        digest = hashlib.sha256(MAGIC + _IMMUTABLE.pack(self.version, self.chunk_size))
        digest.update(self.salt + self.nonce_prefix + context_bytes(self.context))
        return digest.digest()

    def ciphertext_size(self, plaintext_size: int) -> int:
        """Bytes of the envelope file holding ``plaintext_size`` bytes under this header."""
        chunks = max(1, -(-plaintext_size // self.chunk_size))
        return self.size + plaintext_size + chunks * TAG_SIZE


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


# --- streams ------------------------------------------------------------------------------------------


def encrypt_stream(
    src: Readable,
    dst: Writable,
    provider: KeyProvider,
    key_name: str,
    context: Mapping[str, str],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    name: str = "<stream>",
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> EnvelopeHeader:
    """Encrypt everything ``src`` holds into ``dst`` under a fresh data key wrapped by ``key_name``.

    ``context`` (e.g. ``{"dataset": "orders"}``) is bound to the wrapped key and to every chunk; decryption
    needs the same. ``name`` labels error messages. Raises ``EncryptionError`` when the provider cannot make
    a data key; errors of ``src`` or ``dst`` propagate, and ``dst`` then holds an incomplete envelope that
    never decrypts (it has no final chunk).

    ``random_bytes`` draws the salt and the nonce prefix. It exists so the published test vectors
    (docs/envelope-format.md) can be reproduced byte for byte; anything but the default reuses nonces.
    """
    checked = _check_context(context, name)
    _check_chunk_size(chunk_size, name)
    try:
        data_key = provider.generate_data_key(key_name, checked)
    except Exception as exc:
        raise EncryptionError(
            f"{name}: cannot create a data key with {provider.kind}:{key_name}: {_describe(exc)}"
        ) from exc
    header = EnvelopeHeader(
        version=FORMAT_VERSION,
        chunk_size=chunk_size,
        provider=data_key.provider,
        key_name=data_key.key_name,
        key_version=data_key.key_version,
        context=checked,
        wrapped_key=data_key.wrapped,
        salt=_random(random_bytes, SALT_SIZE, name),
        nonce_prefix=_random(random_bytes, NONCE_PREFIX_SIZE, name),
    )
    keys = _FileKeys.derive(data_key.plaintext, header)
    encoded = keys.encode_header(header)
    dst.write(encoded)
    _seal_chunks(src, dst, keys, chunk_size, name)
    return replace(header, size=len(encoded))


def _random(random_bytes: Callable[[int], bytes], size: int, name: str) -> bytes:
    value = random_bytes(size)
    if not isinstance(value, bytes) or len(value) != size:
        raise EncryptionError(f"{name}: the randomness source did not return {size} bytes")
    return value


def decrypt_stream(
    src: Readable,
    dst: Writable,
    provider: KeyProvider | ProviderResolver,
    *,
    context: Mapping[str, str] | None = None,
    name: str = "<stream>",
) -> EnvelopeHeader:
    """Decrypt the envelope ``src`` into ``dst``; return its (authenticated) header.

    ``provider`` is the key provider, or a function returning the provider of the kind the header names.
    With ``context``, the file's encryption context must equal it. Raises ``EncryptionError`` on a wrong key
    or context and on any tampering, truncation, reordering or appended data. Chunks are written as they are
    authenticated, so after an error ``dst`` holds an unauthenticated prefix: discard it (``decrypt_file``
    does that for you and never exposes it).
    """
    header, keys = _open_header(src, provider, context, name)
    _open_chunks(src, dst, keys, header.chunk_size, name)
    return header


def read_header(src: Readable, *, name: str = "<stream>") -> EnvelopeHeader:
    """Parse the header at the start of ``src`` WITHOUT authenticating it (that needs the data key).

    Good for inspection (which key and version, which context); trust it only after a decryption succeeds.
    """
    header, _prefix, _tag = _read_header(src, name)
    return header


# --- files --------------------------------------------------------------------------------------------


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
            old, keys = _open_header(opened.stream, provider, None, label)
            key_provider = _resolve(provider, old.provider, label)
            new = _rewrapped(old, key_provider, new_key_name or old.key_name, keys, label)
            encoded = keys.encode_header(new)
            out.write(encoded)
            _copy(opened.stream, out)
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
    return EnvelopeResult(
        label, written.count, written.hexdigest(), check.count, replace(new, size=len(encoded)), etag
    )


# --- keys, header and chunks ----------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class _FileKeys:
    """The keys of one file, derived from its data key; never shown (no ``repr`` of the fields)."""

    data_key: bytes
    payload: AESGCM
    header_key: bytes
    aad: bytes
    nonce_prefix: bytes

    def __repr__(self) -> str:
        return "_FileKeys(<hidden>)"

    @classmethod
    def derive(cls, data_key: bytes, header: EnvelopeHeader) -> _FileKeys:
        # Per-file subkeys: the data key itself never encrypts, and header and body keys stay independent.
        okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=header.salt, info=_HKDF_INFO).derive(data_key)
        return cls(data_key, AESGCM(okm[:32]), okm[32:], header.chunk_aad(), header.nonce_prefix)

    def nonce(self, index: int, final: bool) -> bytes:
        return self.nonce_prefix + _COUNTER.pack(index, 1 if final else 0)

    def header_tag(self, prefix: bytes) -> bytes:
        return hmac.new(self.header_key, prefix, hashlib.sha256).digest()

    def encode_header(self, header: EnvelopeHeader) -> bytes:
        meta = header.metadata()
        prefix = MAGIC + _PREFIX.pack(header.version, len(meta)) + meta
        return prefix + self.header_tag(prefix)


def _seal_chunks(src: Readable, dst: Writable, keys: _FileKeys, chunk_size: int, name: str) -> None:
    chunks = _ChunkReader(src, chunk_size)
    pending = chunks.next()
    for index in itertools.count():
        if index >= MAX_CHUNKS:
            raise EncryptionError(f"{name} needs more than {MAX_CHUNKS} chunks: use a larger chunk size")
        # Read one chunk ahead: a chunk is final when nothing follows it (it may be full, or empty).
        following = chunks.next() if len(pending) == chunk_size else _EMPTY
        final = not following
        dst.write(keys.payload.encrypt(keys.nonce(index, final), pending, keys.aad))
        if final:
            return
        pending = following


def _open_chunks(src: Readable, dst: Writable, keys: _FileKeys, chunk_size: int, name: str) -> None:
    size = chunk_size + TAG_SIZE
    chunks = _ChunkReader(src, size)
    current = chunks.next()
    for index in itertools.count():
        following = chunks.next() if len(current) == size else _EMPTY
        final = not following
        if len(current) < TAG_SIZE:
            raise EncryptionError(f"{name} is truncated: chunk {index} is missing or incomplete")
        if index >= MAX_CHUNKS:
            raise EncryptionError(f"{name} has more than {MAX_CHUNKS} chunks, more than any envelope holds")
        try:
            plaintext = keys.payload.decrypt(keys.nonce(index, final), current, keys.aad)
        except InvalidTag:
            raise EncryptionError(
                f"chunk {index} of {name} failed authentication: the file is truncated, reordered, "
                "tampered with or spliced from another file"
            ) from None
        dst.write(plaintext)
        if final:
            return
        current = following


class _ChunkReader:
    """Chunks of ``size`` bytes (fewer only at the end) read into two reused buffers, in turn.

    Reusing buffers keeps memory constant and, more to the point, spares the allocator a fresh megabyte per
    chunk: glibc hands such blocks back to the kernel and faults them in again, which halved throughput.
    A chunk stays valid until the next-but-one call, which is all the read-ahead of one chunk needs.
    """

    def __init__(self, src: Readable, size: int) -> None:
        self._src = src
        self._size = size
        self._buffers = (bytearray(size), bytearray(size))
        self._turn = 0

    def next(self) -> memoryview:
        view = memoryview(self._buffers[self._turn])
        self._turn ^= 1
        filled = 0
        while filled < self._size:  # files, pipes and sockets may all return short reads
            count = _readinto(self._src, view[filled:])
            if not count:
                break
            filled += count
        return view[:filled]


def _readinto(src: Readable, buffer: memoryview) -> int:
    """``src.readinto(buffer)``, or for streams without it a ``read`` copied into ``buffer``."""
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        return int(readinto(buffer) or 0)
    data = src.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


def _open_header(
    src: Readable, provider: KeyProvider | ProviderResolver, context: Mapping[str, str] | None, name: str
) -> tuple[EnvelopeHeader, _FileKeys]:
    """Read the header, unwrap its data key and authenticate it; return it with the file's keys."""
    header, prefix, tag = _read_header(src, name)
    if context is not None:
        _check_expected_context(header, _check_context(context, name), name)
    key_provider = _resolve(provider, header.provider, name)
    try:
        data_key = key_provider.unwrap(header.key_name, header.wrapped_key, header.context)
    except Exception as exc:
        raise EncryptionError(
            f"{name}: cannot unwrap the data key with {header.provider}:{header.key_name} "
            f"v{header.key_version}: {_describe(exc)}"
        ) from exc
    if len(data_key) != DATA_KEY_BYTES:
        raise EncryptionError(
            f"{name}: the unwrapped data key has {len(data_key)} bytes, not {DATA_KEY_BYTES}"
        )
    keys = _FileKeys.derive(data_key, header)
    if not hmac.compare_digest(keys.header_tag(prefix), tag):
        raise EncryptionError(f"{name}: the envelope header failed authentication (tampered with)")
    return header, keys


def _read_header(src: Readable, name: str) -> tuple[EnvelopeHeader, bytes, bytes]:
    fixed = _read_exact(src, len(MAGIC) + _PREFIX.size)
    if not fixed:
        raise EncryptionError(f"{name} is empty, not an aisec envelope file")
    if not MAGIC.startswith(fixed[: len(MAGIC)]):
        raise EncryptionError(f"{name} is not an aisec envelope file (no {MAGIC.decode()} header)")
    if len(fixed) < len(MAGIC) + _PREFIX.size:
        raise EncryptionError(f"{name} is truncated: the envelope header is incomplete")
    version, meta_size = _PREFIX.unpack(fixed[len(MAGIC) :])
    if version != FORMAT_VERSION:
        raise EncryptionError(
            f"{name} uses envelope format version {version}; this version reads {FORMAT_VERSION}"
        )
    if meta_size > MAX_METADATA:
        raise EncryptionError(f"{name}: the envelope header claims {meta_size} bytes of metadata")
    meta = _read_exact(src, meta_size)
    tag = _read_exact(src, HEADER_TAG_SIZE)
    if len(meta) < meta_size or len(tag) < HEADER_TAG_SIZE:
        raise EncryptionError(f"{name} is truncated: the envelope header is incomplete")
    header = _parse_metadata(meta, len(fixed) + meta_size + HEADER_TAG_SIZE, name)
    return header, fixed + meta, tag


def _parse_metadata(raw: bytes, size: int, name: str) -> EnvelopeHeader:
    try:
        meta = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EncryptionError(f"{name}: the envelope header metadata is not valid JSON") from None
    if not isinstance(meta, dict) or set(meta) != set(_META_FIELDS):
        raise EncryptionError(f"{name}: the envelope header metadata lacks or adds fields")
    for key, kind in _META_FIELDS.items():
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise EncryptionError(f"{name}: envelope header field {key!r} is not a {kind.__name__}")
    return EnvelopeHeader(
        version=FORMAT_VERSION,
        chunk_size=_check_chunk_size(meta["chunk_size"], name),
        provider=meta["provider"],
        key_name=meta["key_name"],
        key_version=meta["key_version"],
        context=_check_context(meta["context"], name),
        wrapped_key=_unb64(meta["wrapped_key"], None, "wrapped_key", name),
        salt=_unb64(meta["salt"], SALT_SIZE, "salt", name),
        nonce_prefix=_unb64(meta["nonce_prefix"], NONCE_PREFIX_SIZE, "nonce_prefix", name),
        size=size,
    )


def _rewrapped(
    header: EnvelopeHeader, provider: KeyProvider, key_name: str, keys: _FileKeys, name: str
) -> EnvelopeHeader:
    """The header with the data key wrapped anew under the active version of ``key_name``."""
    try:
        wrapped, version = provider.wrap(key_name, keys.data_key, header.context)
    except Exception as exc:
        raise EncryptionError(
            f"{name}: cannot re-wrap the data key with {provider.kind}:{key_name}: {_describe(exc)}"
        ) from exc
    return replace(
        header, provider=provider.kind, key_name=key_name, key_version=version, wrapped_key=wrapped, size=0
    )


def _resolve(provider: KeyProvider | ProviderResolver, kind: str, name: str) -> KeyProvider:
    if isinstance(provider, KeyProvider):
        if provider.kind != kind:
            raise EncryptionError(f"{name} was encrypted with a {kind!r} key provider, not {provider.kind!r}")
        return provider
    try:
        return provider(kind)
    except Exception as exc:
        raise EncryptionError(f"{name}: no key provider of kind {kind!r}: {_describe(exc)}") from exc


def _check_expected_context(header: EnvelopeHeader, expected: Mapping[str, str], name: str) -> None:
    if dict(header.context) != dict(expected):
        # Names of the differing entries only: values may say more about the data than a log should.
        differing = sorted(
            k for k in set(header.context) | set(expected) if header.context.get(k) != expected.get(k)
        )
        raise EncryptionError(f"{name}: the encryption context differs from the expected one in {differing}")


def _check_context(context: Mapping[str, str], name: str) -> dict[str, str]:
    if not isinstance(context, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in context.items()
    ):
        raise EncryptionError(f"{name}: the encryption context must map strings to strings")
    return dict(context)


def _check_chunk_size(chunk_size: int, name: str) -> int:
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or not 0 < chunk_size <= MAX_CHUNK_SIZE
    ):
        raise EncryptionError(
            f"{name}: chunk size {chunk_size!r} is not between 1 and {MAX_CHUNK_SIZE} bytes"
        )
    return chunk_size


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, size: int | None, key: str, name: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionError(f"{name}: envelope header field {key!r} is not base64") from None
    if size is not None and len(data) != size:
        raise EncryptionError(f"{name}: envelope header field {key!r} has {len(data)} bytes, not {size}")
    return data


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _read_exact(src: Readable, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at the end of the stream (sockets and pipes return short reads)."""
    data = src.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    missing = size - len(data)
    while missing:
        more = src.read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


def _copy(src: Readable, dst: Writable) -> None:
    while chunk := src.read(_COPY):
        dst.write(chunk)


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
        count = _readinto(self._raw, buffer)
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

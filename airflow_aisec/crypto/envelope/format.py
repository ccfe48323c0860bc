"""The envelope file format, version 1: constants, the header, the per-file keys and the checks.

The format is specified in the package docstring (``airflow_aisec.crypto.envelope``) and, with test vectors,
in ``docs/envelope-format.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_aisec.crypto.providers import context_bytes
from airflow_aisec.exceptions import EncryptionError

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


@dataclass(frozen=True, repr=False)
class FileKeys:
    """The keys of one file, derived from its data key; never shown (no ``repr`` of the fields)."""

    data_key: bytes
    payload: AESGCM
    header_key: bytes
    aad: bytes
    nonce_prefix: bytes

    def __repr__(self) -> str:
        return "FileKeys(<hidden>)"

    @classmethod
    def derive(cls, data_key: bytes, header: EnvelopeHeader) -> FileKeys:
        # Per-file subkeys: the data key itself never encrypts, and header and body keys stay independent.
        okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=header.salt, info=_HKDF_INFO).derive(data_key)
        return cls(data_key, AESGCM(okm[:32]), okm[32:], header.chunk_aad(), header.nonce_prefix)

    def nonce(self, index: int, final: bool) -> bytes:
        """The nonce of chunk ``index``."""
        return self.nonce_prefix + _COUNTER.pack(index, 1 if final else 0)

    def header_tag(self, prefix: bytes) -> bytes:
        """The HMAC of the header bytes before the tag."""
        return hmac.new(self.header_key, prefix, hashlib.sha256).digest()

    def encode_header(self, header: EnvelopeHeader) -> bytes:
        """The header's bytes, tag included."""
        meta = header.metadata()
        prefix = MAGIC + _PREFIX.pack(header.version, len(meta)) + meta
        return prefix + self.header_tag(prefix)


def read_into(src: Readable, buffer: memoryview) -> int:
    """``src.readinto(buffer)``, or for streams without it a ``read`` copied into ``buffer``."""
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        return int(readinto(buffer) or 0)
    data = src.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


def parse_header(src: Readable, name: str) -> tuple[EnvelopeHeader, bytes, bytes]:
    """The header at the start of ``src``, unauthenticated: (header, bytes before its tag, tag)."""
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
        chunk_size=check_chunk_size(meta["chunk_size"], name),
        provider=meta["provider"],
        key_name=meta["key_name"],
        key_version=meta["key_version"],
        context=check_context(meta["context"], name),
        wrapped_key=_unb64(meta["wrapped_key"], None, "wrapped_key", name),
        salt=_unb64(meta["salt"], SALT_SIZE, "salt", name),
        nonce_prefix=_unb64(meta["nonce_prefix"], NONCE_PREFIX_SIZE, "nonce_prefix", name),
        size=size,
    )


def check_expected_context(header: EnvelopeHeader, expected: Mapping[str, str], name: str) -> None:
    """Raise ``EncryptionError`` unless the header's context is ``expected`` (naming the keys that differ)."""
    if dict(header.context) != dict(expected):
        # Names of the differing entries only: values may say more about the data than a log should.
        differing = sorted(
            k for k in set(header.context) | set(expected) if header.context.get(k) != expected.get(k)
        )
        raise EncryptionError(f"{name}: the encryption context differs from the expected one in {differing}")


def check_context(context: Mapping[str, str], name: str) -> dict[str, str]:
    """``context`` as a dict, when it maps strings to strings; else ``EncryptionError``."""
    if not isinstance(context, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in context.items()
    ):
        raise EncryptionError(f"{name}: the encryption context must map strings to strings")
    return dict(context)


def check_chunk_size(chunk_size: int, name: str) -> int:
    """``chunk_size``, when it is an int between 1 and ``MAX_CHUNK_SIZE``; else ``EncryptionError``."""
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


def describe_error(exc: Exception) -> str:
    """The message of ``exc``, else its type (providers' messages never hold key material)."""
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

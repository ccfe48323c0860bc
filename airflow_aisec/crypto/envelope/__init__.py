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

Modules: ``format`` (the header, the per-file keys and the checks), ``streams`` (``encrypt_stream``,
``decrypt_stream``, ``rewrap_stream``) and ``files`` (``encrypt_file``, ``decrypt_file``, ``rewrap_header``).
"""

from __future__ import annotations

from airflow_aisec.crypto.envelope.files import EnvelopeResult, decrypt_file, encrypt_file, rewrap_header
from airflow_aisec.crypto.envelope.format import (
    DEFAULT_CHUNK_SIZE,
    FORMAT_VERSION,
    HEADER_TAG_SIZE,
    MAGIC,
    MAX_CHUNK_SIZE,
    MAX_CHUNKS,
    MAX_METADATA,
    NONCE_PREFIX_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    EnvelopeHeader,
    Readable,
    Writable,
)
from airflow_aisec.crypto.envelope.streams import (
    ProviderResolver,
    decrypt_stream,
    encrypt_stream,
    read_header,
    rewrap_stream,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMAT_VERSION",
    "HEADER_TAG_SIZE",
    "MAGIC",
    "MAX_CHUNKS",
    "MAX_CHUNK_SIZE",
    "MAX_METADATA",
    "NONCE_PREFIX_SIZE",
    "SALT_SIZE",
    "TAG_SIZE",
    "EnvelopeHeader",
    "EnvelopeResult",
    "ProviderResolver",
    "Readable",
    "Writable",
    "decrypt_file",
    "decrypt_stream",
    "encrypt_file",
    "encrypt_stream",
    "read_header",
    "rewrap_header",
    "rewrap_stream",
]

"""Encrypting, decrypting and re-wrapping envelopes as streams, in constant memory whatever their size."""

from __future__ import annotations

import hmac
import itertools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace

from cryptography.exceptions import InvalidTag

from airflow_aisec.crypto.envelope.format import (
    DEFAULT_CHUNK_SIZE,
    FORMAT_VERSION,
    MAX_CHUNKS,
    NONCE_PREFIX_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    EnvelopeHeader,
    FileKeys,
    Readable,
    Writable,
    check_chunk_size,
    check_context,
    check_expected_context,
    describe_error,
    parse_header,
    read_into,
)
from airflow_aisec.crypto.providers import DATA_KEY_BYTES, KeyProvider
from airflow_aisec.exceptions import EncryptionError

_COPY = 1 << 20
_EMPTY = memoryview(b"")

ProviderResolver = Callable[[str], KeyProvider]
"""Returns the key provider of a kind (``"local"``, ...) named in an envelope header."""


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
    checked = check_context(context, name)
    check_chunk_size(chunk_size, name)
    try:
        data_key = provider.generate_data_key(key_name, checked)
    except Exception as exc:
        raise EncryptionError(
            f"{name}: cannot create a data key with {provider.kind}:{key_name}: {describe_error(exc)}"
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
    keys = FileKeys.derive(data_key.plaintext, header)
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
    header, _prefix, _tag = parse_header(src, name)
    return header


def rewrap_stream(
    src: Readable,
    dst: Writable,
    provider: KeyProvider | ProviderResolver,
    new_key_name: str | None = None,
    *,
    name: str = "<stream>",
) -> EnvelopeHeader:
    """Copy the envelope ``src`` into ``dst`` with its data key re-wrapped; return the new header.

    The data key is unwrapped (which authenticates the header) and wrapped anew under the active version of
    its master key, or of ``new_key_name``; the body is copied byte for byte, not authenticated here (read
    the result back with ``decrypt_stream`` before trusting it, as ``rewrap_header`` does).
    """
    old, keys = _open_header(src, provider, None, name)
    key_provider = _resolve(provider, old.provider, name)
    new = _rewrapped(old, key_provider, new_key_name or old.key_name, keys, name)
    encoded = keys.encode_header(new)
    dst.write(encoded)
    _copy(src, dst)
    return replace(new, size=len(encoded))


def _seal_chunks(src: Readable, dst: Writable, keys: FileKeys, chunk_size: int, name: str) -> None:
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


def _open_chunks(src: Readable, dst: Writable, keys: FileKeys, chunk_size: int, name: str) -> None:
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
            count = read_into(self._src, view[filled:])
            if not count:
                break
            filled += count
        return view[:filled]


def _open_header(
    src: Readable, provider: KeyProvider | ProviderResolver, context: Mapping[str, str] | None, name: str
) -> tuple[EnvelopeHeader, FileKeys]:
    """Read the header, unwrap its data key and authenticate it; return it with the file's keys."""
    header, prefix, tag = parse_header(src, name)
    if context is not None:
        check_expected_context(header, check_context(context, name), name)
    key_provider = _resolve(provider, header.provider, name)
    try:
        data_key = key_provider.unwrap(header.key_name, header.wrapped_key, header.context)
    except Exception as exc:
        raise EncryptionError(
            f"{name}: cannot unwrap the data key with {header.provider}:{header.key_name} "
            f"v{header.key_version}: {describe_error(exc)}"
        ) from exc
    if len(data_key) != DATA_KEY_BYTES:
        raise EncryptionError(
            f"{name}: the unwrapped data key has {len(data_key)} bytes, not {DATA_KEY_BYTES}"
        )
    keys = FileKeys.derive(data_key, header)
    if not hmac.compare_digest(keys.header_tag(prefix), tag):
        raise EncryptionError(f"{name}: the envelope header failed authentication (tampered with)")
    return header, keys


def _rewrapped(
    header: EnvelopeHeader, provider: KeyProvider, key_name: str, keys: FileKeys, name: str
) -> EnvelopeHeader:
    """The header with the data key wrapped anew under the active version of ``key_name``."""
    try:
        wrapped, version = provider.wrap(key_name, keys.data_key, header.context)
    except Exception as exc:
        raise EncryptionError(
            f"{name}: cannot re-wrap the data key with {provider.kind}:{key_name}: {describe_error(exc)}"
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
        raise EncryptionError(f"{name}: no key provider of kind {kind!r}: {describe_error(exc)}") from exc


def _copy(src: Readable, dst: Writable) -> None:
    while chunk := src.read(_COPY):
        dst.write(chunk)

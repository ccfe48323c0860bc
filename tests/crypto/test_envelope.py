"""Envelope encryption of files: round trips, every kind of tampering, KMS failures, re-wrapping, S3."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.crypto.envelope import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    TAG_SIZE,
    EnvelopeHeader,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    encrypt_stream,
    read_header,
    rewrap_header,
)
from airflow_aisec.crypto.envelope import files as envelope
from airflow_aisec.crypto.providers import Context, LocalKeyProvider
from airflow_aisec.exceptions import (
    ConcurrentModificationError,
    DatasetIOError,
    EncryptionError,
    VerificationError,
)
from airflow_aisec.io import storage
from airflow_aisec.io.atomic import MIN_PART_SIZE
from airflow_aisec.io.storage import Location, S3Options, s3_client

KEY = "datasets"
CONTEXT = {"dataset": "orders", "purpose": "backup"}
SMALL = 64  # chunk size of most tests: many chunks from a few hundred bytes
MARKER = b"PLAINTEXT-MARKER-4f9a"
# Dummy credentials: moto accepts any; the secret is distinctive so a leak would be easy to spot.


# --- fixtures and helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> LocalKeyProvider:
    """A keyring shared by the tests of this module that never rotate or destroy its keys."""
    keys = LocalKeyProvider(tmp_path_factory.mktemp("keyring") / "ring.json")
    keys.create(KEY)
    return keys


@pytest.fixture
def own_provider(tmp_path: Path) -> LocalKeyProvider:
    """A keyring of one test's own (for rotation and destruction)."""
    keys = LocalKeyProvider(tmp_path / "keys" / "ring.json")
    keys.create(KEY)
    return keys


def encrypt_bytes(
    data: bytes, keys: LocalKeyProvider, chunk_size: int = SMALL, context: Context = CONTEXT
) -> tuple[bytes, EnvelopeHeader]:
    out = io.BytesIO()
    header = encrypt_stream(io.BytesIO(data), out, keys, KEY, context, chunk_size)
    return out.getvalue(), header


def decrypt_bytes(blob: bytes, keys: Any, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, keys, **kwargs)
    return out.getvalue()


def chunk_bounds(header: EnvelopeHeader, blob: bytes) -> list[tuple[int, int]]:
    """(start, end) of every chunk of an envelope."""
    step = header.chunk_size + TAG_SIZE
    return [(start, min(start + step, len(blob))) for start in range(header.size, len(blob), step)]


def sample_text(size: int) -> bytes:
    """``size`` bytes of CSV-like text that starts with a recognisable marker."""
    line = MARKER + b",alice@example.com,42\n"
    return (line * (size // len(line) + 1))[:size]


def folder_names(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()}


class FlakyProvider(LocalKeyProvider):
    """A local provider whose key service fails after ``calls_allowed`` wrap/unwrap calls (a KMS outage)."""

    def __init__(self, keyring: Path, calls_allowed: int) -> None:
        super().__init__(keyring)
        self.calls_allowed = calls_allowed
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.calls > self.calls_allowed:
            raise RuntimeError("KMS unavailable (simulated outage)")

    def wrap(self, key_name: str, plaintext: bytes, context: Context) -> tuple[bytes, int]:
        self._call()
        return super().wrap(key_name, plaintext, context)

    def unwrap(self, key_name: str, wrapped: bytes, context: Context) -> bytes:
        self._call()
        return super().unwrap(key_name, wrapped, context)


class FailingReader:
    """A stream that fails after ``reads`` reads, like a disk or network error in the middle of a file."""

    def __init__(self, raw: Any, reads: int) -> None:
        self.raw = raw
        self.reads = reads

    def read(self, size: int = -1, /) -> bytes:
        if self.reads <= 0:
            raise OSError("I/O error (simulated)")
        self.reads -= 1
        data: bytes = self.raw.read(size)
        return data


class Pattern:
    """``total`` bytes produced on demand, never held in memory at once."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.block = os.urandom(1 << 20)

    def read(self, size: int = -1, /) -> bytes:
        size = min(self.left, len(self.block) if size < 0 else size)
        self.left -= size
        return self.block[:size]


class Sink:
    """Counts and hashes what is written, keeps nothing."""

    def __init__(self) -> None:
        self.count = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes, /) -> int:
        self.count += len(data)
        self.digest.update(data)
        return len(data)


# --- round trips ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, SMALL - 1, SMALL, SMALL + 1, 2 * SMALL, 7 * SMALL + 5],
    ids=["empty", "1-byte", "chunk-1", "one-chunk", "chunk+1", "two-chunks", "many-chunks"],
)
def test_round_trip(provider: LocalKeyProvider, size: int) -> None:
    data = os.urandom(size)
    blob, header = encrypt_bytes(data, provider)
    chunks = max(1, -(-size // SMALL))
    assert len(blob) == header.ciphertext_size(size) == header.size + size + chunks * TAG_SIZE
    assert len(chunk_bounds(header, blob)) == chunks
    assert decrypt_bytes(blob, provider) == data
    assert decrypt_bytes(blob, provider, context=CONTEXT) == data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096), chunk_size=st.integers(min_value=1, max_value=700))
def test_round_trip_random_sizes(provider: LocalKeyProvider, data: bytes, chunk_size: int) -> None:
    blob, header = encrypt_bytes(data, provider, chunk_size)
    assert len(blob) == header.ciphertext_size(len(data))
    assert decrypt_bytes(blob, provider) == data


class Trickle:
    """A stream without ``readinto`` that returns 1 to 7 bytes per read, like a slow pipe or socket."""

    def __init__(self, data: bytes) -> None:
        self.raw = io.BytesIO(data)
        self.reads = 0

    def read(self, size: int = -1, /) -> bytes:
        self.reads += 1
        return self.raw.read(min(size, 1 + self.reads % 7))


def test_short_reads_and_streams_without_readinto(provider: LocalKeyProvider) -> None:
    data = os.urandom(5 * SMALL + 11)
    out = io.BytesIO()
    header = encrypt_stream(Trickle(data), out, provider, KEY, CONTEXT, SMALL)
    assert len(out.getvalue()) == header.ciphertext_size(len(data))
    back = io.BytesIO()
    decrypt_stream(Trickle(out.getvalue()), back, provider)
    assert back.getvalue() == data


def test_header_describes_the_file_and_hides_the_plaintext(provider: LocalKeyProvider) -> None:
    data = sample_text(1000)
    blob, written = encrypt_bytes(data, provider)
    header = read_header(io.BytesIO(blob))
    assert header == written
    assert (header.version, header.chunk_size, header.provider) == (1, SMALL, "local")
    assert (header.key_name, header.key_version, dict(header.context)) == (KEY, 1, CONTEXT)
    assert len(header.salt) == 16 and len(header.nonce_prefix) == 7
    assert blob.startswith(b"AISECENV\x01")
    assert MARKER not in blob
    assert base64.b64encode(header.wrapped_key).decode() not in repr(header)


def test_each_file_gets_its_own_data_key_and_nonces(provider: LocalKeyProvider) -> None:
    data = sample_text(500)
    (first, one), (second, two) = encrypt_bytes(data, provider), encrypt_bytes(data, provider)
    assert one.wrapped_key != two.wrapped_key and one.salt != two.salt
    assert first[one.size :] != second[two.size :]


def test_a_resolver_picks_the_provider_named_in_the_header(provider: LocalKeyProvider) -> None:
    blob, _ = encrypt_bytes(b"hello", provider)
    assert decrypt_bytes(blob, {"local": provider}.__getitem__) == b"hello"
    with pytest.raises(EncryptionError, match="no key provider of kind 'local'"):
        decrypt_bytes(blob, {"aws-kms": provider}.__getitem__)

    class OtherKind(LocalKeyProvider):
        kind = "other"

    with pytest.raises(EncryptionError, match="encrypted with a 'local' key provider, not 'other'"):
        decrypt_bytes(blob, OtherKind(provider.keyring))


def test_invalid_arguments_are_refused(provider: LocalKeyProvider) -> None:
    for size in (0, -1, MAX_CHUNK_SIZE + 1):
        with pytest.raises(EncryptionError, match="chunk size"):
            encrypt_bytes(b"x", provider, size)
    with pytest.raises(EncryptionError, match="must map strings to strings"):
        encrypt_bytes(b"x", provider, context={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(EncryptionError, match="cannot create a data key with local:missing"):
        encrypt_stream(io.BytesIO(b"x"), io.BytesIO(), provider, "missing", CONTEXT)


def test_not_an_envelope(provider: LocalKeyProvider) -> None:
    with pytest.raises(EncryptionError, match="is empty"):
        decrypt_bytes(b"", provider)
    with pytest.raises(EncryptionError, match="not an aisec envelope"):
        decrypt_bytes(b"id,name\n1,alice\n", provider)
    blob, _ = encrypt_bytes(b"x", provider)
    with pytest.raises(EncryptionError, match="format version 2; this version reads 1"):
        read_header(io.BytesIO(blob[:8] + b"\x02" + blob[9:]))


# --- wrong keys and contexts ------------------------------------------------------------------------------


def test_wrong_keyring_fails_clearly_and_writes_nothing(provider: LocalKeyProvider, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(sample_text(5000))
    encrypted = tmp_path / "orders.csv.aisec"
    encrypt_file(Location.parse(source), Location.parse(encrypted), provider, KEY, CONTEXT)
    other = LocalKeyProvider(tmp_path / "other-ring.json")
    other.create(KEY)  # same name, different material
    before = folder_names(tmp_path)

    with pytest.raises(EncryptionError, match="cannot unwrap the data key with local:datasets v1") as raised:
        decrypt_file(Location.parse(encrypted), Location.parse(tmp_path / "out.csv"), other)

    assert str(encrypted.as_uri()) in str(raised.value)
    assert folder_names(tmp_path) == before  # no output and no temporary file


def test_wrong_context_fails_clearly_and_writes_nothing(provider: LocalKeyProvider, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(sample_text(5000))
    encrypted = tmp_path / "orders.csv.aisec"
    encrypt_file(Location.parse(source), Location.parse(encrypted), provider, KEY, CONTEXT)
    before = folder_names(tmp_path)

    with pytest.raises(EncryptionError, match=r"context differs from the expected one in \['dataset'\]"):
        decrypt_file(
            Location.parse(encrypted),
            Location.parse(tmp_path / "out.csv"),
            provider,
            context={**CONTEXT, "dataset": "customers"},
        )
    # The context stored in the header is bound to the wrapped key: editing it breaks the unwrap.
    blob = encrypted.read_bytes()
    encrypted.write_bytes(blob.replace(b'"orders"', b'"orderz"', 1))
    with pytest.raises(EncryptionError, match="cannot unwrap the data key"):
        decrypt_file(Location.parse(encrypted), Location.parse(tmp_path / "out.csv"), provider)
    assert folder_names(tmp_path) == before


# --- tampering ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sealed(provider: LocalKeyProvider) -> tuple[bytes, bytes, EnvelopeHeader]:
    """(plaintext, envelope, header): 4 chunks, the last one partial."""
    data = sample_text(3 * SMALL + 20)
    blob, header = encrypt_bytes(data, provider)
    return data, blob, header


@pytest.mark.parametrize("mask", [0x01, 0x80])
def test_flipping_any_byte_is_detected(
    provider: LocalKeyProvider, sealed: tuple[bytes, bytes, EnvelopeHeader], mask: int
) -> None:
    _data, blob, _header = sealed
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= mask
        with pytest.raises(EncryptionError) as raised:
            decrypt_bytes(bytes(tampered), provider)
        assert MARKER.decode() not in str(raised.value), position


def test_truncation_anywhere_is_detected(
    provider: LocalKeyProvider, sealed: tuple[bytes, bytes, EnvelopeHeader]
) -> None:
    _data, blob, header = sealed
    boundaries = [start for start, _end in chunk_bounds(header, blob)]
    assert len(boundaries) == 4
    for length in range(len(blob)):  # every chunk boundary, every point inside chunks and the header
        with pytest.raises(EncryptionError):
            decrypt_bytes(blob[:length], provider)
    with pytest.raises(EncryptionError, match="chunk 2 of <stream> failed authentication"):
        decrypt_bytes(blob[: boundaries[3]], provider)  # cut at a boundary: chunk 2 was not the final one
    with pytest.raises(EncryptionError, match="truncated: chunk 0 is missing"):
        decrypt_bytes(blob[: header.size], provider)


def test_reordered_dropped_and_duplicated_chunks_are_detected(
    provider: LocalKeyProvider, sealed: tuple[bytes, bytes, EnvelopeHeader]
) -> None:
    _data, blob, header = sealed
    head = blob[: header.size]
    chunks = [blob[start:end] for start, end in chunk_bounds(header, blob)]
    variants = {
        "swap 0 and 1": [chunks[1], chunks[0], *chunks[2:]],
        "swap 1 and 2": [chunks[0], chunks[2], chunks[1], chunks[3]],
        "drop 1": [chunks[0], *chunks[2:]],
        "repeat 0": [chunks[0], chunks[0], *chunks[2:]],
        "final first": [chunks[3], *chunks[:3]],
    }
    for order in variants.values():
        with pytest.raises(EncryptionError, match="failed authentication"):
            decrypt_bytes(head + b"".join(order), provider)


def test_chunks_spliced_from_another_file_are_detected(
    provider: LocalKeyProvider, sealed: tuple[bytes, bytes, EnvelopeHeader]
) -> None:
    data, blob, header = sealed
    other, other_header = encrypt_bytes(data, provider)  # same plaintext, key name and context
    mine, theirs = chunk_bounds(header, blob), chunk_bounds(other_header, other)
    spliced = blob[: mine[1][0]] + other[theirs[1][0] : theirs[1][1]] + blob[mine[1][1] :]
    with pytest.raises(EncryptionError, match="chunk 1 of <stream> failed authentication"):
        decrypt_bytes(spliced, provider)
    with pytest.raises(EncryptionError, match="chunk 0 of <stream> failed authentication"):
        decrypt_bytes(other[: other_header.size] + blob[header.size :], provider)
    with pytest.raises(EncryptionError, match="header failed authentication"):
        # Another file's wrapped key (a valid one, for the same key and context) in this header.
        swapped = dataclasses.replace(header, wrapped_key=other_header.wrapped_key)
        meta = swapped.metadata()
        prefix = blob[:8] + bytes([1]) + len(meta).to_bytes(4, "big") + meta
        decrypt_bytes(prefix + blob[header.size - 32 :], provider)


@pytest.mark.parametrize("extra", [b"\x00", b"x" * TAG_SIZE, b"y" * (SMALL + TAG_SIZE), None])
def test_appended_data_is_detected(
    provider: LocalKeyProvider, sealed: tuple[bytes, bytes, EnvelopeHeader], extra: bytes | None
) -> None:
    _data, blob, header = sealed
    last_start, _ = chunk_bounds(header, blob)[-1]
    suffix = blob[last_start:] if extra is None else extra  # None: the final chunk once more
    with pytest.raises(EncryptionError, match=r"failed authentication|truncated"):
        decrypt_bytes(blob + suffix, provider)


# --- files: atomic, and never any plaintext at the target on failure ------------------------------------


def test_file_round_trip_reports_what_it_wrote(provider: LocalKeyProvider, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    data = os.urandom(3 * DEFAULT_CHUNK_SIZE + 12345)
    source.write_bytes(data)
    encrypted, restored = tmp_path / "model.bin.aisec", tmp_path / "restored" / "model.bin"

    result = encrypt_file(Location.parse(source), Location.parse(encrypted), provider, KEY, CONTEXT)
    stored = encrypted.read_bytes()
    assert result.uri == encrypted.as_uri() and result.plaintext_bytes == len(data)
    assert result.bytes == len(stored) == result.header.ciphertext_size(len(data))
    assert result.sha256 == hashlib.sha256(stored).hexdigest()
    assert result.header.chunk_size == DEFAULT_CHUNK_SIZE

    back = decrypt_file(Location.parse(encrypted), Location.parse(restored), provider, context=CONTEXT)
    assert restored.read_bytes() == data
    assert (back.bytes, back.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert back.header == result.header
    assert restored.stat().st_mode & 0o777 == 0o600  # decrypted data is owner-only unless replacing a file
    assert folder_names(tmp_path) == {"model.bin", "model.bin.aisec", "restored"}


def test_existing_target_is_replaced_only_when_allowed(provider: LocalKeyProvider, tmp_path: Path) -> None:
    source, target = tmp_path / "a.csv", tmp_path / "a.csv.aisec"
    source.write_bytes(sample_text(300))
    target.write_bytes(b"previous version")
    with pytest.raises(ConcurrentModificationError, match="already exists"):
        encrypt_file(Location.parse(source), Location.parse(target), provider, KEY, CONTEXT)
    assert target.read_bytes() == b"previous version"
    with pytest.raises(ConcurrentModificationError, match="changed since it was read"):
        encrypt_file(
            Location.parse(source), Location.parse(target), provider, KEY, CONTEXT, expected_etag="stale"
        )
    encrypt_file(Location.parse(source), Location.parse(target), provider, KEY, CONTEXT, overwrite=True)
    assert decrypt_bytes(target.read_bytes(), provider) == source.read_bytes()
    assert folder_names(tmp_path) == {"a.csv", "a.csv.aisec"}


def test_tampered_file_never_reaches_the_target(
    provider: LocalKeyProvider, tmp_path: Path, sealed: tuple[bytes, bytes, EnvelopeHeader]
) -> None:
    _data, blob, header = sealed
    encrypted, target = tmp_path / "in.aisec", tmp_path / "out.csv"
    last_start, _ = chunk_bounds(header, blob)[-1]
    # Chunks 0-2 are fine and are written out before the tampered final chunk is reached.
    for position in (0, 20, header.size - 1, header.size, last_start + 3, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        encrypted.write_bytes(bytes(tampered))
        with pytest.raises(EncryptionError):
            decrypt_file(Location.parse(encrypted), Location.parse(target), provider)
        assert folder_names(tmp_path) == {"in.aisec"}, position
    target.write_bytes(b"existing plaintext")
    for cut in (header.size + SMALL + TAG_SIZE, len(blob) - 1):
        encrypted.write_bytes(blob[:cut])
        with pytest.raises(EncryptionError):
            decrypt_file(Location.parse(encrypted), Location.parse(target), provider, overwrite=True)
        assert target.read_bytes() == b"existing plaintext"
        assert folder_names(tmp_path) == {"in.aisec", "out.csv"}


@pytest.mark.parametrize(
    ("calls_allowed", "message"),
    [(0, "cannot create a data key"), (1, "the encrypted copy of .* cannot unwrap")],
    ids=["generate-fails", "verification-unwrap-fails"],
)
@pytest.mark.parametrize("existing", [False, True], ids=["new-target", "existing-target"])
def test_kms_failure_leaves_the_target_untouched(
    tmp_path: Path, calls_allowed: int, message: str, existing: bool
) -> None:
    keys = FlakyProvider(tmp_path / "ring.json", calls_allowed)
    keys.create(KEY)
    source, target = tmp_path / "data.jsonl", tmp_path / "out" / "data.jsonl.aisec"
    source.write_bytes(sample_text(10 * SMALL))
    target.parent.mkdir()
    if existing:
        target.write_bytes(b"old envelope")
    with pytest.raises(EncryptionError, match=message) as raised:
        encrypt_file(
            Location.parse(source),
            Location.parse(target),
            keys,
            KEY,
            CONTEXT,
            chunk_size=SMALL,
            overwrite=True,
        )
    assert "KMS unavailable" in str(raised.value)
    assert folder_names(target.parent) == ({"data.jsonl.aisec"} if existing else set())
    if existing:
        assert target.read_bytes() == b"old envelope"


def test_kms_failure_on_decryption_writes_nothing(provider: LocalKeyProvider, tmp_path: Path) -> None:
    source, encrypted = tmp_path / "a.csv", tmp_path / "a.csv.aisec"
    source.write_bytes(sample_text(500))
    encrypt_file(Location.parse(source), Location.parse(encrypted), provider, KEY, CONTEXT)
    flaky = FlakyProvider(provider.keyring.path, calls_allowed=0)
    with pytest.raises(EncryptionError, match="KMS unavailable"):
        decrypt_file(Location.parse(encrypted), Location.parse(tmp_path / "out.csv"), flaky)
    assert folder_names(tmp_path) == {"a.csv", "a.csv.aisec"}


@pytest.mark.parametrize("operation", ["encrypt", "decrypt"])
def test_read_failure_mid_file_leaves_the_target_untouched(
    provider: LocalKeyProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    data = sample_text(20 * SMALL)
    if operation == "encrypt":
        source.write_bytes(data)
    else:
        source.write_bytes(encrypt_bytes(data, provider)[0])
    target.write_bytes(b"original")
    real = storage.open_input

    @contextlib.contextmanager
    def failing(location: Location) -> Iterator[Any]:
        with real(location) as opened:
            stream = storage._InputStream(FailingReader(opened.stream, reads=6), location.uri)
            yield dataclasses.replace(opened, stream=stream)

    monkeypatch.setattr(storage, "open_input", failing)
    with pytest.raises(DatasetIOError, match=f"cannot read {source.as_uri()}: I/O error"):
        if operation == "encrypt":
            encrypt_file(
                Location.parse(source), Location.parse(target), provider, KEY, CONTEXT, chunk_size=SMALL,
                overwrite=True,
            )  # fmt: skip
        else:
            decrypt_file(Location.parse(source), Location.parse(target), provider, overwrite=True)
    assert target.read_bytes() == b"original"
    assert folder_names(tmp_path) == {"source", "target"}


def test_failed_verification_publishes_nothing(
    provider: LocalKeyProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = tmp_path / "a.csv", tmp_path / "a.csv.aisec"
    source.write_bytes(sample_text(500))
    real = envelope._verify_envelope

    def corrupting(path: str, keys: Any, name: str) -> Any:
        with open(path, "r+b") as handle:  # a bit flipped on the way to the disk
            handle.seek(-1, os.SEEK_END)
            last = handle.read(1)
            handle.seek(-1, os.SEEK_END)
            handle.write(bytes([last[0] ^ 1]))
        return real(path, keys, name)

    monkeypatch.setattr(envelope, "_verify_envelope", corrupting)
    with pytest.raises(EncryptionError, match=r"encrypted copy of .* failed authentication"):
        encrypt_file(Location.parse(source), Location.parse(target), provider, KEY, CONTEXT)
    assert folder_names(tmp_path) == {"a.csv"}

    def mismatching(path: str, keys: Any, name: str) -> Any:
        envelope_digest, plain = real(path, keys, name)
        plain.write(b"!")  # decrypts, but not to the source's bytes
        return envelope_digest, plain

    monkeypatch.setattr(envelope, "_verify_envelope", mismatching)
    with pytest.raises(VerificationError, match="does not decrypt to the source"):
        encrypt_file(Location.parse(source), Location.parse(target), provider, KEY, CONTEXT)
    assert folder_names(tmp_path) == {"a.csv"}


# --- key rotation: re-wrapping the header -----------------------------------------------------------------


def test_rewrap_after_rotation_survives_destroying_the_old_version(
    own_provider: LocalKeyProvider, tmp_path: Path
) -> None:
    source, encrypted = tmp_path / "a.csv", tmp_path / "a.csv.aisec"
    data = sample_text(5 * SMALL + 3)
    source.write_bytes(data)
    first = encrypt_file(
        Location.parse(source), Location.parse(encrypted), own_provider, KEY, CONTEXT, chunk_size=SMALL
    )
    old = encrypted.read_bytes()
    assert own_provider.rotate(KEY) == 2

    result = rewrap_header(Location.parse(encrypted), own_provider)

    new = encrypted.read_bytes()
    header = read_header(io.BytesIO(new))
    assert header.key_version == result.header.key_version == 2
    assert (header.salt, header.nonce_prefix, header.context) == (
        first.header.salt,
        first.header.nonce_prefix,
        first.header.context,
    )
    assert new[header.size :] == old[first.header.size :]  # the body is untouched, byte for byte
    assert (result.bytes, result.sha256, result.plaintext_bytes) == (
        len(new),
        hashlib.sha256(new).hexdigest(),
        len(data),
    )
    assert own_provider.destroy(KEY, 1)
    assert decrypt_bytes(new, own_provider) == data
    with pytest.raises(EncryptionError, match="version 1 was destroyed"):
        decrypt_bytes(old, own_provider)  # crypto-shredded: only re-wrapped copies remain readable
    assert folder_names(tmp_path) == {"a.csv", "a.csv.aisec", "keys"}


def test_rewrap_under_another_key(own_provider: LocalKeyProvider, tmp_path: Path) -> None:
    encrypted = tmp_path / "a.aisec"
    blob, _ = encrypt_bytes(b"payload", own_provider)
    encrypted.write_bytes(blob)
    own_provider.create("archive")

    result = rewrap_header(Location.parse(encrypted), own_provider, new_key_name="archive")

    assert (result.header.key_name, result.header.key_version) == ("archive", 1)
    own_provider.destroy(KEY)
    assert decrypt_bytes(encrypted.read_bytes(), own_provider) == b"payload"


def test_rewrap_refuses_a_tampered_file_and_leaves_it(own_provider: LocalKeyProvider, tmp_path: Path) -> None:
    encrypted = tmp_path / "a.aisec"
    blob, _ = encrypt_bytes(sample_text(4 * SMALL), own_provider)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    encrypted.write_bytes(tampered)
    own_provider.rotate(KEY)
    with pytest.raises(EncryptionError, match=r"re-wrapped copy of .* failed authentication"):
        rewrap_header(Location.parse(encrypted), own_provider)
    assert encrypted.read_bytes() == tampered
    assert folder_names(tmp_path) == {"a.aisec", "keys"}


def test_rewrap_does_not_overwrite_a_concurrent_change(
    own_provider: LocalKeyProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encrypted = tmp_path / "a.aisec"
    encrypted.write_bytes(encrypt_bytes(b"v1", own_provider)[0])
    newer = encrypt_bytes(b"v2", own_provider)[0]
    real = envelope._verify_envelope

    def racing(path: str, keys: Any, name: str) -> Any:
        (tmp_path / "newer").write_bytes(newer)
        os.replace(tmp_path / "newer", encrypted)  # another writer replaces the file meanwhile
        return real(path, keys, name)

    monkeypatch.setattr(envelope, "_verify_envelope", racing)
    with pytest.raises(ConcurrentModificationError, match="changed since it was read"):
        rewrap_header(Location.parse(encrypted), own_provider)
    assert encrypted.read_bytes() == newer


# --- constant memory -----------------------------------------------------------------------------------


def test_memory_stays_constant_for_a_64_mib_stream(provider: LocalKeyProvider, tmp_path: Path) -> None:
    size = 64 << 20
    path = tmp_path / "big.aisec"
    source = Pattern(size)
    tracemalloc.start()
    try:
        with open(path, "wb") as out:
            encrypt_stream(source, out, provider, KEY, CONTEXT, DEFAULT_CHUNK_SIZE)
        _, encrypt_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sink = Sink()
        with open(path, "rb") as handle:
            decrypt_stream(handle, sink, provider)
        _, decrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.count == size
    assert encrypt_peak < 8 << 20, f"encryption peaked at {encrypt_peak / (1 << 20):.1f} MiB"
    assert decrypt_peak < 8 << 20, f"decryption peaked at {decrypt_peak / (1 << 20):.1f} MiB"


# --- S3 (moto's real HTTP server on loopback) ----------------------------------------------------------


def s3_head(options: S3Options, location: Location) -> Mapping[str, Any]:
    head: Mapping[str, Any] = s3_client(options).head_object(
        Bucket=location.bucket, Key=location.key, ChecksumMode="ENABLED"
    )
    return head


def s3_bytes(options: S3Options, location: Location) -> bytes:
    data: bytes = s3_client(options).get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    return data


@pytest.mark.integration
@pytest.mark.parametrize("multipart", [False, True], ids=["single-put", "multipart"])
def test_s3_round_trip_with_sse_kms_and_checksum(
    provider: LocalKeyProvider, tmp_path: Path, s3_options: S3Options, bucket: str, multipart: bool
) -> None:
    source = tmp_path / "model.bin"
    data = os.urandom(2 * MIN_PART_SIZE + 1000 if multipart else 300_000)
    source.write_bytes(data)
    target = Location.parse(f"s3://{bucket}/secure/model.bin.aisec", s3_options)
    upload: dict[str, Any] = {"multipart_threshold": MIN_PART_SIZE, "part_size": MIN_PART_SIZE}

    result = encrypt_file(
        Location.parse(source),
        target,
        provider,
        KEY,
        CONTEXT,
        sse_kms_key_id="alias/aisec-lake",
        **(upload if multipart else {}),
    )

    stored = s3_bytes(s3_options, target)
    head = s3_head(s3_options, target)
    assert result.uri == target.uri and result.etag == head["ETag"]
    assert result.sha256 == hashlib.sha256(stored).hexdigest() and result.bytes == len(stored)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "alias/aisec-lake")
    assert head["ETag"].strip('"').endswith("-3") == multipart
    if not multipart:  # a single PUT carries the whole-object checksum, which S3 verified on receipt
        assert base64.b64decode(head["ChecksumSHA256"]) == bytes.fromhex(result.sha256)
    assert MARKER not in stored

    restored = tmp_path / "restored.bin"
    decrypt_file(target, Location.parse(restored), provider, context=CONTEXT)
    assert restored.read_bytes() == data
    plain_copy = Location.parse(f"s3://{bucket}/clear/model.bin", s3_options)
    back = decrypt_file(target, plain_copy, provider, **(upload if multipart else {}))
    assert s3_bytes(s3_options, plain_copy) == data and back.sha256 == hashlib.sha256(data).hexdigest()
    assert "ServerSideEncryption" not in s3_head(s3_options, plain_copy)


@pytest.mark.integration
def test_s3_rewrap_keeps_the_objects_sse_kms_key(
    own_provider: LocalKeyProvider, tmp_path: Path, s3_options: S3Options, bucket: str
) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(sample_text(10_000))
    target = Location.parse(f"s3://{bucket}/a.csv.aisec", s3_options)
    encrypt_file(Location.parse(source), target, own_provider, KEY, CONTEXT, sse_kms_key_id="alias/lake")
    own_provider.rotate(KEY)

    result = rewrap_header(target, own_provider)

    head = s3_head(s3_options, target)
    assert result.header.key_version == 2 and result.etag == head["ETag"]
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "alias/lake")
    own_provider.destroy(KEY, 1)
    assert decrypt_bytes(s3_bytes(s3_options, target), own_provider) == source.read_bytes()


@pytest.mark.integration
def test_s3_failures_leave_no_object(
    provider: LocalKeyProvider, tmp_path: Path, s3_options: S3Options, bucket: str
) -> None:
    blob, _ = encrypt_bytes(sample_text(10 * SMALL), provider)  # 10 full chunks, the last one final
    source = Location.parse(f"s3://{bucket}/in.aisec", s3_options)
    client = s3_client(s3_options)
    client.put_object(Bucket=bucket, Key="in.aisec", Body=blob[:-1] + bytes([blob[-1] ^ 1]))
    target = Location.parse(f"s3://{bucket}/out.csv", s3_options)
    with pytest.raises(EncryptionError, match=f"chunk 9 of {source.uri} failed authentication"):
        decrypt_file(source, target, provider)
    with pytest.raises(DatasetIOError, match="does not exist"):
        decrypt_file(Location.parse(f"s3://{bucket}/missing.aisec", s3_options), target, provider)
    client.put_object(Bucket=bucket, Key="out.csv", Body=b"existing")
    client.put_object(Bucket=bucket, Key="in.aisec", Body=blob)
    with pytest.raises(ConcurrentModificationError, match="already exists"):
        decrypt_file(source, target, provider)
    assert s3_bytes(s3_options, target) == b"existing"
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert keys == ["in.aisec", "out.csv"]

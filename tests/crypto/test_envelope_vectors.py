"""Test vectors of the ``.aisec`` envelope format (docs/envelope-format.md).

Each vector in ``vectors/envelope/`` fixes every input (master key, data key, salt, nonce prefix, wrapped key,
context, chunk size, plaintext) and the exact bytes of the file. Three promises are checked against them:
our reader decrypts them, our writer reproduces them byte for byte from the same inputs, and a decoder written
here from the specification alone, with nothing but ``cryptography``'s primitives, decrypts them too — so the
specification is complete enough for anyone to read our files without our code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_aisec.crypto.envelope import decrypt_stream, encrypt_stream
from airflow_aisec.crypto.providers import Context, DataKey, LocalKeyProvider

VECTORS = Path(__file__).parent / "vectors" / "envelope"
FILES = sorted(VECTORS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vector


def keyring_with(path: Path, vector: dict[str, Any]) -> LocalKeyProvider:
    """A local keyring holding the vector's master key as version 1 of its key name."""
    material = base64.b64encode(bytes.fromhex(vector["master_key"])).decode()
    version = {"version": 1, "created": "2026-01-01T00:00:00+00:00", "state": "active", "material": material}
    ring = {
        "format": "aisec-keyring",
        "keys": {vector["key_name"]: {"kind": "symmetric", "versions": [version]}},
    }
    path.write_text(json.dumps(ring))
    path.chmod(0o600)
    return LocalKeyProvider(path)


class FixedDataKey(LocalKeyProvider):
    """The local provider, except that the "fresh" data key and its wrapped form are the vector's."""

    def __init__(self, keyring: Path, vector: dict[str, Any]) -> None:
        super().__init__(keyring)
        self.vector = vector

    def generate_data_key(self, key_name: str, context: Context) -> DataKey:
        v = self.vector
        return DataKey(bytes.fromhex(v["data_key"]), bytes.fromhex(v["wrapped_key"]), key_name, 1, "local")


def fixed_randomness(vector: dict[str, Any]) -> Any:
    """Returns the salt, then the nonce prefix: the order in which the writer draws them."""
    draws = [bytes.fromhex(vector["salt"]), bytes.fromhex(vector["nonce_prefix"])]

    def random_bytes(size: int) -> bytes:
        value = draws.pop(0)
        assert len(value) == size
        return value

    return random_bytes


def test_the_published_vectors_cover_every_chunk_shape() -> None:
    shapes = set()
    for path in FILES:
        vector = load(path)
        size, chunk = len(bytes.fromhex(vector["plaintext"])), vector["chunk_size"]
        shapes.add(
            "empty" if size == 0 else "partial" if size < chunk else "one" if size == chunk else "many"
        )
    assert shapes == {"empty", "partial", "one", "many"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_our_reader_decrypts_each_vector(path: Path, tmp_path: Path) -> None:
    vector = load(path)
    out = io.BytesIO()

    header = decrypt_stream(
        io.BytesIO(bytes.fromhex(vector["envelope"])), out, keyring_with(tmp_path / "ring.json", vector)
    )

    assert out.getvalue().hex() == vector["plaintext"]
    assert dict(header.context) == vector["context"] and header.chunk_size == vector["chunk_size"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_our_writer_reproduces_each_vector_byte_for_byte(path: Path, tmp_path: Path) -> None:
    vector = load(path)
    provider = FixedDataKey(tmp_path / "ring.json", vector)
    out = io.BytesIO()

    encrypt_stream(
        io.BytesIO(bytes.fromhex(vector["plaintext"])), out, provider, vector["key_name"], vector["context"],
        vector["chunk_size"], random_bytes=fixed_randomness(vector),
    )  # fmt: skip

    assert out.getvalue().hex() == vector["envelope"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_decoder_written_from_the_specification_decrypts_each_vector(path: Path) -> None:
    vector = load(path)

    plaintext = SpecDecoder(bytes.fromhex(vector["master_key"])).decrypt(bytes.fromhex(vector["envelope"]))

    assert plaintext.hex() == vector["plaintext"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_spec_decoder_refuses_a_truncated_or_extended_vector(path: Path) -> None:
    vector = load(path)
    data = bytes.fromhex(vector["envelope"])
    decoder = SpecDecoder(bytes.fromhex(vector["master_key"]))

    for broken in (data[:-1], data + b"\x00", data[:-16], data[:-1] + bytes([data[-1] ^ 1])):
        with pytest.raises(ValueError):
            decoder.decrypt(broken)


# --- an independent decoder, written from docs/envelope-format.md only ------------------------------------


class SpecDecoder:
    """Decrypts a version-1 envelope whose data key the local provider wrapped under ``master_key``."""

    def __init__(self, master_key: bytes) -> None:
        self.master_key = master_key

    def decrypt(self, data: bytes) -> bytes:
        if data[:8] != b"AISECENV" or len(data) < 13 or data[8] != 1:
            raise ValueError("not a version 1 envelope")
        (n,) = struct.unpack(">I", data[9:13])
        if n > 1 << 20 or len(data) < 13 + n + 32:
            raise ValueError("header truncated")
        meta_bytes, tag, body = data[13 : 13 + n], data[13 + n : 45 + n], data[45 + n :]
        meta = json.loads(meta_bytes.decode("ascii"))
        if set(meta) != {"chunk_size", "context", "key_name", "key_version", "nonce_prefix", "provider",
                         "salt", "wrapped_key"}:  # fmt: skip
            raise ValueError("unexpected metadata fields")
        if meta["provider"] != "local":
            raise ValueError("this decoder unwraps local wrapped keys only")
        salt = base64.b64decode(meta["salt"], validate=True)
        prefix = base64.b64decode(meta["nonce_prefix"], validate=True)
        chunk_size = meta["chunk_size"]
        if len(salt) != 16 or len(prefix) != 7 or not 1 <= chunk_size <= 64 << 20:
            raise ValueError("bad salt, nonce prefix or chunk size")
        context = canonical_context(meta["context"])
        data_key = self.unwrap(base64.b64decode(meta["wrapped_key"], validate=True), context)

        okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=b"AISECENV v1 keys").derive(data_key)
        payload_key, header_key = okm[:32], okm[32:]
        if not hmac.compare_digest(hmac.new(header_key, data[: 13 + n], hashlib.sha256).digest(), tag):
            raise ValueError("header tag mismatch")
        aad = hashlib.sha256(
            b"AISECENV" + bytes([1]) + struct.pack(">I", chunk_size) + salt + prefix + context
        ).digest()
        return self.chunks(AESGCM(payload_key), body, chunk_size + 16, prefix, aad)

    @staticmethod
    def chunks(aead: AESGCM, body: bytes, stride: int, prefix: bytes, aad: bytes) -> bytes:
        out, offset, index = [], 0, 0
        while True:
            chunk = body[offset : offset + stride]
            final = offset + stride >= len(body)  # nothing follows this chunk
            if len(chunk) < 16:
                raise ValueError("missing or incomplete chunk")
            nonce = prefix + struct.pack(">IB", index, 1 if final else 0)
            try:
                out.append(aead.decrypt(nonce, chunk, aad))
            except InvalidTag:
                raise ValueError(f"chunk {index} does not authenticate") from None
            if final:
                return b"".join(out)
            offset, index = offset + stride, index + 1

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        if len(wrapped) < 9 + 12 + 16 or wrapped[:5] != b"AISW\x01":
            raise ValueError("not a local wrapped key")
        header, nonce, sealed = wrapped[:9], wrapped[9:21], wrapped[21:]
        try:
            key = AESGCM(self.master_key).decrypt(nonce, sealed, header + context)
        except InvalidTag:
            raise ValueError("wrapped key does not unwrap") from None
        if len(key) != 32:
            raise ValueError("data key is not 32 bytes")
        return key


def canonical_context(context: dict[str, str]) -> bytes:
    """Keys sorted by code point, no whitespace, every non-ASCII character as a \\uXXXX escape."""

    def text(value: str) -> str:
        out = ['"']
        for ch in value:
            code = ord(ch)
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch in "\b\f\n\r\t":
                out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
            elif code < 0x20 or 0x7F <= code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            elif code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(ch)
        return "".join([*out, '"'])

    items = ",".join(f"{text(k)}:{text(v)}" for k, v in sorted(context.items()))
    return ("{" + items + "}").encode("ascii")

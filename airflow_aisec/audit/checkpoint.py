"""Signed checkpoints: C2SP tlog-checkpoint bodies inside C2SP signed notes with Ed25519 signatures.

A checkpoint commits the log to its origin, size and root hash::

    example.com/audit
    42
    <base64 root hash>

    — example.com/audit <base64(4-byte key ID ‖ 64-byte Ed25519 signature)>

The signature covers the note text (the body, including its final newline). The key ID is the first four
bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key), and verifier keys are written as
``<name>+<hex key ID>+<base64(0x01 ‖ public key)>``, as in the Go ``sumdb/note`` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from airflow_aisec.audit.merkle import HASH_SIZE
from airflow_aisec.exceptions import AisecError

ED25519_TYPE = 0x01
"""The signed-note signature type byte of Ed25519."""

MAX_SIGNATURES = 100
"""Notes with more signature lines are rejected, bounding the work an untrusted note can cause."""

_SIG_PREFIX = "\u2014 "  # EM DASH, SPACE
_KEY_ID_SIZE = 4
_SIGNATURE_SIZE = 64
_PUBLIC_KEY_SIZE = 32
_MAX_TREE_SIZE = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(AisecError, ValueError):
    """A checkpoint or signed note is malformed, not signed by the known key, or its signature is invalid.

    Notes come from untrusted storage, so messages name the part that is wrong, never its value.
    """


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its origin, size and RFC 6962 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise CheckpointError("checkpoint size must be an integer")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise CheckpointError("checkpoint size is outside 0..2^64-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        for line in self.extensions:
            _check_line(line, "extension line")

    def body(self) -> bytes:
        """The note text: origin, size, base64 root and any extension lines, each ending in a newline."""
        lines = (self.origin, str(self.size), _b64encode(self.root), *self.extensions)
        return "".join(f"{line}\n" for line in lines).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes | str) -> Checkpoint:
        """Read a checkpoint from its note text; raise :class:`CheckpointError` if it is malformed."""
        text = _decode_text(body)
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(f"checkpoint text needs origin, size and root lines, found {len(lines)}")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise CheckpointError("checkpoint size is not a decimal number without leading zeros")
        if len(size) > len(str(_MAX_TREE_SIZE)):  # before int(), which refuses very long numbers itself
            raise CheckpointError("checkpoint size is outside 0..2^64-1")
        return cls(origin, int(size), _b64decode(root, "root hash"), tuple(extensions))


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte signed-note key ID of an Ed25519 key: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]."""
    material = name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public_key
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


class Signer:
    """Signs note texts with an Ed25519 key under a key name (conventionally the log's origin)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_key_name(name)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("a checkpoint signer needs an Ed25519 private key")
        self._name = name
        self._private_key = private_key
        self._public_key = private_key.public_key().public_bytes_raw()
        self._key_id = key_id(name, self._public_key)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A signer with a freshly generated key."""
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def name(self) -> str:
        """The key name written in signature lines."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID."""
        return self._key_id

    def sign(self, body: bytes) -> str:
        """The signature line (ending in a newline) of the note text ``body``."""
        if not isinstance(body, bytes):
            raise TypeError("note text to sign must be bytes")
        _decode_text(body)
        if not body.endswith(b"\n"):
            raise CheckpointError("note text must end with a newline")
        signature = self._private_key.sign(body)
        return f"{_SIG_PREFIX}{self._name} {_b64encode(self._key_id + signature)}\n"

    def verifier_key(self) -> str:
        """The public verifier key string, ``<name>+<hex key ID>+<base64(0x01 ‖ public key)>``."""
        return _verifier_key(self._name, self._key_id, self._public_key)

    def verifier(self) -> Verifier:
        """The verifier of this signer's signatures."""
        return Verifier(self._name, self._private_key.public_key())


class Verifier:
    """Checks notes for a valid signature by one known Ed25519 key."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        _check_key_name(name)
        if not isinstance(public_key, Ed25519PublicKey):
            raise TypeError("a checkpoint verifier needs an Ed25519 public key")
        self._name = name
        self._public_key = public_key
        self._public_bytes = public_key.public_bytes_raw()
        self._key_id = key_id(name, self._public_bytes)

    @classmethod
    def from_key(cls, vkey: str) -> Verifier:
        """Parse a verifier key string; raise :class:`CheckpointError` if it is malformed or inconsistent."""
        # The base64 key may itself contain '+', so split off only the name and the key ID.
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("a verifier key is <name>+<hex key ID>+<base64 key>")
        name, id_hex, encoded = parts
        if not _KEY_ID_HEX.fullmatch(id_hex):
            raise CheckpointError("verifier key ID is not 8 hex digits")
        material = _b64decode(encoded, "verifier key")
        if len(material) != 1 + _PUBLIC_KEY_SIZE or material[0] != ED25519_TYPE:
            raise CheckpointError("verifier key is not an Ed25519 key (type 0x01 and 32 bytes)")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(material[1:])
        except ValueError:
            raise CheckpointError("verifier key is not a valid Ed25519 public key") from None
        verifier = cls(name, public_key)
        if verifier.key_id != bytes.fromhex(id_hex):
            raise CheckpointError("verifier key ID does not match the key name and public key")
        return verifier

    @property
    def name(self) -> str:
        """The key name expected in signature lines."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID."""
        return self._key_id

    def verifier_key(self) -> str:
        """The verifier key string this verifier was (or could have been) read from."""
        return _verifier_key(self._name, self._key_id, self._public_bytes)

    def open(self, note: str | bytes) -> bytes:
        """The text of a signed note once a signature by this key verifies; raise :class:`CheckpointError`.

        Per the signed-note spec, signatures by other keys (a different name or key ID) are ignored, so
        witnesses may cosign; a signature by this key that fails to verify rejects the whole note.
        """
        text, signatures = _split_note(note)
        verified = False
        for name, sig_key_id, signature in signatures:
            if name != self._name or sig_key_id != self._key_id:
                continue
            try:
                self._public_key.verify(signature, text)
            except InvalidSignature:
                raise CheckpointError(f"the signature by key {name!r} does not verify") from None
            verified = True
        if not verified:
            raise CheckpointError(f"the note has no signature by the known key {self._name!r}")
        return text

    def verify(self, note: str | bytes) -> Checkpoint:
        """The checkpoint in a signed note, once its signature by this key verifies."""
        return Checkpoint.parse(self.open(note))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The whole signed note of ``checkpoint``: its body, a blank line and the signature line."""
    body = checkpoint.body()
    return f"{body.decode('utf-8')}\n{signer.sign(body)}"


def open_checkpoint(note: str | bytes, verifier: Verifier, *, origin: str | None = None) -> Checkpoint:
    """The checkpoint of a signed note after verifying it; with ``origin``, also require that origin."""
    checkpoint = verifier.verify(note)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin is not the expected {origin!r}")
    return checkpoint


def _split_note(note: str | bytes) -> tuple[bytes, list[tuple[str, bytes, bytes]]]:
    """The note text (as bytes) and its (key name, key ID, signature) triples."""
    text = _decode_text(note)
    if not text.endswith("\n"):
        raise CheckpointError("a signed note must end with a newline")
    # The text may contain blank lines itself; the signatures follow the last one.
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointError("a signed note needs a blank line between its text and signatures")
    body, signature_block = text[: split + 1], text[split + 2 :]
    lines = signature_block[:-1].split("\n") if signature_block else []
    if not lines:
        raise CheckpointError("a signed note needs at least one signature line")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"a signed note may carry at most {MAX_SIGNATURES} signatures")
    return body.encode("utf-8"), [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    if not line.startswith(_SIG_PREFIX):
        raise CheckpointError("a signature line must start with an em dash and a space")
    name, space, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not space:
        raise CheckpointError("a signature line is '— <key name> <base64 signature>'")
    _check_key_name(name)
    raw = _b64decode(encoded, "signature")
    if len(raw) <= _KEY_ID_SIZE:
        raise CheckpointError("a signature must hold a 4-byte key ID and the signature bytes")
    return name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:]


def _verifier_key(name: str, key_id_: bytes, public_key: bytes) -> str:
    return f"{name}+{key_id_.hex()}+{_b64encode(bytes([ED25519_TYPE]) + public_key)}"


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise CheckpointError("a key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name) or _CONTROL.search(name):
        raise CheckpointError("a key name must not contain spaces, '+' or control characters")


def _check_line(line: str, what: str) -> None:
    if not isinstance(line, str) or not line:
        raise CheckpointError(f"checkpoint {what} must be a non-empty string")
    if "\n" in line or _CONTROL.search(line):
        raise CheckpointError(f"checkpoint {what} must not contain newlines or control characters")


def _decode_text(data: bytes | str) -> str:
    """``data`` as text, checked to be UTF-8 without control characters other than newline."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("a signed note must be valid UTF-8") from None
    elif isinstance(data, str):
        text = data
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise CheckpointError("a signed note must be valid UTF-8") from None
    else:
        raise CheckpointError(f"a signed note must be text or bytes, not {type(data).__name__}")
    if _CONTROL.search(text):
        raise CheckpointError("a signed note must not contain control characters other than newline")
    return text


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(encoded: str, what: str) -> bytes:
    """Strict standard base64: the alphabet, padding and a canonical encoding, so one value has one text."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{what} is not valid base64") from None
    if _b64encode(raw) != encoded:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw

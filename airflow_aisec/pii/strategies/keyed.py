"""The strategies that need a key: ``pseudonymize`` (keyed, irreversible tokens) and ``encrypt``
(deterministic AES-SIV, reversed by ``decrypt_values``); formats in the package docstring."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_aisec.catalog.models import DEFAULT_PSEUDONYM_KEY
from airflow_aisec.crypto.keyring import KeyVersion, LocalKeyring
from airflow_aisec.exceptions import KeyringError, PIIError
from airflow_aisec.pii.strategies.arrow import (
    Distinct,
    is_bytes,
    is_text,
    kernel_type,
    require_text,
    value_type_of,
)
from airflow_aisec.pii.strategies.base import Strategy, Target, Values

PSEUDONYM_KEY: Final = DEFAULT_PSEUDONYM_KEY  # a catalog dataset is masked with its subjects.pseudonym_key
ENCRYPTION_KEY: Final = "aisec-mask-encryption"
PSEUDONYM_PREFIX: Final = "pseu_"
ENCRYPTED_PREFIX: Final = "enc:v"

_PSEUDONYM_INFO: Final = b"aisec/pseudonymize/v1"
_ENCRYPTION_INFO: Final = b"aisec/mask-encryption/aes-siv/v1"
_ENCRYPTED = re.compile(r"enc:v([0-9]{1,9}):([A-Za-z0-9_-]+)")
_INT63: Final = (1 << 63) - 1


def _derive(key: KeyVersion, info: bytes, length: int, strategy: str) -> bytes:
    if key.kind != "symmetric" or len(key.material) < 16:
        raise PIIError(f"{strategy} needs a symmetric key of at least 16 bytes; {key!r} is not one")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key.material)


class _Hmac:
    """HMAC-SHA256 (RFC 2104) with both padded keys hashed once: about twice as fast per short value as
    ``hmac.digest``, which matters when every distinct value of a large column is hashed."""

    def __init__(self, key: bytes) -> None:
        block = key.ljust(64, b"\0")  # keys are 32 bytes, shorter than SHA-256's 64-byte block
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _pseudonymizer(value_type: Any, mac: _Hmac, column: str) -> Callable[[Any], Any]:
    if is_text(value_type):
        return lambda v: PSEUDONYM_PREFIX + mac(v.encode())[:16].hex()
    if pa.types.is_int64(value_type) or pa.types.is_uint64(value_type):
        return lambda v: int.from_bytes(mac(str(v).encode())[:8], "big") & _INT63
    if pa.types.is_integer(value_type):
        raise PIIError(
            f"pseudonymize of column {column!r} needs 64-bit integers ({value_type} pseudonyms would "
            f"collide); cast the column to int64 or use another strategy"
        )
    if is_bytes(value_type):
        return mac
    raise PIIError(
        f"pseudonymize needs a string, 64-bit integer or binary column; column {column!r} is {value_type}"
    )


def pseudonymize(values: Values, key: KeyVersion, *, column: str = "") -> Values:
    """Replace each value by its keyed HMAC-SHA256 token (format in the module docstring)."""
    value_type = value_type_of(values.type)
    token = _pseudonymizer(value_type, _Hmac(_derive(key, _PSEUDONYM_INFO, 32, "pseudonymize")), column)
    out_type = kernel_type(value_type)

    def tokens(distinct: Values) -> Values:
        return pa.array([None if v is None else token(v) for v in distinct.to_pylist()], out_type)

    return Distinct(values).map(tokens)


def pseudonym(value: str | int | bytes, key: KeyVersion) -> str | int | bytes:
    """The token ``pseudonymize`` gives one value (a ``str``, a 64-bit ``int`` or ``bytes``), e.g. to look
    a data subject up in a pseudonymized dataset."""
    if isinstance(value, str):
        value_type = pa.string()
    elif isinstance(value, bytes):
        value_type = pa.binary()
    else:
        value_type = pa.int64()
    result = pseudonymize(pa.array([value], value_type), key).to_pylist()[0]
    assert isinstance(result, str | int | bytes)
    return result


# -- encrypt --------------------------------------------------------------------------------------------


def _siv(key: KeyVersion, strategy: str) -> AESSIV:
    return AESSIV(_derive(key, _ENCRYPTION_INFO, 64, strategy))


def encrypt(values: Values, key: KeyVersion, *, column: str) -> Values:
    """Deterministic, reversible AES-SIV encryption bound to ``column`` (format in the module docstring)."""
    require_text(values, "encrypt", column)
    siv = _siv(key, "encrypt")
    associated = [column.encode()]
    prefix = f"{ENCRYPTED_PREFIX}{key.version}:"

    def seal(text: str) -> str:
        return prefix + base64.urlsafe_b64encode(siv.encrypt(text.encode(), associated)).rstrip(b"=").decode()

    def sealed(distinct: Values) -> Values:
        return pa.array([None if v is None else seal(v) for v in distinct.to_pylist()], pa.large_string())

    return Distinct(values).map(sealed)


class _Opener:
    """Decrypts ``enc:v<N>:...`` values, fetching each key version from the keyring once."""

    def __init__(self, keyring: LocalKeyring, key_name: str, column: str) -> None:
        self._keyring = keyring
        self._key_name = key_name
        self._column = column
        self._associated = [column.encode()]
        self._sivs: dict[int, AESSIV] = {}

    def _failed(self) -> PIIError:
        return PIIError(f"cannot decrypt column {self._column!r}: wrong key or tampered value")

    def _siv(self, version: int) -> AESSIV:
        if version not in self._sivs:
            try:
                key = self._keyring.get(self._key_name, version)
            except KeyringError as e:
                raise PIIError(
                    f"cannot decrypt column {self._column!r}: key {self._key_name!r} version {version} "
                    f"is not available ({e})"
                ) from None
            self._sivs[version] = _siv(key, "decrypt")
        return self._sivs[version]

    def __call__(self, text: str) -> str:
        match = _ENCRYPTED.fullmatch(text)
        if match is None:
            raise self._failed()
        siv = self._siv(int(match[1]))
        payload = match[2]
        try:
            sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            return siv.decrypt(sealed, self._associated).decode()
        except (InvalidTag, ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
            raise self._failed() from None


def decrypt_values(values: Values, keyring: LocalKeyring, key_name: str, column: str) -> Values:
    """Reverse ``encrypt``: the original strings, same type, nulls kept; any value that does not decrypt
    with ``key_name`` for ``column`` raises ``PIIError`` (without the value)."""
    require_text(values, "decrypt", column)
    opener = _Opener(keyring, key_name, column)

    def opened(distinct: Values) -> Values:
        return pa.array([None if v is None else opener(v) for v in distinct.to_pylist()], pa.large_string())

    return Distinct(values).map(opened)


def _key(strategy: str, target: Target) -> KeyVersion:
    if target.key is None:
        raise PIIError(f"{strategy} of column {target.column!r} needs a key")
    return target.key


def _pseudonymize(values: Values, options: Mapping[str, Any], target: Target) -> Values:
    return pseudonymize(values, _key("pseudonymize", target), column=target.column)


def _encrypt(values: Values, options: Mapping[str, Any], target: Target) -> Values:
    return encrypt(values, _key("encrypt", target), column=target.column)


# ``key`` names the keyring key; the masker reads it (see ``mask``) and hands the strategy its version.
PSEUDONYMIZE: Final = Strategy("pseudonymize", {"key": PSEUDONYM_KEY}, _pseudonymize)
ENCRYPT: Final = Strategy("encrypt", {"key": ENCRYPTION_KEY}, _encrypt)

"""Key providers: one interface over the local keyring and AWS KMS.

Data is encrypted with fresh data keys; providers only create, wrap and unwrap those data keys under named,
versioned master keys that never leave the provider. The encryption context (dataset, column, ...) is bound
to every wrapped key, so a wrapped key moved to another dataset or column does not unwrap.
"""

from __future__ import annotations

import abc
import json
import os
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import KeyringError

DATA_KEY_BYTES = 32  # AES-256
Context = Mapping[str, str]


@dataclass(frozen=True)
class DataKey:
    """A fresh data key: ``plaintext`` encrypts data and is never stored; ``wrapped`` is stored with it."""

    plaintext: bytes = field(repr=False)
    wrapped: bytes
    key_name: str
    key_version: int
    provider: str

    def __repr__(self) -> str:  # the plaintext key must never reach a log or a traceback
        return f"DataKey({self.provider}:{self.key_name} v{self.key_version}, <plaintext hidden>)"


class KeyProvider(abc.ABC):
    """Master keys that create, wrap and unwrap data keys."""

    kind: str = ""
    production_ready: bool = True

    @abc.abstractmethod
    def create(self, key_name: str) -> int:
        """Create master key ``key_name`` (idempotent); return its active version."""

    @abc.abstractmethod
    def wrap(self, key_name: str, plaintext: bytes, context: Context) -> tuple[bytes, int]:
        """Encrypt a data key under the active version of ``key_name``; return (wrapped, version)."""

    @abc.abstractmethod
    def unwrap(self, key_name: str, wrapped: bytes, context: Context) -> bytes:
        """Decrypt a wrapped data key; raise ``KeyringError`` on a wrong key, context or tampered blob."""

    @abc.abstractmethod
    def versions(self, key_name: str) -> list[dict[str, Any]]:
        """Every version of ``key_name``: ``{"version", "state", "created"}`` (no key material)."""

    @abc.abstractmethod
    def rotate(self, key_name: str) -> int:
        """Make a new active version; older versions still unwrap. Return the new version."""

    @abc.abstractmethod
    def destroy(self, key_name: str, version: int | None = None) -> bool:
        """Destroy one version (or all): what it wrapped can never be unwrapped again. True if changed."""

    def generate_data_key(self, key_name: str, context: Context) -> DataKey:
        """A fresh 256-bit data key and its wrapped form under ``key_name``."""
        plaintext = secrets.token_bytes(DATA_KEY_BYTES)
        wrapped, version = self.wrap(key_name, plaintext, context)
        return DataKey(plaintext, wrapped, key_name, version, self.kind)


def context_bytes(context: Context) -> bytes:
    """Canonical bytes of an encryption context (bound as associated data)."""
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode("utf-8")


_LOCAL_MAGIC = b"AISW"  # aisec local wrapped key, format 1
_LOCAL_HEADER = struct.Struct(">4sBI")  # magic, format, master key version


class LocalKeyProvider(KeyProvider):
    """Master keys in the local keyring file: the embedded default, NOT for production (use a KMS)."""

    kind = "local"
    production_ready = False

    def __init__(self, keyring: LocalKeyring | str | os.PathLike[str]) -> None:
        self.keyring = keyring if isinstance(keyring, LocalKeyring) else LocalKeyring(keyring)

    def __repr__(self) -> str:
        return f"LocalKeyProvider({self.keyring!r})"

    def create(self, key_name: str) -> int:
        return self.keyring.ensure(key_name, "symmetric").version

    def wrap(self, key_name: str, plaintext: bytes, context: Context) -> tuple[bytes, int]:
        master = self.keyring.get(key_name)
        nonce = secrets.token_bytes(12)
        header = _LOCAL_HEADER.pack(_LOCAL_MAGIC, 1, master.version)
        sealed = AESGCM(master.material).encrypt(nonce, plaintext, header + context_bytes(context))
        return header + nonce + sealed, master.version

    def unwrap(self, key_name: str, wrapped: bytes, context: Context) -> bytes:
        if len(wrapped) < _LOCAL_HEADER.size + 12 + 16:
            raise KeyringError(f"wrapped data key for {key_name!r} is truncated")
        header = wrapped[: _LOCAL_HEADER.size]
        magic, fmt, version = _LOCAL_HEADER.unpack(header)
        if magic != _LOCAL_MAGIC or fmt != 1:
            raise KeyringError(f"not a local wrapped data key for {key_name!r}")
        master = self.keyring.get(key_name, version)
        nonce = wrapped[_LOCAL_HEADER.size : _LOCAL_HEADER.size + 12]
        try:
            return AESGCM(master.material).decrypt(
                nonce, wrapped[_LOCAL_HEADER.size + 12 :], header + context_bytes(context)
            )
        except InvalidTag:
            raise KeyringError(
                f"cannot unwrap data key with {key_name!r} v{version}: wrong key or context, or tampered"
            ) from None

    def versions(self, key_name: str) -> list[dict[str, Any]]:
        return [
            {"version": v.version, "state": v.state, "created": v.created}
            for v in self.keyring.versions(key_name)
        ]

    def rotate(self, key_name: str) -> int:
        return self.keyring.rotate(key_name).version

    def destroy(self, key_name: str, version: int | None = None) -> bool:
        return self.keyring.destroy(key_name, version)

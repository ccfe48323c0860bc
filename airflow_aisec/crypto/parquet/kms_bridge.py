"""The bridge from pyarrow's KMS client interface to our ``KeyProvider``, and the errors it reports.

Each operation uses a fresh ``CryptoFactory`` (``new_factory``), so no key-encryption key is shared between
files and no unwrapped key outlives the operation in pyarrow's cache.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet.encryption as pe

from airflow_aisec.crypto.providers import KeyProvider
from airflow_aisec.exceptions import DatasetIOError, EncryptionError


class ProviderKms(pe.KmsClient):  # type: ignore[misc]  # pyarrow is untyped
    """pyarrow's KMS client interface over a ``KeyProvider``; remembers the first failure for the message.

    Exceptions raised here reach the caller of pyarrow unchanged, but pyarrow may also wrap them, so the
    failure is kept to name it in our own error (providers' messages never contain key material).
    """

    def __init__(self, provider: KeyProvider) -> None:
        super().__init__()
        self.provider = provider
        self.failure: Exception | None = None
        self.versions: dict[str, int] = {}

    @staticmethod
    def context(master_key: str) -> dict[str, str]:
        """The encryption context bound to every KEK: it unwraps only as a Parquet KEK of this master key."""
        return {"aisec": "parquet-kek", "master_key": master_key}

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        """Wrap a KEK under the active version of the master key; pyarrow stores the text form."""
        try:
            wrapped, version = self.provider.wrap(
                master_key_identifier, bytes(key_bytes), self.context(master_key_identifier)
            )
        except Exception as exc:
            self.failure = self.failure or exc
            raise
        self.versions[master_key_identifier] = version
        return base64.b64encode(wrapped).decode("ascii")

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        """Unwrap a KEK with whichever master key version wrapped it."""
        try:
            blob = base64.b64decode(wrapped_key, validate=True)
            return self.provider.unwrap(master_key_identifier, blob, self.context(master_key_identifier))
        except binascii.Error:
            self.failure = self.failure or EncryptionError(
                f"the key material of master key {master_key_identifier!r} is corrupt (not base64)"
            )
            raise self.failure from None
        except Exception as exc:
            self.failure = self.failure or exc
            raise


def new_factory(provider: KeyProvider) -> tuple[Any, ProviderKms]:
    """A fresh CryptoFactory whose KMS client is a new bridge to ``provider`` (returned to read failures)."""
    kms = ProviderKms(provider)
    return pe.CryptoFactory(lambda _config: kms), kms


def kms_config() -> Any:
    """Connection settings for pyarrow's KMS client factory (ours need none)."""
    return pe.KmsConnectionConfig()


@contextlib.contextmanager
def crypto_errors(kms: ProviderKms, what: str) -> Iterator[None]:
    """Turn provider and pyarrow failures into ``EncryptionError`` that says ``what`` failed, and why."""
    try:
        yield
    except (EncryptionError, DatasetIOError):
        raise
    except Exception as exc:
        if kms.failure is not None:
            raise EncryptionError(f"{what}: {kms.failure}") from None
        if isinstance(exc, OSError):
            # pyarrow's messages name the failing step ("Failed decryption finalization"), never a key.
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise EncryptionError(
                f"{what}: {detail} (the file is corrupt or was modified, or does not match its key material)"
            ) from None
        # Other Arrow errors may quote data values, so only their type is named.
        raise EncryptionError(f"{what}: {type(exc).__name__}") from None

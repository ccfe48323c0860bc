"""Per-subject encryption of chosen columns, so an erasure reaches copies nobody can rewrite.

With ``encryption.per_subject_columns`` in the catalog, each value of those columns is sealed with its
subject's own key (``subject/<pseudonym>``: in the local keyring, or wrapped by AWS KMS, see
``airflow_aisec.crypto.subjects``) before the file is written. Backups, old object versions and exports keep
the sealed value; once ``aisec keys shred --subject-id X`` destroys that key, the subject's values cannot be
decrypted anywhere, while every other subject's values still can.

A sealed value is text: ``subj:v1:<pseudonym>:<base64url(nonce ‖ AES-256-GCM ciphertext)>``. The pseudonym
(never the raw identifier) names the key; the column name is bound as associated data.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.subjects import SUBJECT_KEY_PREFIX, KeyringSubjectKeys, SubjectKeys
from airflow_aisec.exceptions import KeyringError

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog, Dataset

PREFIX = "subj:v1:"
_NONCE = 12


def subject_column(catalog: Catalog, dataset: Dataset) -> str | None:
    """The column of ``dataset`` naming each row's subject: its identity column, or a reference to one."""
    for identity in catalog.subjects.identities:
        if identity in dataset.identity:
            return dataset.identity[identity]
    for column, (target, target_column) in dataset.reference_targets().items():
        parent = catalog.datasets.get(target)
        if parent is not None and target_column in parent.identity.values():
            return column
    return None


class SubjectSealer:
    """Seals and opens per-subject column values with keys from a store (a keyring is the local store)."""

    def __init__(self, keys: SubjectKeys | LocalKeyring, pseudonym: Callable[[str], str]) -> None:
        self.store = KeyringSubjectKeys(keys) if isinstance(keys, LocalKeyring) else keys
        self.keyring = keys if isinstance(keys, LocalKeyring) else None
        self._pseudonym = pseudonym
        self._keys: dict[str, bytes | None] = {}

    def __repr__(self) -> str:
        return f"SubjectSealer({self.store!r})"

    def _name(self, subject_id: str) -> str:
        return SUBJECT_KEY_PREFIX + self._pseudonym(subject_id).removeprefix("hmac-sha256:")

    def _key(self, name: str, create: bool) -> bytes | None:
        """The subject's key; None when shredded (opening), an error when shredded (sealing).

        A store that cannot be read is an error either way: a value is null only when its key is gone.
        """
        if name not in self._keys or (create and self._keys[name] is None):
            # Sealing new data for a shredded subject fails loudly (the store raises).
            self._keys[name] = self.store.key(name, create=create)
        return self._keys[name]

    def seal(
        self, values: pa.Array | pa.ChunkedArray, subjects: pa.Array | pa.ChunkedArray, column: str
    ) -> pa.Array:
        """Seal each non-null value with its row's subject key (rows without a subject stay as they are)."""
        out: list[str | None] = []
        for value, subject in zip(values.to_pylist(), subjects.to_pylist(), strict=True):
            if value is None or subject is None or str(value).startswith(PREFIX):
                out.append(value)
                continue
            name = self._name(str(subject))
            key = self._key(name, create=True)
            if key is None:  # unreachable: _key raises for a shredded subject when creating
                raise KeyringError("per-subject key unavailable")
            nonce = secrets.token_bytes(_NONCE)
            sealed = AESGCM(key).encrypt(nonce, str(value).encode("utf-8"), column.encode("utf-8"))
            token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
            out.append(f"{PREFIX}{name.removeprefix(SUBJECT_KEY_PREFIX)}:{token}")
        return pa.array(out, type=pa.string())

    def open(self, values: pa.Array | pa.ChunkedArray, column: str) -> pa.Array:
        """Open sealed values; values of shredded subjects become null; other values pass through."""
        out: list[str | None] = []
        for value in values.to_pylist():
            out.append(
                self._open_one(value, column)
                if isinstance(value, str) and value.startswith(PREFIX)
                else value
            )
        return pa.array(out, type=pa.string())

    def _open_one(self, value: str, column: str) -> str | None:
        pseudonym, _, token = value[len(PREFIX) :].partition(":")
        key = self._key(SUBJECT_KEY_PREFIX + pseudonym, create=False)
        if key is None:
            return None  # shredded: gone for good
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        try:
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], column.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise KeyringError(
                f"column {column}: a sealed value does not open (wrong key or tampered)"
            ) from None


def seal_batch(
    batch: pa.RecordBatch, columns: list[str], subject: str, sealer: SubjectSealer
) -> pa.RecordBatch:
    """``batch`` with ``columns`` sealed per subject (the subject column itself stays readable)."""
    if not columns:
        return batch
    arrays = [
        sealer.seal(batch.column(i), batch.column(subject), name) if name in columns else batch.column(i)
        for i, name in enumerate(batch.schema.names)
    ]
    schema = pa.schema([pa.field(f.name, pa.string()) if f.name in columns else f for f in batch.schema])
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def open_batch(batch: pa.RecordBatch, columns: list[str], sealer: SubjectSealer) -> pa.RecordBatch:
    """``batch`` with sealed ``columns`` opened (values of shredded subjects are null)."""
    present = [c for c in columns if c in batch.schema.names]
    if not present:
        return batch
    arrays = [
        sealer.open(batch.column(i), name) if name in present else batch.column(i)
        for i, name in enumerate(batch.schema.names)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)

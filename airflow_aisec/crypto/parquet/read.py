"""Reading encrypted Parquet files: decryption properties, decrypted batches and the schema."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe

from airflow_aisec.crypto.parquet.kms_bridge import ProviderKms, crypto_errors, kms_config, new_factory
from airflow_aisec.crypto.parquet.material import file_id_of, locate_anchor, open_parquet, stored_file_id
from airflow_aisec.crypto.providers import KeyProvider
from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io.formats import DEFAULT_BATCH_SIZE, display_path
from airflow_aisec.io.storage import Location


def new_decryption(
    provider: KeyProvider, km_fs: pafs.FileSystem, anchor: str, where: str
) -> tuple[Any, ProviderKms]:
    """Decryption properties reading the key material at ``anchor`` in ``km_fs``, and their KMS bridge."""
    factory, kms = new_factory(provider)
    with crypto_errors(kms, f"cannot decrypt {where}"):
        config = pe.DecryptionConfiguration()
        props = factory.file_decryption_properties(kms_config(), config, anchor, km_fs)
    return props, kms


def decryption_properties(
    provider: KeyProvider, fs: pafs.FileSystem, path: str
) -> pq.FileDecryptionProperties:
    """Decryption properties of the encrypted Parquet file at ``path`` (keys unwrap when first needed)."""
    where = display_path(fs, path)
    file_id = stored_file_id(fs, path, where)
    props, _ = new_decryption(provider, fs, locate_anchor(fs, path, file_id, where), where)
    return props


@dataclass(frozen=True)
class KeyMaterialAt:
    """Where the key material of a file is, when it is not beside the file under its id (staging)."""

    fs: pafs.FileSystem
    anchor: str


def decrypted_batches(
    fs: pafs.FileSystem,
    path: str,
    provider: KeyProvider,
    *,
    columns: Sequence[str] | None,
    batch_size: int,
    key_material: KeyMaterialAt | None = None,
) -> Iterator[pa.RecordBatch]:
    """Decrypted batches of the file at ``path``; its key material is beside it, or at ``key_material``."""
    where = display_path(fs, path)
    if batch_size < 1:
        raise DatasetIOError(f"batch_size must be positive, got {batch_size}")
    with open_parquet(fs, path, where) as source:
        file_id = file_id_of(source, where)
        if key_material is None:
            key_material = KeyMaterialAt(fs, locate_anchor(fs, path, file_id, where))
        props, kms = new_decryption(provider, key_material.fs, key_material.anchor, where)
        with crypto_errors(kms, f"cannot decrypt {where}"):
            parquet = pq.ParquetFile(source, decryption_properties=props)
            wanted = list(columns) if columns is not None else None
            if wanted is not None:
                missing = [c for c in wanted if c not in parquet.schema_arrow.names]
                if missing:
                    raise DatasetIOError(f"{where} has no column(s) {', '.join(missing)}")
            yield from parquet.iter_batches(batch_size=batch_size, columns=wanted, use_threads=True)


def read_encrypted_batches(
    location: Location,
    provider: KeyProvider,
    columns: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pa.RecordBatch]:
    """Stream an encrypted Parquet file as decrypted record batches of at most ``batch_size`` rows.

    Only the footer key and the keys of the selected ``columns`` are unwrapped. A plaintext file, missing
    key material, a wrong or destroyed key, or a modified file raise ``EncryptionError`` naming the file.
    """
    return decrypted_batches(
        location.filesystem(), location.path, provider, columns=columns, batch_size=batch_size
    )


def encrypted_schema(location: Location, provider: KeyProvider) -> pa.Schema:
    """The Arrow schema of an encrypted Parquet file (needs the footer key)."""
    fs = location.filesystem()
    where = display_path(fs, location.path)
    with open_parquet(fs, location.path, where) as source:
        file_id = file_id_of(source, where)
        props, kms = new_decryption(provider, fs, locate_anchor(fs, location.path, file_id, where), where)
        with crypto_errors(kms, f"cannot decrypt {where}"):
            return pq.ParquetFile(source, decryption_properties=props).schema_arrow

"""Writing encrypted Parquet files: fresh data keys per file, verified and published with their key material.

See the package docstring for the order of the steps and why a crash at any point leaves a readable file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe

from airflow_aisec.crypto.parquet.columns import ColumnKeys, check_columns, column_keys
from airflow_aisec.crypto.parquet.kms_bridge import ProviderKms, crypto_errors, kms_config, new_factory
from airflow_aisec.crypto.parquet.material import (
    current_key_material,
    delete_quietly,
    file_anchor,
    is_encrypted_parquet,
    key_material_path,
    open_parquet,
    store_key_material,
    stored_file_id,
    with_path,
)
from airflow_aisec.crypto.parquet.read import KeyMaterialAt, decrypted_batches, encrypted_schema
from airflow_aisec.crypto.providers import KeyProvider
from airflow_aisec.exceptions import DatasetIOError, EncryptionError, VerificationError
from airflow_aisec.io.atomic import AtomicWriter, WriteResult, atomic_write
from airflow_aisec.io.formats import DEFAULT_BATCH_SIZE, display_path, read_batches
from airflow_aisec.io.staging import Publication, create_staging, publish
from airflow_aisec.io.storage import Location
from airflow_aisec.io.writers import ParquetBatchWriter

log = logging.getLogger(__name__)

ALGORITHM: Final = "AES_GCM_V1"
DATA_KEY_BITS: Final = 256
ROW_GROUP_ROWS: Final = 131_072


@dataclass(frozen=True)
class EncryptedWriteResult(WriteResult):
    """A committed encrypted file: ``key_material`` is the URI of its key material file, ``master_keys``
    the version of every master key its data keys were wrapped under."""

    key_material: str = ""
    master_keys: Mapping[str, int] = field(default_factory=dict)


# --- properties -------------------------------------------------------------------------------------------


def _encryption_config(key_name: str, keys: ColumnKeys) -> Any:
    return pe.EncryptionConfiguration(
        footer_key=key_name,
        column_keys={key: list(names) for key, names in keys.items()},
        encryption_algorithm=ALGORITHM,
        plaintext_footer=False,
        double_wrapping=True,
        internal_key_material=False,
        data_key_length_bits=DATA_KEY_BITS,
    )


def _new_encryption(
    provider: KeyProvider, key_name: str, keys: ColumnKeys, fs: pafs.FileSystem, anchor: str, where: str
) -> tuple[Any, ProviderKms]:
    factory, kms = new_factory(provider)
    with crypto_errors(kms, f"cannot encrypt {where}"):
        props = factory.file_encryption_properties(
            kms_config(), _encryption_config(key_name, keys), anchor, fs
        )
    return props, kms


def encryption_properties(
    provider: KeyProvider,
    key_name: str,
    columns: Sequence[str] | ColumnKeys,
    fs: pafs.FileSystem,
    path: str,
) -> pq.FileEncryptionProperties:
    """Fresh encryption properties (new data keys) for ONE file to be written at ``path`` in ``fs``.

    The footer key is ``key_name``; ``columns`` are encrypted with it, or map master keys to their columns.
    The key material is written now, as ``_KEY_MATERIAL_FOR_<name>.json`` beside ``path`` (pyarrow's
    convention); ``decryption_properties`` and ``rotate_file_keys`` find it there. Column names are checked
    by pyarrow when the writer opens; ``encrypt_parquet_file`` checks them first and names the unknown ones.
    """
    keys = column_keys(key_name, columns)
    props, _ = _new_encryption(provider, key_name, keys, fs, path, display_path(fs, path))
    return props


# --- writing ----------------------------------------------------------------------------------------------


class EncryptedWriter(AtomicWriter):
    """The writer yielded by ``atomic_write_encrypted``; ``result`` is an ``EncryptedWriteResult``."""

    @property
    def result(self) -> EncryptedWriteResult:
        """The committed file; raises ``DatasetIOError`` before the ``with`` block has exited cleanly."""
        result = super().result
        assert isinstance(result, EncryptedWriteResult)
        return result


@dataclass
class _Staging:
    """The temporary data file of a write and its key material, and what to clean up."""

    target: Location
    path: str
    published_key_material: Location | None = None

    @property
    def key_material(self) -> str:
        return key_material_path(self.path)

    def cleanup(self) -> None:
        local = pafs.LocalFileSystem()
        for path in (self.path, self.key_material):
            delete_quietly(local, path)
        if self.published_key_material is not None:
            # The data swap failed after the key material was published under the new file's id.
            delete_quietly(self.target.filesystem(), self.published_key_material.path)


def _open_encrypted_writer(
    staging: _Staging, schema: pa.Schema, props: Any, kms: ProviderKms, row_group_rows: int
) -> ParquetBatchWriter:
    where = staging.target.uri
    stream = pafs.LocalFileSystem().open_output_stream(staging.path)
    try:
        with crypto_errors(kms, f"cannot encrypt {where}"):
            return ParquetBatchWriter(
                stream, schema, where, row_group_rows=row_group_rows, encryption_properties=props
            )
    except BaseException:
        stream.close()
        raise


def _verify_staging(staging: _Staging, provider: KeyProvider, expected_rows: int) -> None:
    """Decrypt the new version in full: every row must come back, with every key unwrapping."""
    local = pafs.LocalFileSystem()
    where = staging.target.uri
    try:
        batches = decrypted_batches(
            local,
            staging.path,
            provider,
            columns=None,
            batch_size=DEFAULT_BATCH_SIZE,
            key_material=KeyMaterialAt(local, staging.path),
        )
        rows = sum(batch.num_rows for batch in batches)
    except (EncryptionError, DatasetIOError) as exc:
        raise VerificationError(
            f"the new version of {where} does not decrypt ({exc}); the original is untouched"
        ) from None
    if rows != expected_rows:
        raise VerificationError(
            f"the new version of {where} holds {rows} rows but {expected_rows} were written; "
            "the original is untouched"
        )


def _publish_key_material(staging: _Staging, file_id: str) -> Location:
    """Put the staged key material under the final, id-based name beside the target (before the data)."""
    target = staging.target
    final = with_path(target, key_material_path(file_anchor(target.path, file_id)))
    try:
        store_key_material(staging.key_material, target, final.path)
    except OSError as exc:
        raise DatasetIOError(f"cannot store the key material of {target.uri}: {exc}") from exc
    staging.published_key_material = final
    return final


@contextlib.contextmanager
def atomic_write_encrypted(
    target: Location,
    schema: pa.Schema,
    provider: KeyProvider,
    key_name: str,
    columns: Sequence[str] | ColumnKeys,
    *,
    expected_etag: str | None = None,
    overwrite: bool = False,
    verify: bool = True,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> Iterator[EncryptedWriter]:
    """Write a new encrypted version of the Parquet file ``target``; swap it in when the block exits cleanly.

    ``expected_etag`` and ``overwrite`` behave as in ``atomic_write``. With ``verify`` the new version is
    decrypted in full before it replaces anything. After the block, ``writer.result`` is the
    ``EncryptedWriteResult``. See the package docstring for where the key material goes and why.
    """
    keys = column_keys(key_name, columns)
    check_columns(schema, keys, target.uri)
    plan = Publication(target, "parquet", expected_etag, overwrite)
    plan.check()
    staging = _Staging(target, create_staging(target, "parquet"))
    try:
        # The key material is written now, beside the staging file and under its name.
        props, kms = _new_encryption(
            provider, key_name, keys, pafs.LocalFileSystem(), staging.path, target.uri
        )
        sink = _open_encrypted_writer(staging, schema, props, kms, row_group_rows)
        writer = EncryptedWriter(target, sink)
        try:
            yield writer
            sink.close()
        except BaseException:
            sink.abort()
            raise
        writer.committed(_commit(staging, plan, provider, writer.rows, verify, dict(kms.versions)))
    finally:
        staging.cleanup()


def _commit(
    staging: _Staging,
    plan: Publication,
    provider: KeyProvider,
    rows: int,
    verify: bool,
    versions: dict[str, int],
) -> EncryptedWriteResult:
    """Verify, publish the key material, swap the data in, then drop the replaced version's key material."""
    target = staging.target
    if verify:
        _verify_staging(staging, provider, rows)
    file_id = stored_file_id(pafs.LocalFileSystem(), staging.path, target.uri)
    replaced = current_key_material(target)
    final = _publish_key_material(staging, file_id)
    published = publish(staging.path, plan)
    staging.published_key_material = None  # it now belongs to the committed file
    if replaced is not None and replaced.path != final.path:
        delete_quietly(target.filesystem(), replaced.path)
    return EncryptedWriteResult(
        target.uri, rows, published.size, published.sha256, published.etag, final.uri, versions
    )


def _source_batches(source: Location, provider: KeyProvider, batch_size: int) -> tuple[pa.Schema, Any]:
    """The schema and batches of a Parquet file, decrypted if it is encrypted."""
    fs = source.filesystem()
    if is_encrypted_parquet(fs, source.path):
        batches = decrypted_batches(fs, source.path, provider, columns=None, batch_size=batch_size)
        return encrypted_schema(source, provider), batches
    with open_parquet(fs, source.path, source.uri) as handle:
        try:
            schema = pq.ParquetFile(handle).schema_arrow
        except (OSError, pa.ArrowInvalid):
            raise DatasetIOError(f"{source.uri} is not a readable parquet file") from None
    return schema, read_batches(fs, source.path, "parquet", batch_size=batch_size)


def encrypt_parquet_file(
    source: Location,
    target: Location,
    provider: KeyProvider,
    key_name: str,
    columns: Sequence[str] | ColumnKeys,
    *,
    expected_etag: str | None = None,
    overwrite: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    transform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> EncryptedWriteResult:
    """Encrypt the Parquet file ``source`` into ``target`` (may be the same file), streaming batches.

    The footer and ``columns`` are encrypted under ``key_name`` (or ``columns`` maps master keys to their
    columns). An encrypted ``source`` is decrypted with ``provider`` first (re-encryption). Unknown columns
    raise ``EncryptionError`` naming them; nothing is written then. ``transform`` (schema-preserving, e.g.
    per-subject sealing) is applied to each batch before it is encrypted.
    """
    schema, batches = _source_batches(source, provider, batch_size)
    with atomic_write_encrypted(
        target, schema, provider, key_name, columns, expected_etag=expected_etag, overwrite=overwrite
    ) as writer:
        for batch in batches:
            writer.write(transform(batch) if transform is not None else batch)
    result = writer.result
    versions = ", ".join(f"{k} v{v}" for k, v in sorted(result.master_keys.items()))
    log.info("encrypted %s into %s (%d rows) under %s", source.uri, target.uri, result.rows, versions)
    return result


def decrypt_parquet_file(
    source: Location,
    target: Location,
    provider: KeyProvider,
    *,
    expected_etag: str | None = None,
    overwrite: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    transform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> WriteResult:
    """Decrypt the encrypted Parquet file ``source`` into a plaintext ``target`` (may be the same file).

    Written through ``atomic_write``: on any failure (wrong key, modified file) ``target`` is untouched.
    A local ``target`` is owner-only (0600), as it holds plaintext, even when it replaces a file.
    ``transform`` (schema-preserving, e.g. opening per-subject sealed values) is applied to each batch.
    """
    schema = encrypted_schema(source, provider)
    batches = decrypted_batches(
        source.filesystem(), source.path, provider, columns=None, batch_size=batch_size
    )
    replaced = current_key_material(target)
    with atomic_write(
        target, "parquet", schema, expected_etag=expected_etag, overwrite=overwrite, new_file_mode=0o600
    ) as writer:
        for batch in batches:
            writer.write(transform(batch) if transform is not None else batch)
    if replaced is not None:
        # The target was an encrypted file (e.g. decrypted in place): its key material is now garbage.
        delete_quietly(target.filesystem(), replaced.path)
    log.info("decrypted %s into %s (%d rows)", source.uri, target.uri, writer.result.rows)
    return writer.result

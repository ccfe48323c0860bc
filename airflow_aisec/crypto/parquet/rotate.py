"""Key rotation of encrypted Parquet files: the key material is re-wrapped, the data file is not rewritten."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import pyarrow.fs as pafs

from airflow_aisec.crypto.parquet.kms_bridge import crypto_errors, kms_config, new_factory
from airflow_aisec.crypto.parquet.material import (
    key_material_path,
    locate_anchor,
    store_key_material,
    stored_file_id,
)
from airflow_aisec.crypto.parquet.read import KeyMaterialAt, decrypted_batches
from airflow_aisec.crypto.providers import KeyProvider
from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io.formats import display_path
from airflow_aisec.io.storage import Location

log = logging.getLogger(__name__)

_KMS_CACHE_SECONDS = 60.0


def _rotation_folder(location: Location) -> str:
    # Beside the data (same filesystem, so the final rename is atomic); a hidden name, skipped by listings.
    parent = None if location.is_s3 else os.path.dirname(location.path)
    return tempfile.mkdtemp(prefix=".aisec-rotate-", dir=parent)


def _copy_to_local(fs: pafs.FileSystem, path: str, local_path: str, where: str) -> None:
    try:
        with fs.open_input_stream(path) as source, open(local_path, "wb") as out:
            out.write(source.read())
    except OSError as exc:
        raise DatasetIOError(f"cannot read the key material of {where}: {exc}") from exc


def _replace_key_material(location: Location, staged: str, final: str) -> None:
    try:
        store_key_material(staged, location, final)
    except OSError as exc:
        raise DatasetIOError(f"cannot store the rotated key material of {location.uri}: {exc}") from exc


def _check_rotated(location: Location, provider: KeyProvider, staged_anchor: str) -> None:
    """Decrypt the footer and the first row of every column with the re-wrapped keys before using them."""
    batches = decrypted_batches(
        location.filesystem(),
        location.path,
        provider,
        columns=None,
        batch_size=1,
        key_material=KeyMaterialAt(pafs.LocalFileSystem(), staged_anchor),
    )
    for _ in batches:
        break


def rotate_file_keys(location: Location, provider: KeyProvider) -> None:
    """Re-wrap the keys of an encrypted Parquet file under the active master key versions.

    Run after ``provider.rotate(key_name)``: the data file is not rewritten (its SHA-256 is unchanged);
    only its key material is replaced, atomically and after checking that the file decrypts with it.
    Afterwards the previous master key versions may be destroyed.
    """
    fs = location.filesystem()
    where = display_path(fs, location.path)
    file_id = stored_file_id(fs, location.path, where)
    final = key_material_path(locate_anchor(fs, location.path, file_id, where))
    folder = _rotation_folder(location)
    try:
        staged_anchor = os.path.join(folder, "rotating")
        staged = key_material_path(staged_anchor)
        _copy_to_local(fs, final, staged, where)
        factory, kms = new_factory(provider)
        with crypto_errors(kms, f"cannot rotate the keys of {where}"):
            factory.rotate_master_keys(
                kms_config(), staged_anchor, pafs.LocalFileSystem(), True, _KMS_CACHE_SECONDS
            )
        _check_rotated(location, provider, staged_anchor)
        _replace_key_material(location, staged, final)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    versions = ", ".join(f"{k} v{v}" for k, v in sorted(kms.versions.items()))
    log.info("re-wrapped the keys of %s under %s (data file unchanged)", location.uri, versions)

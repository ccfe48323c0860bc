"""Parquet modular encryption (AES-GCM) of whole files and columns, with master keys from a ``KeyProvider``.

pyarrow's ``CryptoFactory`` does the cryptography; ``kms_bridge.ProviderKms`` bridges its KMS calls to our
providers.

* Algorithm ``AES_GCM_V1`` (footer, page headers and pages authenticated), encrypted footer (magic ``PARE``:
  without the footer key not even the schema is readable), 256-bit data keys.
* Every file gets fresh data keys: one per encrypted column and one for the footer. Each operation uses a
  fresh ``CryptoFactory``, so no key-encryption key (KEK) is shared between files and no unwrapped key
  outlives the operation in pyarrow's cache (a destroyed master key takes effect at once).
* Double wrapping: data keys are wrapped by a KEK (128-bit: fixed by pyarrow), and the KEK by the master key
  through ``provider.wrap`` — one provider call per master key and file.
* The footer key is the dataset's master key (``key_name``) itself; pyarrow still derives a footer data key
  distinct from every column data key. ``columns`` may also map several master keys to their columns.
* Only encrypted columns and the footer are authenticated: a plaintext column's pages are not. The SHA-256
  of every committed file (``WriteResult.sha256``, recorded in lineage) covers the whole file.
* At most 32 767 row groups per file, and 32 767 pages per column chunk (the AAD stores 16-bit ordinals).

Key material (wrapped data keys and KEKs; never a plaintext key) is stored *outside* the Parquet file, in a
small JSON file beside it, so master keys rotate without rewriting data (``rotate_file_keys``). pyarrow names
it ``_KEY_MATERIAL_FOR_<anchor>.json`` after the path it is given (the "anchor"). The anchor of a committed
file is ``<file name>.<file id>``, where the file id is the hex of the 16-byte authentication tag at the end
of the encrypted footer — random per written file, readable without any key, and unchanged by key rotation.

Crash consistency: the new data file is written and verified under a temporary name with its key material;
the key material is then renamed (fsync'd) to the id-based name of the *new* file, and only then is the data
file swapped in atomically. A crash at any point leaves the visible file readable with its own key material
(the key material of the version it replaced is keyed by another id and untouched until after the swap);
the worst case is an orphan key material file (name starts with ``_``, so dataset listings skip it).
Rotation re-wraps a copy of the key material beside the data, verifies it, and renames it over the old one.
A reader that opened the previous version just before a swap may fail once (its key material was removed)

Modules: ``kms_bridge`` (pyarrow's KMS calls to a ``KeyProvider``), ``columns`` (which key encrypts which
column), ``material`` (key material files and file ids), ``read``, ``write`` and ``rotate``.
"""

from __future__ import annotations

from airflow_aisec.crypto.parquet.columns import ColumnKeys, check_columns, column_keys
from airflow_aisec.crypto.parquet.material import (
    ENCRYPTED_MAGIC,
    KEY_MATERIAL_PREFIX,
    KEY_MATERIAL_SUFFIX,
    find_key_material,
    is_encrypted_parquet,
    key_material_path,
)
from airflow_aisec.crypto.parquet.read import decryption_properties, encrypted_schema, read_encrypted_batches
from airflow_aisec.crypto.parquet.rotate import rotate_file_keys
from airflow_aisec.crypto.parquet.write import (
    ALGORITHM,
    DATA_KEY_BITS,
    ROW_GROUP_ROWS,
    EncryptedWriter,
    EncryptedWriteResult,
    atomic_write_encrypted,
    decrypt_parquet_file,
    encrypt_parquet_file,
    encryption_properties,
)

__all__ = [
    "ALGORITHM",
    "DATA_KEY_BITS",
    "ENCRYPTED_MAGIC",
    "KEY_MATERIAL_PREFIX",
    "KEY_MATERIAL_SUFFIX",
    "ROW_GROUP_ROWS",
    "ColumnKeys",
    "EncryptedWriteResult",
    "EncryptedWriter",
    "atomic_write_encrypted",
    "check_columns",
    "column_keys",
    "decrypt_parquet_file",
    "decryption_properties",
    "encrypt_parquet_file",
    "encrypted_schema",
    "encryption_properties",
    "find_key_material",
    "is_encrypted_parquet",
    "key_material_path",
    "read_encrypted_batches",
    "rotate_file_keys",
]

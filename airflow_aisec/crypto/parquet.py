"""Parquet modular encryption (AES-GCM) of whole files and columns, with master keys from a ``KeyProvider``.

pyarrow's ``CryptoFactory`` does the cryptography; ``_ProviderKms`` bridges its KMS calls to our providers.

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
and should retry.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe

from airflow_aisec.crypto.providers import KeyProvider
from airflow_aisec.exceptions import DatasetIOError, EncryptionError, VerificationError
from airflow_aisec.io.atomic import AtomicWriter, WriteResult, atomic_write
from airflow_aisec.io.formats import DEFAULT_BATCH_SIZE, ParquetBatchWriter, display_path, read_batches
from airflow_aisec.io.staging import Publication, create_staging, fsync_path, publish
from airflow_aisec.io.storage import Location

log = logging.getLogger(__name__)

ALGORITHM: Final = "AES_GCM_V1"
DATA_KEY_BITS: Final = 256
ROW_GROUP_ROWS: Final = 131_072
ENCRYPTED_MAGIC: Final = b"PARE"
KEY_MATERIAL_PREFIX: Final = "_KEY_MATERIAL_FOR_"  # pyarrow's (and parquet-mr's) naming
KEY_MATERIAL_SUFFIX: Final = ".json"
# End of an encrypted-footer file: ... | footer GCM tag (16) | footer length (4) | "PARE" (4).
_TAG_BYTES = 16
_TRAILER_BYTES = 8
_KMS_CACHE_SECONDS = 60.0

ColumnKeys = Mapping[str, Sequence[str]]
"""Master key name -> the columns (top-level names or dotted leaf paths) it encrypts."""


@dataclass(frozen=True)
class EncryptedWriteResult(WriteResult):
    """A committed encrypted file: ``key_material`` is the URI of its key material file, ``master_keys``
    the version of every master key its data keys were wrapped under."""

    key_material: str = ""
    master_keys: Mapping[str, int] = field(default_factory=dict)


# --- the KMS bridge -------------------------------------------------------------------------------------


class _ProviderKms(pe.KmsClient):  # type: ignore[misc]  # pyarrow is untyped
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


def _factory(provider: KeyProvider) -> tuple[Any, _ProviderKms]:
    """A fresh CryptoFactory whose KMS client is a new bridge to ``provider`` (returned to read failures)."""
    kms = _ProviderKms(provider)
    return pe.CryptoFactory(lambda _config: kms), kms


def _kms_config() -> Any:
    return pe.KmsConnectionConfig()


@contextlib.contextmanager
def _crypto_errors(kms: _ProviderKms, what: str) -> Iterator[None]:
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


# --- columns ----------------------------------------------------------------------------------------------


def column_keys(key_name: str, columns: Sequence[str] | ColumnKeys) -> dict[str, list[str]]:
    """Normalise ``columns`` (all under ``key_name``, or a mapping master key -> columns) and check it."""
    if not key_name:
        raise EncryptionError("an encryption key name is required")
    if isinstance(columns, str):
        raise EncryptionError(f"columns must be a list of column names, not the string {columns!r}")
    mapping: dict[str, list[str]] = (
        {str(k): list(v) for k, v in columns.items()}
        if isinstance(columns, Mapping)
        else {key_name: list(columns)}
    )
    seen: dict[str, str] = {}
    for key, names in mapping.items():
        if isinstance(names, str) or not names:
            raise EncryptionError(f"master key {key!r} must encrypt a non-empty list of columns")
        for name in names:
            if name in seen:
                raise EncryptionError(
                    f"column {name!r} is assigned to master keys {seen[name]!r} and {key!r}"
                )
            seen[name] = key
    return mapping


def _column_paths(schema: pa.Schema) -> set[str]:
    """Every column path pyarrow accepts for encryption: top-level names, leaf paths and what is between."""
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink)
    parquet_schema = pq.ParquetFile(pa.BufferReader(sink.getvalue())).schema
    paths: set[str] = set()
    for index in range(len(parquet_schema)):
        parts = parquet_schema.column(index).path.split(".")
        paths.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return paths


def check_columns(schema: pa.Schema, keys: ColumnKeys, where: str) -> None:
    """Raise ``EncryptionError`` naming every column of ``keys`` that ``schema`` does not have."""
    known = _column_paths(schema)
    unknown = [name for names in keys.values() for name in names if name not in known]
    if unknown:
        raise EncryptionError(
            f"cannot encrypt {where}: unknown column(s) {', '.join(unknown)} "
            f"(the file has {', '.join(schema.names)})"
        )


# --- key material files -----------------------------------------------------------------------------------


def _split(path: str) -> tuple[str, str]:
    folder, _, name = path.rpartition("/")
    return folder, name


def key_material_path(anchor: str) -> str:
    """Where pyarrow keeps the key material of the file written with ``anchor`` as its path."""
    folder, name = _split(anchor)
    return f"{folder}/{KEY_MATERIAL_PREFIX}{name}{KEY_MATERIAL_SUFFIX}"


def _anchor(path: str, file_id: str) -> str:
    return f"{path}.{file_id}"


def _read_tail(source: Any, where: str) -> bytes:
    """The last 24 bytes of an open file: the footer's GCM tag and the trailer."""
    size = source.size()
    if size < _TAG_BYTES + _TRAILER_BYTES + len(ENCRYPTED_MAGIC):
        return b""
    try:
        return bytes(source.read_at(_TAG_BYTES + _TRAILER_BYTES, size - _TAG_BYTES - _TRAILER_BYTES))
    except OSError as exc:
        raise DatasetIOError(f"cannot read {where}: {exc}") from exc


def _file_id(tail: bytes, where: str) -> str:
    if not tail.endswith(ENCRYPTED_MAGIC):
        raise EncryptionError(f"{where} is not an encrypted Parquet file (no encrypted footer)")
    return tail[:_TAG_BYTES].hex()


def _open_input(fs: pafs.FileSystem, path: str, where: str) -> Any:
    try:
        return fs.open_input_file(path)
    except FileNotFoundError:
        raise DatasetIOError(f"{where} does not exist") from None
    except OSError as exc:
        raise DatasetIOError(f"cannot read {where}: {exc}") from exc


def _stored_file_id(fs: pafs.FileSystem, path: str, where: str) -> str:
    with _open_input(fs, path, where) as source:
        return _file_id(_read_tail(source, where), where)


def is_encrypted_parquet(fs: pafs.FileSystem, path: str) -> bool:
    """Whether ``path`` is a Parquet file with an encrypted footer (what this module writes)."""
    where = display_path(fs, path)
    with _open_input(fs, path, where) as source:
        return _read_tail(source, where).endswith(ENCRYPTED_MAGIC)


def _is_file(fs: pafs.FileSystem, path: str) -> bool:
    return bool(fs.get_file_info(path).type == pafs.FileType.File)


def _locate_anchor(fs: pafs.FileSystem, path: str, file_id: str, where: str) -> str:
    """The anchor whose key material belongs to this version of the file.

    Files committed here use ``<path>.<file id>``; files written with ``encryption_properties`` directly
    (pyarrow's own convention) use ``<path>``.
    """
    for anchor in (_anchor(path, file_id), path):
        if _is_file(fs, key_material_path(anchor)):
            return anchor
    expected = _split(key_material_path(_anchor(path, file_id)))[1]
    raise EncryptionError(f"cannot decrypt {where}: its key material {expected} is missing")


def find_key_material(location: Location) -> Location:
    """The key material file of the encrypted Parquet file ``location`` (delete it with the file)."""
    fs = location.filesystem()
    where = display_path(fs, location.path)
    file_id = _stored_file_id(fs, location.path, where)
    return _with_path(location, key_material_path(_locate_anchor(fs, location.path, file_id, where)))


def _with_path(location: Location, path: str) -> Location:
    return Location(location.scheme, path, location.s3)


def _current_key_material(target: Location) -> Location | None:
    """The key material of the file now at ``target``, or None (no file, plaintext, or none found)."""
    try:
        return find_key_material(target)
    except (DatasetIOError, EncryptionError):
        return None


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    with contextlib.suppress(OSError):
        fs.delete_file(path)


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
) -> tuple[Any, _ProviderKms]:
    factory, kms = _factory(provider)
    with _crypto_errors(kms, f"cannot encrypt {where}"):
        props = factory.file_encryption_properties(
            _kms_config(), _encryption_config(key_name, keys), anchor, fs
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


def _new_decryption(
    provider: KeyProvider, km_fs: pafs.FileSystem, anchor: str, where: str
) -> tuple[Any, _ProviderKms]:
    factory, kms = _factory(provider)
    with _crypto_errors(kms, f"cannot decrypt {where}"):
        config = pe.DecryptionConfiguration()
        props = factory.file_decryption_properties(_kms_config(), config, anchor, km_fs)
    return props, kms


def decryption_properties(
    provider: KeyProvider, fs: pafs.FileSystem, path: str
) -> pq.FileDecryptionProperties:
    """Decryption properties of the encrypted Parquet file at ``path`` (keys unwrap when first needed)."""
    where = display_path(fs, path)
    file_id = _stored_file_id(fs, path, where)
    props, _ = _new_decryption(provider, fs, _locate_anchor(fs, path, file_id, where), where)
    return props


# --- reading ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _KeyMaterialAt:
    """Where the key material of a file is, when it is not beside the file under its id (staging)."""

    fs: pafs.FileSystem
    anchor: str


def _decrypted_batches(
    fs: pafs.FileSystem,
    path: str,
    provider: KeyProvider,
    *,
    columns: Sequence[str] | None,
    batch_size: int,
    key_material: _KeyMaterialAt | None = None,
) -> Iterator[pa.RecordBatch]:
    where = display_path(fs, path)
    if batch_size < 1:
        raise DatasetIOError(f"batch_size must be positive, got {batch_size}")
    with _open_input(fs, path, where) as source:
        file_id = _file_id(_read_tail(source, where), where)
        if key_material is None:
            key_material = _KeyMaterialAt(fs, _locate_anchor(fs, path, file_id, where))
        props, kms = _new_decryption(provider, key_material.fs, key_material.anchor, where)
        with _crypto_errors(kms, f"cannot decrypt {where}"):
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
    return _decrypted_batches(
        location.filesystem(), location.path, provider, columns=columns, batch_size=batch_size
    )


def encrypted_schema(location: Location, provider: KeyProvider) -> pa.Schema:
    """The Arrow schema of an encrypted Parquet file (needs the footer key)."""
    fs = location.filesystem()
    where = display_path(fs, location.path)
    with _open_input(fs, location.path, where) as source:
        file_id = _file_id(_read_tail(source, where), where)
        props, kms = _new_decryption(provider, fs, _locate_anchor(fs, location.path, file_id, where), where)
        with _crypto_errors(kms, f"cannot decrypt {where}"):
            return pq.ParquetFile(source, decryption_properties=props).schema_arrow


# --- writing ----------------------------------------------------------------------------------------------


class EncryptedWriter(AtomicWriter):
    """The writer yielded by ``atomic_write_encrypted``; ``result`` is an ``EncryptedWriteResult``."""

    @property
    def result(self) -> EncryptedWriteResult:
        """The committed file; raises ``DatasetIOError`` before the ``with`` block has exited cleanly."""
        result = super().result
        assert isinstance(result, EncryptedWriteResult)
        return result

    def _commit(self, result: EncryptedWriteResult) -> None:
        self._result = result


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
            _delete_quietly(local, path)
        if self.published_key_material is not None:
            # The data swap failed after the key material was published under the new file's id.
            _delete_quietly(self.target.filesystem(), self.published_key_material.path)


def _open_encrypted_writer(
    staging: _Staging, schema: pa.Schema, props: Any, kms: _ProviderKms, row_group_rows: int
) -> ParquetBatchWriter:
    where = staging.target.uri
    stream = pafs.LocalFileSystem().open_output_stream(staging.path)
    try:
        with _crypto_errors(kms, f"cannot encrypt {where}"):
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
        batches = _decrypted_batches(
            local,
            staging.path,
            provider,
            columns=None,
            batch_size=DEFAULT_BATCH_SIZE,
            key_material=_KeyMaterialAt(local, staging.path),
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
    final = _with_path(target, key_material_path(_anchor(target.path, file_id)))
    try:
        if target.is_s3:
            with open(staging.key_material, "rb") as handle:
                body = handle.read()
            with target.filesystem().open_output_stream(final.path) as out:
                out.write(body)
        else:
            fsync_path(staging.key_material, os.O_RDONLY)
            os.replace(staging.key_material, final.path)
            fsync_path(os.path.dirname(final.path), os.O_RDONLY)
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
    ``EncryptedWriteResult``. See the module docstring for where the key material goes and why.
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
        writer._commit(_commit(staging, plan, provider, writer.rows, verify, dict(kms.versions)))
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
    with open(staging.path, "rb") as handle:
        handle.seek(-(_TAG_BYTES + _TRAILER_BYTES), os.SEEK_END)
        file_id = _file_id(handle.read(), target.uri)
    replaced = _current_key_material(target)
    final = _publish_key_material(staging, file_id)
    published = publish(staging.path, plan)
    staging.published_key_material = None  # it now belongs to the committed file
    if replaced is not None and replaced.path != final.path:
        _delete_quietly(target.filesystem(), replaced.path)
    return EncryptedWriteResult(
        target.uri, rows, published.size, published.sha256, published.etag, final.uri, versions
    )


def _source_batches(source: Location, provider: KeyProvider, batch_size: int) -> tuple[pa.Schema, Any]:
    """The schema and batches of a Parquet file, decrypted if it is encrypted."""
    fs = source.filesystem()
    if is_encrypted_parquet(fs, source.path):
        batches = _decrypted_batches(fs, source.path, provider, columns=None, batch_size=batch_size)
        return encrypted_schema(source, provider), batches
    with _open_input(fs, source.path, source.uri) as handle:
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
    batches = _decrypted_batches(
        source.filesystem(), source.path, provider, columns=None, batch_size=batch_size
    )
    replaced = _current_key_material(target)
    with atomic_write(
        target, "parquet", schema, expected_etag=expected_etag, overwrite=overwrite, new_file_mode=0o600
    ) as writer:
        for batch in batches:
            writer.write(transform(batch) if transform is not None else batch)
    if replaced is not None:
        # The target was an encrypted file (e.g. decrypted in place): its key material is now garbage.
        _delete_quietly(target.filesystem(), replaced.path)
    log.info("decrypted %s into %s (%d rows)", source.uri, target.uri, writer.result.rows)
    return writer.result


# --- rotation ---------------------------------------------------------------------------------------------


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
        if location.is_s3:
            with open(staged, "rb") as handle, location.filesystem().open_output_stream(final) as out:
                out.write(handle.read())
        else:
            fsync_path(staged, os.O_RDONLY)
            os.replace(staged, final)
            fsync_path(os.path.dirname(final), os.O_RDONLY)
    except OSError as exc:
        raise DatasetIOError(f"cannot store the rotated key material of {location.uri}: {exc}") from exc


def _check_rotated(location: Location, provider: KeyProvider, staged_anchor: str) -> None:
    """Decrypt the footer and the first row of every column with the re-wrapped keys before using them."""
    batches = _decrypted_batches(
        location.filesystem(),
        location.path,
        provider,
        columns=None,
        batch_size=1,
        key_material=_KeyMaterialAt(pafs.LocalFileSystem(), staged_anchor),
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
    file_id = _stored_file_id(fs, location.path, where)
    final = key_material_path(_locate_anchor(fs, location.path, file_id, where))
    folder = _rotation_folder(location)
    try:
        staged_anchor = os.path.join(folder, "rotating")
        staged = key_material_path(staged_anchor)
        _copy_to_local(fs, final, staged, where)
        factory, kms = _factory(provider)
        with _crypto_errors(kms, f"cannot rotate the keys of {where}"):
            factory.rotate_master_keys(
                _kms_config(), staged_anchor, pafs.LocalFileSystem(), True, _KMS_CACHE_SECONDS
            )
        _check_rotated(location, provider, staged_anchor)
        _replace_key_material(location, staged, final)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    versions = ", ".join(f"{k} v{v}" for k, v in sorted(kms.versions.items()))
    log.info("re-wrapped the keys of %s under %s (data file unchanged)", location.uri, versions)

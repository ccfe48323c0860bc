"""Encrypt, decrypt, re-key and read whole datasets, as the catalog's ``encryption:`` block says.

Parquet gets modular encryption (chosen columns and the footer, key material beside each file); any other
file (CSV, JSONL, model files) gets envelope encryption into ``<name>.aisec``. Columns listed in
``per_subject_columns`` are additionally sealed with each subject's own key (crypto-shredding). Every file
is written to a temporary place, verified, then moved into place; the source is never modified unless it is
also the target. In place, a Parquet file is replaced by its encrypted version, and any other file's
plaintext is deleted once a verified envelope of exactly that version is beside it (``crypto.in_place``;
fanned out by file: ``crypto.in_place_groups``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs

from airflow_aisec.crypto.envelope import MAGIC, decrypt_file, encrypt_file, rewrap_header
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.crypto.parquet import (
    decrypt_parquet_file,
    encrypt_parquet_file,
    encrypted_schema,
    is_encrypted_parquet,
    read_encrypted_batches,
    rotate_file_keys,
)
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.crypto.shredding import SubjectSealer, open_batch, seal_batch
from airflow_aisec.exceptions import DatasetIOError, EncryptionError
from airflow_aisec.io import FileInfo, Location, list_files, read_file, sha256_file
from airflow_aisec.io import purge_versions as purge_old_versions

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.providers import KeyProvider

ENVELOPE_SUFFIX = ".aisec"
RAW = "file"  # any file at all (model weights, archives): envelope-encrypted as bytes
BatchTransform = Callable[[pa.RecordBatch], pa.RecordBatch]


@dataclasses.dataclass(frozen=True)
class CryptoFile:
    """One file processed: where from, where to, how, and the digests of both sides."""

    source: str
    target: str
    method: str  # "parquet-modular" | "envelope"
    source_sha256: str
    target_sha256: str
    staged: str = ""  # fanned out: where the group wrote it, until the step's commit moves it to ``target``
    key_material: str = ""  # fanned out, Parquet: its staged key material, named as beside ``target``
    key_material_sha256: str = ""
    plaintext_removed: bool = False  # in place: ``source`` deleted, its verified envelope in place
    reused: bool = False  # in place, after a killed run: a verified envelope of this very version was there
    versions_purged: int = 0  # S3 versioned bucket, ``purge_versions``: old versions of the plaintext removed


@dataclasses.dataclass
class SubjectColumns:
    """Columns sealed per subject, the column naming each row's subject, and the sealer."""

    columns: list[str]
    subject: str
    sealer: SubjectSealer

    def seal(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Seal the columns of one batch."""
        return seal_batch(batch, self.columns, self.subject, self.sealer)

    def open(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Open the columns of one batch (shredded subjects' values become null)."""
        return open_batch(batch, self.columns, self.sealer)


def _visible_paths(location: Location, keep: Callable[[str], bool]) -> list[str]:
    """Sorted paths of the visible files below ``location`` whose name passes ``keep``."""
    fs = location.filesystem()
    try:
        infos = fs.get_file_info(pafs.FileSelector(location.path, recursive=True, allow_not_found=True))
    except (OSError, pa.ArrowException) as e:
        raise DatasetIOError(f"cannot list {location.uri}: {e.__class__.__name__}") from None
    return sorted(
        info.path
        for info in infos
        if info.type == pafs.FileType.File
        and not info.base_name.startswith((".", "_"))
        and keep(info.base_name)
    )


def envelope_files(location: Location) -> list[Location]:
    """The ``*.aisec`` files below ``location`` (or ``location`` itself), sorted.

    A single file named otherwise is an envelope when it starts with the envelope magic.
    """
    from airflow_aisec.io import stat_file

    if location.name.endswith(ENVELOPE_SUFFIX):
        return [location]
    if stat_file(location) is not None:
        try:
            with location.filesystem().open_input_stream(location.path) as handle:
                magic = handle.read(len(MAGIC))
        except (OSError, pa.ArrowException):
            return []
        return [location] if magic == MAGIC else []
    paths = _visible_paths(location, lambda name: name.endswith(ENVELOPE_SUFFIX))
    return [dataclasses.replace(location, path=path) for path in paths]


def raw_files(location: Location) -> list[FileInfo]:
    """Every visible file below ``location`` (or ``location`` itself), whatever its format."""
    from airflow_aisec.io import stat_file

    single = stat_file(location)
    if single is not None:
        return [single]
    found = []
    for path in _visible_paths(location, lambda name: not name.endswith(ENVELOPE_SUFFIX)):
        info = stat_file(dataclasses.replace(location, path=path))
        if info is not None:
            found.append(info)
    return found


def _target(info_location: Location, source: Location, target: Location, suffix: str = "") -> Location:
    if info_location.path == source.path:  # one file in, one file out: the target names the file
        return target
    relative = info_location.relative_to(source)
    return target.join(relative + suffix) if suffix else target.join(relative)


def encrypt_files(
    source: Location,
    target: Location,
    fmt: str,
    provider: KeyProvider,
    key_name: str,
    *,
    columns: Sequence[str] | None = None,
    context: Mapping[str, str] | None = None,
    subjects: SubjectColumns | None = None,
    sse_kms_key_id: str | None = None,
    on_file: Callable[[CryptoFile], None] | None = None,
    part: tuple[list[FileInfo], Location] | None = None,
    purge_versions: bool = False,
) -> list[CryptoFile]:
    """Encrypt every ``fmt`` file of ``source`` into ``target`` (which may be ``source``: in place).

    A master key missing from the local keyring is created on first use (KMS keys must already exist).

    Parquet: ``columns`` (default: every column) and the footer under ``key_name``; in place, each file is
    replaced atomically. Other formats: the whole file as an envelope ``<name>.aisec`` bound to ``context``;
    in place, the plaintext is deleted once a verified envelope of exactly its version is beside it
    (``crypto.in_place``; a rerun after a killed run finishes the file). ``purge_versions`` (S3 versioned
    buckets, in place): the plaintext's old versions go too. ``part`` (a group of a fanned-out step, into
    another location): only these files, written below the staging folder given, for the step's commit to
    move; a Parquet file's key material is staged beside it (``key_material``, under its final name).
    """
    if part is not None and target.path == source.path:
        raise EncryptionError(
            f"{source.uri}: only encryptions into another location are staged in groups; a group in place "
            "encrypts its files where they are (crypto.in_place_groups)"
        )
    files = part[0] if part is not None else raw_files(source) if fmt == RAW else list_files(source, fmt)
    if not files:
        raise DatasetIOError(f"{source.uri}: no {fmt} files to encrypt")
    if isinstance(provider, LocalKeyProvider):
        provider.create(
            key_name
        )  # the embedded keyring creates a declared key on first use; KMS keys must exist
    in_place = target.path == source.path
    done = []
    for info in files:
        if fmt == "parquet":
            wanted = list(columns) if columns else all_columns(info.location, provider)
            item = _parquet_file(info, (source, target), provider, key_name, wanted, subjects, part)
            if (
                in_place and purge_versions and target.is_s3
            ):  # the replaced plaintext survives as an old version
                item = dataclasses.replace(item, versions_purged=purge_old_versions(info.location))
        elif in_place:
            item = _replace_with_envelope(info, source, provider, key_name, context, sse_kms_key_id,
                                          purge_versions)  # fmt: skip
        else:
            item = _envelope_copy(info, (source, target), provider, key_name, context, sse_kms_key_id, part)
        done.append(item)
        if on_file is not None:
            on_file(item)
    return done


def _parquet_file(
    info: FileInfo,
    where: tuple[Location, Location],
    provider: KeyProvider,
    key_name: str,
    columns: list[str],
    subjects: SubjectColumns | None,
    part: tuple[list[FileInfo], Location] | None,
) -> CryptoFile:
    """One Parquet file encrypted into its place below ``where``'s target (or its group's staging)."""
    source, target = where
    before = sha256_file(info.location)
    out = _target(info.location, source, target)
    staged = part[1].join(out.relative_to(target) or out.name) if part is not None else out
    result = encrypt_parquet_file(
        info.location, staged, provider, key_name, columns, overwrite=True,
        transform=subjects.seal if subjects else None,
    )  # fmt: skip
    item = CryptoFile(info.uri, out.uri, "parquet-modular", before, result.sha256)
    if part is None:
        return item
    material = Location.parse(result.key_material, staged.s3)
    return dataclasses.replace(
        item, staged=staged.uri, key_material=material.uri, key_material_sha256=sha256_file(material)
    )


def _envelope_copy(
    info: FileInfo,
    where: tuple[Location, Location],
    provider: KeyProvider,
    key_name: str,
    context: Mapping[str, str] | None,
    sse_kms_key_id: str | None,
    part: tuple[list[FileInfo], Location] | None,
) -> CryptoFile:
    """One file envelope-encrypted into another location (or its group's staging); the source stays."""
    source, target = where
    before = sha256_file(info.location)
    out = _target(info.location, source, target, ENVELOPE_SUFFIX)
    if out.path == info.location.path:
        out = dataclasses.replace(out, path=out.path + ENVELOPE_SUFFIX)
    about = {**(context or {}), "file": info.location.relative_to(source) or info.location.name}
    staged = part[1].join(out.relative_to(target) or out.name) if part is not None else out
    enveloped = encrypt_file(
        info.location, staged, provider, key_name, about, overwrite=True, sse_kms_key_id=sse_kms_key_id
    )
    return CryptoFile(info.uri, out.uri, "envelope", before, enveloped.sha256, staged.uri)


def _replace_with_envelope(
    info: FileInfo,
    source: Location,
    provider: KeyProvider,
    key_name: str,
    context: Mapping[str, str] | None,
    sse_kms_key_id: str | None,
    purge: bool,
) -> CryptoFile:
    """One file encrypted in place: its envelope beside it, the plaintext deleted (``crypto.in_place``)."""
    from airflow_aisec.crypto.in_place import replace_with_envelope

    envelope = dataclasses.replace(info.location, path=info.location.path + ENVELOPE_SUFFIX)
    about = {**(context or {}), "file": info.location.relative_to(source) or info.location.name}
    done = replace_with_envelope(
        info.location, envelope, provider, key_name, about, sse_kms_key_id=sse_kms_key_id, purge=purge
    )
    return CryptoFile(
        info.uri, envelope.uri, "envelope", done.source_sha256, done.target_sha256,
        plaintext_removed=True, reused=done.reused, versions_purged=done.versions_purged,
    )  # fmt: skip


def all_columns(location: Location, provider: KeyProvider) -> list[str]:
    """Every column of a Parquet file, encrypted or not (what ``columns=None`` encrypts)."""
    fs = location.filesystem()
    if is_encrypted_parquet(fs, location.path):
        return list(encrypted_schema(location, provider).names)
    import pyarrow.parquet as pq

    with fs.open_input_file(location.path) as handle:
        return list(pq.ParquetFile(handle).schema_arrow.names)


def decrypt_files(
    source: Location,
    target: Location,
    provider: KeyProvider,
    *,
    subjects: SubjectColumns | None = None,
    on_file: Callable[[CryptoFile], None] | None = None,
) -> list[CryptoFile]:
    """Decrypt every encrypted Parquet file and every ``.aisec`` envelope below ``source`` into ``target``."""
    done = []
    for info in list_files(source, "parquet"):
        if not is_encrypted_parquet(info.location.filesystem(), info.location.path):
            continue
        out = _target(info.location, source, target)
        result = decrypt_parquet_file(
            info.location, out, provider, overwrite=True, transform=subjects.open if subjects else None
        )
        done.append(
            CryptoFile(info.uri, out.uri, "parquet-modular", sha256_file(info.location), result.sha256)
        )
    for location in envelope_files(source):
        out = _target(location, source, target)
        if out.name.endswith(ENVELOPE_SUFFIX):
            out = dataclasses.replace(out, path=out.path[: -len(ENVELOPE_SUFFIX)])
        result_env = decrypt_file(location, out, provider, overwrite=True)
        done.append(CryptoFile(location.uri, out.uri, "envelope", sha256_file(location), result_env.sha256))
    if not done:
        raise EncryptionError(f"{source.uri}: no encrypted Parquet or .aisec files to decrypt")
    for item in done:
        if on_file is not None:
            on_file(item)
    return done


def rotate_files(location: Location, provider: KeyProvider) -> list[CryptoFile]:
    """Re-wrap the data keys of every encrypted file under the current master key versions.

    The data is not re-encrypted: Parquet files keep their bytes (only their key material changes), envelope
    files keep their body (only the header changes).
    """
    done = []
    for info in list_files(location, "parquet"):
        if is_encrypted_parquet(info.location.filesystem(), info.location.path):
            digest = sha256_file(info.location)
            rotate_file_keys(info.location, provider)
            done.append(CryptoFile(info.uri, info.uri, "parquet-modular", digest, sha256_file(info.location)))
    for envelope in envelope_files(location):
        digest = sha256_file(envelope)
        result = rewrap_header(envelope, provider)
        done.append(CryptoFile(envelope.uri, envelope.uri, "envelope", digest, result.sha256))
    return done


class DatasetReader:
    """Reads a dataset's files as record batches, decrypting what is encrypted, transparently."""

    def __init__(self, provider: KeyProvider | None, subjects: SubjectColumns | None = None) -> None:
        self.provider = provider
        self.subjects = subjects

    def __call__(
        self, info: FileInfo, fmt: str, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The batches of one file."""
        location = info.location
        if (
            fmt == "parquet"
            and self.provider is not None
            and is_encrypted_parquet(location.filesystem(), location.path)
        ):
            batches: Iterator[pa.RecordBatch] = read_encrypted_batches(
                location, self.provider, columns=columns
            )
        else:
            batches = read_file(info, fmt, columns=columns)
        for batch in batches:
            yield self.subjects.open(batch) if self.subjects is not None else batch

    def shape(self, info: FileInfo, fmt: str) -> tuple[int, list[str]]:
        """Rows and column names of one file."""
        rows, names = 0, list[str]()
        for batch in self(info, fmt):
            rows += batch.num_rows
            names = names or list(batch.schema.names)
        return rows, names


def describe(files: Sequence[CryptoFile]) -> dict[str, Any]:
    """Audit fields: inputs and outputs with digests (no key material); an in-place envelope encryption
    also names the plaintext files it deleted, the envelopes a rerun found already written and verified, and
    the old S3 versions purged."""
    details: dict[str, Any] = {"files": len(files), "methods": sorted({f.method for f in files})}
    removed = [f.source for f in files if f.plaintext_removed]
    if removed:
        details["plaintext_removed"] = removed
    reused = [f.target for f in files if f.reused]
    if reused:
        details["envelopes_reused"] = reused
    purged = sum(f.versions_purged for f in files)
    if purged:
        details["versions_purged"] = purged
    return {
        "inputs": [{"uri": f.source, "sha256": f.source_sha256} for f in files],
        "outputs": [{"uri": f.target, "sha256": f.target_sha256} for f in files],
        "details": details,
    }


def subject_columns(keys: KeySource, dataset: Dataset) -> SubjectColumns | None:
    """The per-subject sealing the catalog asks for on ``dataset`` (None when it asks for none); subject
    keys live where ``keys.subject_keys(dataset)`` says."""
    from airflow_aisec.crypto.pseudonyms import Pseudonymizer
    from airflow_aisec.crypto.shredding import subject_column

    wanted = list(dataset.encryption.per_subject_columns) if dataset.encryption else []
    if not wanted:
        return None
    subject = subject_column(keys.catalog, dataset)
    if subject is None:
        raise EncryptionError(
            f"dataset {dataset.name}: per_subject_columns need a column naming each row's subject "
            "(an identity column, or a reference to one)"
        )
    pseudonym_key = keys.keyring.ensure(keys.catalog.subjects.pseudonym_key, "symmetric")
    sealer = SubjectSealer(keys.subject_keys(dataset), Pseudonymizer(pseudonym_key.material))
    return SubjectColumns(wanted, subject, sealer)


def sse_kms_key(catalog: Catalog | None, key_name: str) -> str | None:
    """The KMS key S3 should encrypt uploads with (SSE-KMS) when ``key_name`` is an ``aws-kms`` key."""
    spec = catalog.keys.get(key_name) if catalog is not None else None
    return spec.key_id if spec is not None and spec.provider == "aws-kms" else None


def reader_for(keys: KeySource, dataset: Dataset) -> DatasetReader:
    """A reader that decrypts ``dataset`` transparently when the catalog says it is encrypted."""
    if dataset.encryption is None:
        return DatasetReader(None)
    return DatasetReader(keys.provider(dataset.encryption.key), subject_columns(keys, dataset))


@dataclasses.dataclass
class RekeyResult:
    """A dataset re-keyed: the master key's new version, the files re-wrapped, the versions retired."""

    key_name: str
    version: int
    files: list[CryptoFile]
    retired: list[int]


def rekey_dataset(
    provider: KeyProvider,
    key_name: str,
    location: Location,
    *,
    rotate: bool = True,
    retire_old: bool = False,
    on_file: Callable[[CryptoFile], object] | None = None,
) -> RekeyResult:
    """Rotate ``key_name`` (unless ``rotate`` is False), re-wrap every encrypted file's data keys under the
    new version, and with ``retire_old`` destroy the older versions once every file is re-wrapped.

    Idempotent: a second run re-wraps under the same version and retires nothing new.
    """
    version = provider.rotate(key_name) if rotate else max(v["version"] for v in provider.versions(key_name))
    files = []
    for item in rotate_files(location, provider):
        files.append(item)
        if on_file is not None:
            on_file(item)
    retired = []
    if retire_old:
        for old in provider.versions(key_name):
            if (
                old["version"] < version
                and old["state"] != "destroyed"
                and provider.destroy(key_name, old["version"])
            ):
                retired.append(int(old["version"]))
    return RekeyResult(key_name, version, files, retired)

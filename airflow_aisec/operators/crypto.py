"""``EncryptDatasetOperator``, ``DecryptDatasetOperator`` and ``RotateDatasetKeysOperator``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import EncryptionError
from airflow_aisec.lineage import DatasetRef, classify
from airflow_aisec.operators.pii import _CatalogDatasetOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.io import Location


class _EncryptionOperator(_CatalogDatasetOperator):
    """Shared: the dataset's key provider (local keyring or AWS KMS through ``aws_conn_id``)."""

    def __init__(self, *, key: str | None = None, keyring: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.keyring = keyring

    def _key_name(self, spec: Dataset) -> str:
        if self.key:
            return self.key
        if spec.encryption is None:
            raise EncryptionError(f"dataset {spec.name} has no encryption block in the catalog; pass key=")
        return spec.encryption.key

    def _key_source(self, catalog: Catalog, spec: Dataset) -> KeySource:
        """The catalog's keys: KMS through each key's ``aws_conn_id``, else this task's; an ``s3://``
        ``subject_keys`` location of the dataset's key through this task's connection."""
        key = catalog.keys.get(spec.encryption.key) if spec.encryption else None
        where = key.subject_keys if key is not None and key.provider == "aws-kms" else None
        return self._catalog_keys(catalog, self.keyring, self._location(where).s3 if where else None)

    def _named(self, catalog: Catalog, spec: Dataset, uri: str) -> tuple[str, str | None]:
        """``(uri, name)``: the catalog dataset at ``uri``; ``spec``'s name at its own location; None
        elsewhere (lineage then names the location)."""
        if uri.rstrip("/") == spec.uri.rstrip("/"):
            return uri, spec.name
        return uri, self._dataset_at(catalog, uri)

    def _record_files(
        self,
        context: Context,
        action: str,
        spec: Dataset,
        files: list[Any],
        where: tuple[tuple[str, str | None], tuple[str, str | None]],
        *,
        columns: Sequence[str] | None = None,
        **extra: Any,
    ) -> None:
        """Record the files and their lineage; ``where``: (location, catalog dataset) of the input and of the
        output; ``columns``: the Parquet columns encrypted (None: all)."""
        from airflow_aisec.crypto.datasets import describe

        fields = describe(files)
        fields["details"].update(extra)
        plain = classify(spec.pii_columns)
        self.lineage.inputs, self.lineage.outputs = [], []
        # Each side is named by the catalog dataset at its location: encrypting a masked copy into a published
        # folder is an edge from the one to the other, encrypting in place an operation on the dataset.
        (source_uri, source_name), (target_uri, target_name) = where
        for f in files:
            sealed = classify(spec.pii_columns, _encrypted_pii(spec, f.method, columns))
            source, target = (plain, sealed) if action == "dataset.encrypt" else (sealed, plain)
            self.lineage.inputs.append(
                DatasetRef(f.source, source_name, f.source_sha256, classification=source, location=source_uri)
            )
            self.lineage.outputs.append(
                DatasetRef(f.target, target_name, f.target_sha256, classification=target, location=target_uri)
            )
        fields.update(self.lineage.entry_fields())
        self.record(context, action, dataset=spec.name, **fields)


def _encrypted_pii(spec: Dataset, method: str, columns: Sequence[str] | None) -> dict[str, str]:
    """PII column → ``encrypt`` for the PII columns an encrypted file holds encrypted: every column of an
    envelope, the chosen columns (or all) of a Parquet file, a nested path within an encrypted column."""
    return {
        name: "encrypt"
        for name in spec.pii_columns
        if method == "envelope" or columns is None or name.split(".", 1)[0].split("[", 1)[0] in columns
    }


class EncryptDatasetOperator(_EncryptionOperator):
    """
    Encrypt a catalog dataset as its ``encryption:`` block says: Parquet columns (and footer) with modular
    encryption, other formats as streamed envelopes; ``per_subject_columns`` also sealed per subject.

    :param dataset: Catalog dataset. (templated)
    :param output_uri: Where to write; default: in place (a Parquet file replaced atomically by its encrypted
        version; any other file by its verified envelope ``<name>.aisec``, the plaintext deleted only if it
        is still the version encrypted; with the catalog's ``retention.purge_versions`` its old S3 versions
        too). (templated)
    :param input_uri: Where the data is, when not at the dataset's ``uri`` (e.g. a masked copy). (templated)
    :param key: Master key (declared in the catalog's ``keys``); default: the dataset's encryption key.
    :param columns: Parquet columns to encrypt; default: the dataset's encryption columns, else all.
    :param keyring: Local keyring file; default ``[aisec] keyring``.
    :param aws_conn_id: Airflow AWS connection for S3 data and ``aws-kms`` keys.
    :param files: One group of the dataset's files from ``ListFileGroupsOperator``: only those files are
        encrypted, and the task returns what it did for ``EncryptCombineOperator``, which records the step.
        Into another ``output_uri``, the files (Parquet files with their key material) go to the run's
        staging folder for the combine task to commit; in place, each file is encrypted where it is, as
        the single task does, and a retried group finishes what its first try began. (templated)
    """

    template_fields: Sequence[str] = ("dataset", "input_uri", "output_uri", "catalog", "variables", "files")
    ui_color = "#e0ecff"

    def __init__(
        self,
        *,
        output_uri: str | None = None,
        columns: Sequence[str] | None = None,
        files: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_uri = output_uri
        self.columns = columns
        self.files = files

    def execute(self, context: Context) -> dict[str, Any]:
        """Encrypt every file; return the files written (URIs only)."""
        from airflow_aisec.crypto.datasets import encrypt_files, sse_kms_key, subject_columns

        catalog, spec = self._catalog_dataset()
        keys = self._key_source(catalog, spec)
        key = self._key_name(spec)
        provider = keys.provider(key)
        self._check_purpose(context, catalog, spec.name)
        source = self._location(self.input_uri or spec.uri)
        target = self._location(self.output_uri) if self.output_uri else source
        columns = self.columns or (spec.encryption.columns if spec.encryption else None)
        subjects = subject_columns(keys, spec) if not self.input_uri else None
        purge = spec.retention is not None and spec.retention.purge_versions
        if self.files is not None and target.path == source.path:  # a group in place: no staging
            from airflow_aisec.crypto.in_place_groups import InPlaceGroup, Ledger, encrypt_group_in_place
            from airflow_aisec.io.groups import staging_root

            job = InPlaceGroup(
                source, spec.format, provider, key, Ledger(staging_root(source, self.files)), columns,
                {"dataset": spec.name}, subjects, sse_kms_key(catalog, key), purge,
            )  # fmt: skip
            return self._group_result(encrypt_group_in_place(job, self.files))
        part = self._group(source, target, spec.format)
        files = encrypt_files(
            source, target, spec.format, provider, key, columns=columns, context={"dataset": spec.name},
            subjects=subjects, sse_kms_key_id=sse_kms_key(catalog, key), part=part, purge_versions=purge,
        )  # fmt: skip
        if part is not None:  # a group of a fanned-out step: the combine step commits and records
            return self._group_result(files)
        where = self._named(catalog, spec, source.uri), self._named(catalog, spec, target.uri)
        self._record_files(context, "dataset.encrypt", spec, files, where, columns=columns, key=key)
        return {"files": [f.target for f in files]}

    def _group_result(self, files: list[Any]) -> dict[str, Any]:
        """What a group returns for the combine task: its place in the listing and its files."""
        return {**{k: (self.files or {}).get(k) for k in ("group", "groups", "listing", "staging")},
                "files": [dataclasses.asdict(f) for f in files]}  # fmt: skip

    def _group(self, source: Location, target: Location, fmt: str) -> tuple[list[Any], Location] | None:
        """The files of this task's group and the staging folder they go to (None: not fanned out)."""
        if self.files is None:
            return None
        from airflow_aisec.io.groups import group_members, staging_root

        return group_members(self.files, source.s3, root=source, fmt=fmt), staging_root(target, self.files)


class DecryptDatasetOperator(_EncryptionOperator):
    """
    Decrypt a catalog dataset's encrypted Parquet files and envelopes into ``output_uri``; the plaintext
    appears only once every file verified.

    :param dataset: Catalog dataset. (templated)
    :param output_uri: Where to write the plaintext. (templated)
    """

    template_fields: Sequence[str] = ("dataset", "input_uri", "output_uri", "catalog", "variables")
    ui_color = "#e0ecff"

    def __init__(self, *, output_uri: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output_uri = output_uri

    def execute(self, context: Context) -> dict[str, Any]:
        """Decrypt every encrypted file; return the files written."""
        from airflow_aisec.crypto.datasets import decrypt_files, subject_columns

        catalog, spec = self._catalog_dataset()
        keys = self._key_source(catalog, spec)
        provider = keys.provider(self._key_name(spec))
        self._check_purpose(context, catalog, spec.name)
        source = self._location(self.input_uri or spec.uri)
        subjects = subject_columns(keys, spec)
        target = self._location(self.output_uri)
        files = decrypt_files(source, target, provider, subjects=subjects)
        encrypted = spec.encryption.columns if spec.encryption else None
        where = self._named(catalog, spec, source.uri), self._named(catalog, spec, target.uri)
        self._record_files(context, "dataset.decrypt", spec, files, where, columns=encrypted)
        return {"files": [f.target for f in files]}


class RotateDatasetKeysOperator(_EncryptionOperator):
    """
    Rotate a dataset's master key and re-wrap the data keys of every file under the new version (the data is
    not rewritten); with ``retire_old_versions`` destroy the older versions once every file is re-wrapped.
    Every file and the rotation itself are recorded in the audit log.

    :param dataset: Catalog dataset. (templated)
    :param retire_old_versions: Destroy older master key versions afterwards (local keyring).
    """

    template_fields: Sequence[str] = ("dataset", "input_uri", "catalog", "variables")
    ui_color = "#e0ecff"

    def __init__(self, *, retire_old_versions: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retire_old_versions = retire_old_versions

    def execute(self, context: Context) -> dict[str, Any]:
        """Rotate and re-wrap; return the new version and the files re-wrapped."""
        from airflow_aisec.crypto.datasets import rekey_dataset

        catalog, spec = self._catalog_dataset()
        key = self._key_name(spec)
        provider = self._key_source(catalog, spec).provider(key)
        with self.audited(context):
            result = rekey_dataset(
                provider,
                key,
                self._location(self.input_uri or spec.uri),
                retire_old=self.retire_old_versions,
                on_file=lambda f: self.record(
                    context, "key.rotate", step=f.source, dataset=spec.name,
                    inputs=[{"uri": f.source, "sha256": f.source_sha256, "dataset": spec.name}],
                    outputs=[{"uri": f.target, "sha256": f.target_sha256, "dataset": spec.name}],
                    details={"key": key, "method": f.method},
                ),
            )  # fmt: skip
            self.record(
                context, "key.rotate", step="summary", dataset=spec.name,
                details={"key": key, "version": result.version, "retired": result.retired},
            )  # fmt: skip
        return {
            "version": result.version,
            "files": [f.target for f in result.files],
            "retired": result.retired,
        }

"""Reading a catalog dataset for a declared purpose: checked, recorded, then read (decrypted transparently).

``read_dataset`` is the read for code that is not an operator (a TaskFlow task, a notebook, a script); the
operators make the same check through their base class.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_aisec import config
from airflow_aisec.governance.purpose import decide_purpose, record_purpose

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.crypto.datasets import DatasetReader
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.io import FileInfo, S3Options


def running_task() -> str | None:
    """``dag_id.task_id`` of the Airflow task running this code, else None."""
    dag, task = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_TASK_ID")
    return f"{dag}.{task}" if dag and task else None


def dataset_reader(
    keys: KeySource,
    dataset: str,
    purpose: str | None,
    *,
    audit: AuditLog | None = None,
    task: str | None = None,
    require: bool | None = None,
) -> DatasetReader:
    """The transparent (decrypting) reader of ``dataset``, once its read for ``purpose`` is allowed.

    The decision is recorded in ``audit`` (default: the configured audit log) first; a refused read raises
    ``PurposeError`` naming dataset, purpose, task and the dataset's purposes, and nothing is read.
    """
    from airflow_aisec.crypto.datasets import reader_for

    decision = decide_purpose(keys.catalog, dataset, purpose, task=task or running_task(), require=require)
    if audit is not None:
        record_purpose(audit, decision)
    else:
        from airflow_aisec.audit import AuditLog

        with AuditLog.open() as log:
            record_purpose(log, decision)
    if not decision.allowed:
        raise decision.error()
    return reader_for(keys, keys.catalog.dataset(dataset))


def read_dataset(
    name: str,
    purpose: str | None = None,
    *,
    catalog: Catalog | str | Path | None = None,
    variables: dict[str, str] | None = None,
    columns: Sequence[str] | None = None,
    keys: KeySource | None = None,
    audit: AuditLog | None = None,
    s3: S3Options | None = None,
    task: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """The record batches of catalog dataset ``name``, read for ``purpose``.

    The purpose is checked against the dataset's ``purposes`` and recorded (``purpose.check``) before any
    file is listed; a refusal raises ``PurposeError`` here, not on the first batch. Encrypted columns and
    files are decrypted with the catalog's keys.

    :param catalog: a loaded catalog, or its file; default ``[aisec] catalog``.
    :param variables: placeholder values over ``[aisec] catalog_vars`` (when the catalog is a file).
    :param columns: the columns to read; default all.
    :param keys: the catalog's keys; default the local keyring (``[aisec] keyring``) and boto3's KMS chain.
    :param audit: the audit log to record in; default ``[aisec] audit_log``.
    :param s3: options for ``s3://`` datasets; default boto3's chain.
    :param task: who reads, as the error names it; default the running Airflow task.
    """
    from airflow_aisec.catalog import Catalog, load_catalog
    from airflow_aisec.catalog.lake import dataset_files
    from airflow_aisec.crypto.keysource import KeySource

    if not isinstance(catalog, Catalog):
        path = config.catalog_path(str(catalog) if catalog is not None else None)
        catalog = load_catalog(path, config.catalog_vars(variables))
    keys = keys if keys is not None else KeySource(catalog, s3=s3)
    reader = dataset_reader(keys, name, purpose, audit=audit, task=task)
    spec = catalog.dataset(name)
    return _batches(reader, dataset_files(spec, s3), spec.format, columns)


def _batches(
    reader: DatasetReader, files: list[FileInfo], fmt: str, columns: Sequence[str] | None
) -> Iterator[pa.RecordBatch]:
    for info in files:
        yield from reader(info, fmt, columns)

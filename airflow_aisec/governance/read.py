"""Reading a catalog dataset for a declared purpose: checked, recorded, then read (decrypted transparently).

``read_dataset`` is the read for code that is not an operator (a TaskFlow task, a notebook, a script); the
operators make the same check through their base class.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_aisec import config
from airflow_aisec.exceptions import ConsentError
from airflow_aisec.governance.consent import (
    FILTER_ACTION,
    ConsentCounts,
    ConsentReader,
    consent_filter,
    refusal_fields,
)
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
) -> DatasetReader | ConsentReader:
    """The transparent (decrypting) reader of ``dataset``, once its read for ``purpose`` is allowed.

    The decision is recorded in ``audit`` (default: the configured audit log) first; a refused read raises
    ``PurposeError`` naming dataset, purpose, task and the dataset's purposes, and nothing is read. For a
    purpose that needs consent the reader keeps only the rows of subjects with a current consent and records
    each file's counts (``consent.filter``); rows that cannot be tied to consents raise ``ConsentError``.
    """
    from airflow_aisec.crypto.datasets import reader_for

    task = task or running_task()
    decision = decide_purpose(keys.catalog, dataset, purpose, task=task, require=require)
    _record(audit, lambda log: record_purpose(log, decision))
    if not decision.allowed:
        raise decision.error()
    reader = reader_for(keys, keys.catalog.dataset(dataset))
    try:
        consent = consent_filter(keys, dataset, purpose)
    except ConsentError as e:
        refused = refusal_fields(dataset, purpose, e, task)
        _record(audit, lambda log: log.append(FILTER_ACTION, **refused))
        raise
    if consent is None:
        return reader

    def on_file(info: FileInfo, counts: ConsentCounts, complete: bool) -> None:
        fields = consent.audit_fields(counts, complete=complete, task=task)
        fields["inputs"] = [{"uri": info.uri, "dataset": dataset}]
        _record(audit, lambda log: log.append(FILTER_ACTION, **fields))

    return ConsentReader(reader, consent, on_file)


def _record(audit: AuditLog | None, append: Callable[[AuditLog], object]) -> None:
    """Append to ``audit``, else to the configured audit log."""
    if audit is not None:
        append(audit)
        return
    from airflow_aisec.audit import AuditLog

    with AuditLog.open() as log:
        append(log)


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
    files are decrypted with the catalog's keys. A purpose that needs consent keeps only consenting subjects'
    rows (see ``dataset_reader``).

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
    reader: DatasetReader | ConsentReader, files: list[FileInfo], fmt: str, columns: Sequence[str] | None
) -> Iterator[pa.RecordBatch]:
    for info in files:
        yield from reader(info, fmt, columns)

"""A dataset's page: its classification in the catalog (columns, entities, masking, encryption, retention)
and the recorded operations on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_aisec.audit import EntryQuery
from airflow_aisec.review.entries import EntryRow, entry_datasets, entry_row

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog.models import Catalog

_RECENT = 20


@dataclass(frozen=True)
class ColumnRow:
    """One column: the entity it holds, how it is masked, whether it is encrypted at rest."""

    name: str
    entity: str | None
    reviewed: bool
    strategy: str | None
    options: dict[str, object]
    encrypted: bool
    per_subject_key: bool


@dataclass(frozen=True)
class DatasetView:
    """What the catalog says about one dataset, and the newest entries touching it."""

    name: str
    in_catalog: bool
    uri: str | None = None
    format: str | None = None
    identity: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    columns: list[ColumnRow] = field(default_factory=list)
    encryption_key: str | None = None
    retention: str | None = None
    legal_hold: str | None = None
    erasure: str | None = None
    purposes: list[str] = field(default_factory=list)
    recent: list[EntryRow] = field(default_factory=list)
    dags: list[str] = field(default_factory=list)


def dataset_view(name: str, catalog: Catalog | None, log: AuditLog | None) -> DatasetView:
    """The classification of ``name`` (when the catalog has it) and its newest audit entries."""
    recent = log.search(EntryQuery(dataset=name), limit=_RECENT).entries if log is not None else []
    rows = [entry_row(e) for e in recent]
    dags = sorted({r.dag_id for r in rows if r.dag_id})
    dataset = catalog.datasets.get(name) if catalog is not None else None
    if dataset is None:
        return DatasetView(name, in_catalog=False, recent=rows, dags=dags)
    encryption = dataset.encryption
    encrypted = set(encryption.columns) if encryption else set()
    per_subject = set(encryption.per_subject_columns) if encryption else set()
    columns = [
        ColumnRow(
            name=column_name,
            entity=column.pii,
            reviewed=column.reviewed,
            strategy=column.mask.strategy if column.mask else None,
            options=column.mask.options if column.mask else {},
            encrypted=column_name in encrypted,
            per_subject_key=column_name in per_subject,
        )
        for column_name, column in dataset.columns.items()
    ]
    retention = dataset.retention
    hold = dataset.legal_hold
    return DatasetView(
        name=name,
        in_catalog=True,
        uri=dataset.uri,
        format=dataset.format,
        identity=dict(dataset.identity),
        references=dict(dataset.references),
        columns=columns,
        encryption_key=encryption.key if encryption else None,
        retention=f"{retention.keep_for} on {retention.column}" if retention else None,
        legal_hold=f"{hold.reason} until {hold.until.isoformat()}" if hold else None,
        erasure=dataset.erasure,
        purposes=list(dataset.purposes),
        recent=rows,
        dags=dags,
    )


def dag_datasets(log: AuditLog, dag_id: str, limit: int = 200) -> list[str]:
    """The datasets the newest entries of DAG ``dag_id`` name (what the DAG's Privacy tab lists)."""
    found: set[str] = set()
    for entry in log.search(EntryQuery(dag_id=dag_id), limit=limit).entries:
        found.update(entry_datasets(entry.data))
    return sorted(found)

"""What the catalog declares and the audit log recorded about each dataset and purpose, by indexed search.

Entries are found through the log's search terms (``AuditLog.newest``), a bounded number per dataset and per
action, never by reading the whole log: the newest ``dataset.inventory`` gives a dataset's rows, ``pii.mask``
entries the columns masked, ``purpose.check`` entries what each purpose read, and every entry naming a
dataset its flows to other datasets (recipients inside the lake).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit import EntryQuery
from airflow_aisec.audit.lineage import LineageGraph
from airflow_aisec.catalog.models import FREE_TEXT
from airflow_aisec.catalog.purposes import Taxonomy
from airflow_aisec.governance.dpia.model import DatasetFacts, DatasetUse, PurposeUse, is_special
from airflow_aisec.governance.purpose import ACTION as PURPOSE_ACTION

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog, Entry
    from airflow_aisec.catalog.models import Catalog, Dataset

MAX_ENTRIES = 5000
"""Entries read per dataset or action: the newest ones (a DPIA describes current processing)."""


def location_of(dataset: Dataset) -> str:
    """Where the dataset is stored: as the catalog declares it, else from its URI (S3 bucket, or local)."""
    if dataset.location:
        return dataset.location
    if dataset.uri.startswith(("s3://", "s3a://")):
        bucket = dataset.uri.split("://", 1)[1].split("/", 1)[0]
        return f"S3 bucket {bucket} (region of the AWS connection)"
    return "local file system"


def retention_text(dataset: Dataset) -> str | None:
    """``P3Y after created_at``, or None without a rule."""
    rule = dataset.retention
    return f"{rule.keep_for} after {rule.column}" if rule is not None else None


def dataset_facts(catalog: Catalog, log: AuditLog) -> tuple[DatasetFacts, ...]:
    """Every catalog dataset described from the catalog and the newest entries about it."""
    flows = flow_graph(catalog, log)
    found = []
    for name, dataset in sorted(catalog.datasets.items()):
        rows, source = _rows(log, name)
        pii = dict(dataset.pii_columns)
        masked = _masked_by_log(log, name) & set(pii)
        downstream = sorted({target for _source, target, _labels in flows.downstream(name)} - {name})
        found.append(
            DatasetFacts(
                name=name,
                uri=dataset.uri,
                location=location_of(dataset),
                format=dataset.format,
                purposes=tuple(dataset.purposes),
                pii_columns=pii,
                free_text=tuple(c for c, e in pii.items() if e == FREE_TEXT),
                special=_special(dataset),
                encrypted=tuple(
                    c for c in (dataset.encryption.columns if dataset.encryption else []) if c in pii
                ),
                masked=tuple(sorted(masked)),
                mask_rules=tuple(c for c, col in dataset.columns.items() if col.mask is not None),
                retention=retention_text(dataset),
                legal_hold=_hold(dataset),
                recipients=tuple(dataset.recipients),
                flows_to=tuple(downstream),
                rows=rows,
                rows_source=source,
                erasure=dataset.erasure,
            )
        )
    return tuple(found)


def _special(dataset: Dataset) -> dict[str, str]:
    """Column → special category: as the column declares it, else as its entity type names it."""
    found = {}
    for name, column in dataset.columns.items():
        declared = column.special_category
        if column.pii and (declared or is_special(column.pii)):
            found[name] = str(declared or column.pii)
    return found


def _hold(dataset: Dataset) -> str | None:
    hold = dataset.legal_hold
    return f"{hold.reason} (until {hold.until.isoformat()})" if hold is not None else None


def _rows(log: AuditLog, name: str) -> tuple[int | None, str | None]:
    """The dataset's rows from its newest inventory, else the most rows any recent entry of it records."""
    for entry in log.newest(EntryQuery(action="dataset.inventory", dataset=name), 20):
        rows = _int(entry.data.get("rows"))
        if rows is not None and entry.data.get("dataset") == name:
            return rows, f"dataset.inventory #{entry.index}"
    best: tuple[int, int] | None = None
    for entry in log.newest(EntryQuery(dataset=name), 200):
        rows = _int(entry.data.get("rows"))
        if rows is not None and entry.data.get("dataset") == name and (best is None or rows > best[0]):
            best = (rows, entry.index)
    return (best[0], f"{_action_at(log, best[1])} #{best[1]}") if best else (None, None)


def _action_at(log: AuditLog, index: int) -> str:
    entries = list(log.entries(index, index + 1))
    return entries[0].action if entries else "entry"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _masked_by_log(log: AuditLog, name: str) -> set[str]:
    """Columns a recorded masking left masked in this dataset: it wrote the dataset (one of its outputs), or
    masked it in place (its own dataset, no outputs). Masking rules alone protect nothing stored."""
    found: set[str] = set()
    for entry in log.newest(EntryQuery(action="pii.mask", dataset=name, outcome="success"), 200):
        outputs = {o.get("dataset") for o in entry.data.get("outputs") or [] if isinstance(o, dict)}
        if name in outputs or (not outputs and entry.data.get("dataset") == name):
            found |= {str(c).split(".", 1)[0].split("[", 1)[0] for c in entry.data.get("columns") or []}
    return found


def flow_graph(catalog: Catalog, log: AuditLog) -> LineageGraph:
    """The lineage of the catalog's datasets, from the newest entries naming each of them."""
    seen: dict[int, Entry] = {}
    for name in catalog.datasets:
        for entry in log.newest(EntryQuery(dataset=name), MAX_ENTRIES):
            seen.setdefault(entry.index, entry)
    return LineageGraph.from_entries(seen[i] for i in sorted(seen))


def purpose_checks(log: AuditLog) -> list[Entry]:
    """The newest ``purpose.check`` entries, oldest first."""
    return list(reversed(log.newest(EntryQuery(action=PURPOSE_ACTION), MAX_ENTRIES)))


@dataclasses.dataclass(frozen=True)
class ReadCounts:
    """Every read check: allowed for a purpose, refused (with or without one), allowed without one."""

    allowed: int = 0
    refused: int = 0
    undeclared: int = 0


def purpose_uses(catalog: Catalog, checks: Iterable[Entry]) -> tuple[tuple[PurposeUse, ...], ReadCounts]:
    """Per purpose named by the catalog: what it may read, what it did read, its PII columns never read;
    and the counts of every read check."""
    taxonomy = Taxonomy.of(catalog)
    tally: dict[tuple[str, str], dict[str, Any]] = defaultdict(_empty_tally)
    counts: Counter[str] = Counter()
    for entry in checks:
        details = entry.data.get("details") or {}
        requested, dataset = details.get("purpose"), entry.data.get("dataset")
        if not isinstance(dataset, str):
            continue
        allowed = entry.data.get("outcome") == "success"
        if not isinstance(requested, str):
            counts["undeclared" if allowed else "refused"] += 1
            continue
        counts["allowed" if allowed else "refused"] += 1
        for purpose in taxonomy.lineage(requested):
            _count(tally[(purpose, dataset)], entry, catalog.datasets.get(dataset))
    named = sorted({p for d in catalog.datasets.values() for p in d.purposes} | set(catalog.purposes))
    return tuple(_purpose_use(catalog, taxonomy, p, tally) for p in named), ReadCounts(**counts)


def _empty_tally() -> dict[str, Any]:
    return {"allowed": 0, "refused": 0, "columns": set(), "last": None}


def _count(tally: dict[str, Any], entry: Entry, dataset: Dataset | None) -> None:
    if entry.data.get("outcome") != "success":
        tally["refused"] += 1
        return
    tally["allowed"] += 1
    tally["last"] = str(entry.data.get("time", ""))[:19].replace("T", " ") or tally["last"]
    listed = [str(c) for c in entry.data.get("columns") or [] if isinstance(c, str)]
    # A check that names no columns stands for a read of the whole dataset.
    tally["columns"] |= set(listed or (dataset.columns if dataset is not None else []))


def _purpose_use(
    catalog: Catalog, taxonomy: Taxonomy, purpose: str, tally: Mapping[tuple[str, str], dict[str, Any]]
) -> PurposeUse:
    may_read = {
        name: tuple(dataset.columns)
        for name, dataset in sorted(catalog.datasets.items())
        if any(taxonomy.allows(allowed, purpose) for allowed in dataset.purposes)
    }
    used = []
    for (key, dataset), counts in sorted(tally.items()):
        if key == purpose:
            columns = tuple(sorted(counts["columns"]))
            used.append(DatasetUse(dataset, counts["allowed"], counts["refused"], columns, counts["last"]))
    read = {(u.dataset, c) for u in used for c in u.columns_read}
    unused = tuple(
        f"{name}.{column}"
        for name in may_read
        for column in catalog.datasets[name].pii_columns
        if (name, column) not in read
    )
    known = taxonomy.purposes.get(purpose)
    return PurposeUse(
        purpose=purpose,
        description=known.description if known else "",
        origin=known.origin if known else "undeclared",
        may_read=may_read,
        used=tuple(used),
        unused_pii=unused,
    )

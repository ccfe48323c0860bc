"""Scan and mask a table inside a task: a pandas DataFrame or an Arrow table, with or without a catalog.

``mask_table`` masks what it is told to: the catalog's rules for a dataset (``catalog=``/``dataset=``),
explicit column rules (``columns={"email": "pseudonymize"}``), or, given neither, what a scan of the table
finds. It reads its keys from the same keyring, under the same key names, as ``PIIMaskOperator``, so a value
gets the same pseudonym in a task as in a dataset the operator masked. ``scan_table`` classifies the columns
and, with a catalog dataset, names the PII the catalog does not declare.

Both return what they got: a DataFrame for a DataFrame, an Arrow table for a table, a record batch for a
batch. Neither imports Airflow; inside a task, the audit entry names the task from Airflow's environment.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_aisec import config
from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.mask import (
    ColumnPlan,
    ColumnRule,
    Masker,
    plan_from_catalog,
    plan_from_findings,
    plan_from_rules,
)
from airflow_aisec.pii.scan import DEFAULT_SAMPLE, ColumnFinding, as_json, scan_batches, undeclared
from airflow_aisec.pii.types import FREE_TEXT

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.pii.engine import PIIEngine

log = logging.getLogger(__name__)

MODES = ("ner", "patterns")


@dataclass(frozen=True)
class TableScan:
    """What ``scan_table`` found: a finding per column (and nested field), and what the catalog misses.

    ``undeclared`` lists the columns holding PII that the catalog dataset does not declare (empty without
    a dataset); ``rows`` is how many rows were read, so "nothing found" says where it looked.
    """

    findings: dict[str, ColumnFinding]
    rows: int
    undeclared: list[str] = field(default_factory=list)

    def pii_columns(self, min_confidence: float = 0.5) -> dict[str, str]:
        """Column → entity, for each column found to hold PII with at least ``min_confidence``."""
        return {
            name: f.entity for name, f in self.findings.items() if f.entity and f.confidence >= min_confidence
        }

    def as_json(self) -> dict[str, Any]:
        """Columns, entities, confidences and undeclared columns: no values, fit for XCom."""
        return {**as_json(self.findings), "rows": self.rows, "undeclared": list(self.undeclared)}


# -- tables in, tables out ---------------------------------------------------------------------------------


def _is_dataframe(data: object) -> bool:
    # pandas is imported only by whoever built the DataFrame: without it loaded, ``data`` cannot be one.
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def _as_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if _is_dataframe(data):
        try:
            return pa.Table.from_pandas(data)
        except (pa.ArrowException, TypeError, ValueError) as e:
            # Arrow's message may quote a value of the offending column: keep only its kind.
            raise PIIError(
                f"the DataFrame cannot be read as an Arrow table ({e.__class__.__name__})"
            ) from None
    raise PIIError(
        f"expected a pandas DataFrame, a pyarrow Table or a pyarrow RecordBatch, got a {type(data).__name__}"
    )


def _like(original: Any, table: pa.Table) -> Any:
    """``table`` as the kind of ``original``: a DataFrame, a Table or a RecordBatch."""
    if isinstance(original, pa.Table):
        return table
    if isinstance(original, pa.RecordBatch):
        return pa.record_batch([column.combine_chunks() for column in table.columns], schema=table.schema)
    return table.to_pandas()


def _digest(table: pa.Table) -> str:
    """SHA-256 of the table as an Arrow IPC stream: the content digest of an in-memory table."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


# -- catalog and engine ----------------------------------------------------------------------------------


def _load(catalog: Catalog | str | Path | None, variables: Mapping[str, str] | None) -> Catalog:
    from airflow_aisec.catalog import Catalog, load_catalog

    if isinstance(catalog, Catalog):
        return catalog
    path = config.catalog_path(str(catalog) if catalog is not None else None)
    return load_catalog(path, config.catalog_vars(dict(variables) if variables else None))


def _catalog_dataset(
    catalog: Catalog | str | Path | None, dataset: str | None, variables: Mapping[str, str] | None
) -> tuple[Catalog | None, Dataset | None]:
    """The catalog (the configured one when only ``dataset`` is named) and the dataset, when asked for."""
    if catalog is None and dataset is None:
        return None, None
    loaded = _load(catalog, variables)
    if dataset is None:
        return loaded, None
    try:
        return loaded, loaded.dataset(dataset)
    except KeyError as e:
        raise PIIError(str(e.args[0])) from None


def _engine(mode: str, catalog: Catalog | None) -> PIIEngine:
    from airflow_aisec.pii.engine import get_engine
    from airflow_aisec.pii.pipeline import recognizer_specs

    if mode not in MODES:
        raise PIIError(f"unknown mode {mode!r}: use ner or patterns")
    return get_engine("ner" if mode == "ner" else "patterns", recognizers=recognizer_specs(catalog))


# -- scan ------------------------------------------------------------------------------------------------


def scan_table(
    data: Any,
    *,
    catalog: Catalog | str | Path | None = None,
    dataset: str | None = None,
    variables: Mapping[str, str] | None = None,
    mode: str = "ner",
    engine: PIIEngine | None = None,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
) -> TableScan:
    """Classify every column of ``data`` (a DataFrame, Table or RecordBatch) from its name and values.

    :param catalog: Catalog file or loaded ``Catalog``; default ``[aisec] catalog`` when ``dataset`` is set.
        Its custom recognizers are used.
    :param dataset: Catalog dataset to compare with: PII it does not declare is listed as ``undeclared``.
    :param variables: Catalog placeholder values; default ``[aisec] catalog_vars``.
    :param mode: ``ner`` (spaCy model ``[aisec] spacy_model`` + patterns) or ``patterns``.
    :param engine: A detection engine to use instead of building one from ``mode``.
    :param sample: Values sampled per column.
    """
    table = _as_table(data)
    loaded, spec = _catalog_dataset(catalog, dataset, variables)
    findings = scan_batches(table.to_batches(), engine or _engine(mode, loaded), sample=sample, seed=seed)
    drift = [f.column for f in undeclared(findings, spec)] if spec is not None else []
    return TableScan(findings, table.num_rows, drift)


# -- mask ------------------------------------------------------------------------------------------------


def _plans(
    table: pa.Table,
    spec: Dataset | None,
    pseudonym_key: str | None,
    columns: Mapping[str, ColumnRule] | None,
) -> list[ColumnPlan] | None:
    """The plans of the column rules or of the catalog dataset; None when neither is given (scan)."""
    if columns is not None:
        plans = plan_from_rules(columns)
        if not plans:
            raise PIIError("columns= names no column to mask")
        missing = [p.column for p in plans if _top_level(p.column) not in table.schema.names]
        if missing:
            raise PIIError(
                f"column rule(s) for {', '.join(missing)}: no such column in the table "
                f"(it has {', '.join(table.schema.names) or 'no column'})"
            )
        return plans
    if spec is not None:
        # Declared columns the table does not hold carry nothing to mask (a task may read a few columns).
        held = set(table.schema.names)
        return [p for p in plan_from_catalog(spec, pseudonym_key) if _top_level(p.column) in held]
    return None


def _top_level(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _keyring(keyring: LocalKeyring | str | Path | None) -> LocalKeyring:
    from airflow_aisec.crypto.keyring import LocalKeyring

    if isinstance(keyring, LocalKeyring):
        return keyring
    return LocalKeyring(config.get_setting("keyring", str(keyring) if keyring is not None else None))


def _entry_fields(
    name: str | None,
    output_name: str | None,
    source: pa.Table,
    masked: pa.Table,
    plans: list[ColumnPlan],
    counts: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    """The ``pii.mask`` audit fields of masking an in-memory table: names, digests, rows, columns masked,
    strategies and counts per entity. Column names and numbers only, never a value."""
    per_entity: Counter[str] = Counter()
    for by_entity in counts.values():
        per_entity.update(by_entity)
    strategies = {p.column: p.strategy for p in plans}
    source_ref = {k: v for k, v in {"dataset": name, "sha256": _digest(source)}.items() if v}
    target_ref = {k: v for k, v in {"dataset": output_name, "sha256": _digest(masked)}.items() if v}
    return {
        "dataset": name,
        "inputs": [source_ref],
        "outputs": [target_ref],
        "rows": source.num_rows,
        "columns": sorted(strategies) or None,
        "outcome": "success" if plans else "noop",
        "details": {
            "masked_per_entity": dict(sorted(per_entity.items())),
            "strategies": strategies,
            "in_memory": True,
        },
    }


def _record(fields: dict[str, Any], audit_log: AuditLog | str | None) -> int:
    """Append the entry to ``audit_log`` (open as given, else opened with its own keys and closed)."""
    from airflow_aisec.audit import AuditLog

    if isinstance(audit_log, AuditLog):
        return audit_log.append("pii.mask", **fields)
    with AuditLog.open(audit_log) as opened:
        return opened.append("pii.mask", **fields)


def mask_table(
    data: Any,
    *,
    catalog: Catalog | str | Path | None = None,
    dataset: str | None = None,
    variables: Mapping[str, str] | None = None,
    columns: Mapping[str, ColumnRule] | None = None,
    mode: str = "ner",
    engine: PIIEngine | None = None,
    min_confidence: float = 0.5,
    keyring: LocalKeyring | str | Path | None = None,
    audit: bool = False,
    audit_log: AuditLog | str | None = None,
    name: str | None = None,
    output_name: str | None = None,
) -> Any:
    """``data`` (a DataFrame, Table or RecordBatch) with its PII masked, as the same kind.

    What is masked: with ``dataset``, the catalog's PII columns by their ``mask:`` (or the entity's default,
    pseudonyms keyed with ``subjects.pseudonym_key``), those the table holds; with ``columns``, those
    columns by those rules (``"pseudonymize"`` or ``{"strategy": "generalize", "to": "year"}``); with
    neither, every column a scan finds with at least ``min_confidence``. Every other column is untouched.

    :param catalog: Catalog file or loaded ``Catalog``; default ``[aisec] catalog`` when ``dataset`` is set.
    :param dataset: Catalog dataset whose rules apply.
    :param variables: Catalog placeholder values; default ``[aisec] catalog_vars``.
    :param columns: Column rules, instead of a catalog dataset.
    :param mode: Detection for the scan and for free-text columns: ``ner`` or ``patterns``.
    :param engine: A detection engine to use instead of building one from ``mode``.
    :param keyring: Local keyring of the pseudonymize/encrypt keys; default ``[aisec] keyring``.
    :param audit: Record a ``pii.mask`` entry in the ``[aisec] audit_log`` (implied by ``audit_log``).
    :param audit_log: An open ``AuditLog``, or the URI or Airflow connection id of one, to record in.
    :param name: Name of the data in the audit entry and lineage; default the catalog dataset.
    :param output_name: Name of the masked data in the audit entry and lineage, e.g. the catalog dataset
        it is written to; none by default, as the table is in memory (its digest is recorded).

    Raises ``PIIError`` for a rule naming a column the table lacks, an unknown strategy or option, or a
    strategy unfit for a column's type; errors name columns, never values.
    """
    if columns is not None and (catalog is not None or dataset is not None):
        raise PIIError("give either columns= rules or a catalog dataset, not both")
    if catalog is not None and dataset is None:
        raise PIIError("catalog= needs dataset=: the dataset whose rules apply")
    table = _as_table(data)
    loaded, spec = _catalog_dataset(catalog, dataset, variables)
    pseudonym_key = loaded.subjects.pseudonym_key if loaded is not None else None
    plans = _plans(table, spec, pseudonym_key, columns)
    if plans is None:
        engine = engine or _engine(mode, loaded)
        plans = plan_from_findings(scan_batches(table.to_batches(), engine), min_confidence)
    if any(p.strategy == FREE_TEXT for p in plans):
        engine = engine or _engine(mode, loaded)
    ring = _keyring(keyring)
    masker = Masker(plans, ring, find_spans=engine.find_spans if engine is not None else None)
    masked = masker.mask_table(table) if plans else table
    log.info(
        "masked %d rows: %s",
        table.num_rows,
        ", ".join(f"{p.column} ({p.strategy})" for p in plans) or "no PII column found",
    )
    if audit or audit_log is not None:
        name = name or (spec.name if spec is not None else None)
        fields = _entry_fields(name, output_name, table, masked, plans, masker.counts)
        _record(fields, audit_log)
    return _like(data, masked)

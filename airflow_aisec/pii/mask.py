"""Plan the masking of a dataset's PII columns and apply it to Arrow record batches and tables.

A plan names, per column, the entity it holds and the strategy (see ``strategies``) that masks it: from the
catalog (``plan_from_catalog``) or from what detection found (``plan_from_findings``). A ``Masker`` applies
the plans, keeping every other column untouched, and counts what it masked for the audit entry.

Plans apply to top-level columns only: a field inside a struct or a list cannot be planned yet (``redact``
or ``drop`` of the whole top-level column masks a nested one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from airflow_aisec.catalog.models import Dataset
from airflow_aisec.crypto.keyring import KeyVersion, LocalKeyring
from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.strategies import (
    DROP,
    ENCRYPTION_KEY,
    PSEUDONYM_KEY,
    MaskRule,
    Values,
    apply_strategy,
    check_options,
    default_strategy,
)
from airflow_aisec.pii.types import FREE_TEXT, SpanFinder

_DEFAULT_KEYS = {"pseudonymize": PSEUDONYM_KEY, "encrypt": ENCRYPTION_KEY}


@dataclass
class ColumnPlan:
    """Mask ``column`` (holding ``entity``) with ``strategy`` and its ``options``."""

    column: str
    entity: str | None
    strategy: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def rule(self) -> MaskRule:
        """The strategy and options, as ``apply_strategy`` takes them."""
        return MaskRule(self.strategy, dict(self.options))

    @classmethod
    def default(cls, column: str, entity: str) -> ColumnPlan:
        """The plan of the default strategy for ``entity``."""
        rule = default_strategy(entity)
        return cls(column, entity, rule.strategy, dict(rule.options))


def plan_from_catalog(dataset: Dataset, pseudonym_key: str | None = None) -> list[ColumnPlan]:
    """A plan for every column the catalog declares as PII: its ``mask``, else the entity's default.

    ``pseudonym_key`` (the catalog's ``subjects.pseudonym_key``) keys every ``pseudonymize`` column that
    names no ``key`` of its own, so masked columns and the audit log pseudonymize a subject alike.
    """
    plans = []
    for name, column in dataset.columns.items():
        if not column.pii:
            continue
        if column.mask is None:
            plans.append(ColumnPlan.default(name, column.pii))
        else:
            plans.append(ColumnPlan(name, column.pii, column.mask.strategy, column.mask.options))
    for plan in plans:
        if pseudonym_key and plan.strategy == "pseudonymize":
            plan.options.setdefault("key", pseudonym_key)
    return plans


def _entity_and_confidence(finding: Any) -> tuple[str | None, float]:
    # Findings are (entity, confidence) pairs; objects with those two attributes are accepted too.
    if hasattr(finding, "entity") and hasattr(finding, "confidence"):
        return finding.entity, float(finding.confidence)
    entity, confidence = finding
    return entity, float(confidence)


def plan_from_findings(findings: Mapping[str, Any], min_confidence: float = 0.5) -> list[ColumnPlan]:
    """The default plan for every column detected as an entity with at least ``min_confidence``.

    ``findings`` maps a column to ``(entity, confidence)``; columns without an entity are left alone.
    """
    plans = []
    for column, finding in findings.items():
        entity, confidence = _entity_and_confidence(finding)
        if entity and confidence >= min_confidence:
            plans.append(ColumnPlan.default(column, entity))
    return plans


def _check_plans(plans: list[ColumnPlan], find_spans: SpanFinder | None) -> None:
    seen: set[str] = set()
    for plan in plans:
        if plan.column in seen:
            raise PIIError(f"column {plan.column!r} is planned twice")
        seen.add(plan.column)
        check_options(plan.strategy, plan.options, plan.column)
        if plan.strategy == FREE_TEXT and find_spans is None:
            raise PIIError(
                f"column {plan.column!r} is free text: masking it needs a span finder (find_spans)"
            )


def _resolve_keys(plans: list[ColumnPlan], keyring: LocalKeyring) -> dict[str, KeyVersion]:
    """The key of each pseudonymized or encrypted column, each named key read from the keyring once."""
    by_name: dict[str, KeyVersion] = {}
    keys: dict[str, KeyVersion] = {}
    for plan in plans:
        if plan.strategy not in _DEFAULT_KEYS:
            continue
        name = plan.options.get("key", _DEFAULT_KEYS[plan.strategy])
        if not isinstance(name, str) or not name:
            raise PIIError(f"{plan.strategy} of column {plan.column!r}: `key` must name a keyring key")
        if name not in by_name:
            by_name[name] = keyring.ensure(name, "symmetric")
        keys[plan.column] = by_name[name]
    return keys


class Masker:
    """Masks the planned columns of record batches; every other column passes through untouched.

    Keys are read from the keyring once, when the masker is made (a missing key is created). ``counts``
    adds up, per column and entity, the values masked (for free text: the entities replaced, per type)
    over every batch masked so far.
    """

    def __init__(
        self, plans: Iterable[ColumnPlan], keyring: LocalKeyring, find_spans: SpanFinder | None = None
    ) -> None:
        self.plans = list(plans)
        _check_plans(self.plans, find_spans)
        self._by_column = {plan.column: plan for plan in self.plans}
        self._keys = _resolve_keys(self.plans, keyring)
        self._find_spans = find_spans
        self.counts: dict[str, dict[str, int]] = {}
        self._checked: tuple[pa.Schema, pa.Schema] | None = None

    def __repr__(self) -> str:
        return f"Masker({', '.join(f'{p.column}={p.strategy}' for p in self.plans)})"

    def _apply(self, plan: ColumnPlan, values: Values) -> Values:
        return apply_strategy(
            values,
            plan.rule,
            column=plan.column,
            entity=plan.entity,
            key=self._keys.get(plan.column),
            find_spans=self._find_spans,
        )

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """The schema of masked batches: ``schema`` without dropped columns, types unchanged.

        Raises ``PIIError`` when a planned column is missing or its type does not suit its strategy.
        """
        if self._checked is not None and self._checked[0].equals(schema, check_metadata=True):
            return self._checked[1]
        missing = [p.column for p in self.plans if p.column not in schema.names]
        if missing:
            raise PIIError(f"column(s) to mask not in the data: {', '.join(missing)}")
        fields = []
        for schema_field in schema:
            plan = self._by_column.get(schema_field.name)
            if plan is None:
                fields.append(schema_field)
                continue
            # Masking an empty column checks the strategy suits the type, before any data is read.
            masked = self._apply(plan, pa.array([], schema_field.type)).values
            if masked is DROP:
                continue
            fields.append(schema_field.with_nullable(True) if plan.strategy == "redact" else schema_field)
        output = pa.schema(fields, metadata=schema.metadata)
        self._checked = (schema, output)
        return output

    def _mask_columns(self, names: list[str], columns: list[Values]) -> list[Values]:
        masked_columns = []
        for name, values in zip(names, columns, strict=True):
            plan = self._by_column.get(name)
            if plan is None:
                masked_columns.append(values)
                continue
            masked = self._apply(plan, values)
            counts = self.counts.setdefault(name, {})
            for entity, n in masked.counts.items():
                if n:
                    counts[entity] = counts.get(entity, 0) + n
            if masked.values is not DROP:
                masked_columns.append(masked.values)
        return masked_columns

    def mask_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with its planned columns masked and dropped columns removed."""
        schema = self.output_schema(batch.schema)
        columns = self._mask_columns(batch.schema.names, list(batch.columns))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def mask_table(self, table: pa.Table) -> pa.Table:
        """The table masked column by column (each distinct value of a column transformed once)."""
        schema = self.output_schema(table.schema)
        return pa.Table.from_arrays(
            self._mask_columns(table.schema.names, list(table.columns)), schema=schema
        )

"""Plan the masking of a dataset's PII columns and apply it to Arrow record batches and tables.

A plan names, per column, the entity it holds and the strategy (see ``strategies``) that masks it: from the
catalog (``plan_from_catalog``) or from what detection found (``plan_from_findings``). A ``Masker`` applies
the plans, keeping every other column untouched, and counts what it masked for the audit entry.

A plan's column may be a path into a struct or list column (``payload.ip``, ``items[].email``, ``tags[]``;
see ``airflow_aisec.io.nested``): the strategy masks the values the path reaches, keeping the column's shape.
When free text is planned, each row's own values of the other planned columns are masked in its free text
too, whatever the engine finds (see ``row_context``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from airflow_aisec.catalog.models import Dataset
from airflow_aisec.crypto.keyring import KeyVersion, LocalKeyring
from airflow_aisec.exceptions import FieldPathError, PIIError
from airflow_aisec.io.nested import (
    FieldPath,
    leaves,
    looks_nested,
    parse_path,
    resolve,
    with_leaves,
    without_field,
)
from airflow_aisec.pii.row_context import Needle, NeedleCache, RowNeedles
from airflow_aisec.pii.strategies import (
    DROP,
    Masked,
    MaskRule,
    Values,
    apply_strategy,
    check_options,
    default_strategy,
    strategy_named,
)
from airflow_aisec.pii.types import FREE_TEXT, SpanFinder


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


# A column rule: a strategy name, or a mapping of ``strategy`` and its options.
ColumnRule = str | Mapping[str, Any]


def plan_from_rules(rules: Mapping[str, ColumnRule]) -> list[ColumnPlan]:
    """A plan for each column of ``rules``, for data no catalog describes yet.

    ``{"email": "pseudonymize", "birth_date": {"strategy": "generalize", "to": "year"}}``: a rule is a
    strategy name or a mapping of ``strategy`` and its options, as a catalog ``mask:`` (``free_text`` too).
    Raises ``PIIError`` naming the column for an unknown strategy or option, or a malformed rule.
    """
    if not isinstance(rules, Mapping):
        raise PIIError(f"column rules must map column names to strategies, got a {type(rules).__name__}")
    plans = []
    for column, rule in rules.items():
        if not isinstance(column, str) or not column:
            raise PIIError(f"column rules: {column!r} is not a column name")
        if isinstance(rule, str):
            strategy, options = rule, {}
        elif isinstance(rule, Mapping) and isinstance(rule.get("strategy"), str):
            strategy = rule["strategy"]
            options = {k: v for k, v in rule.items() if k != "strategy"}
        else:
            raise PIIError(
                f"column {column!r}: a rule is a strategy name or a mapping with `strategy` and its options"
            )
        check_options(strategy, options, column)
        plans.append(ColumnPlan(column, None, strategy, options))
    return plans


def _path_of(column: str) -> FieldPath | None:
    """The path a plan's column names, or None when it can only be a top-level column name."""
    if not looks_nested(column):
        return FieldPath(column)
    try:
        return parse_path(column)
    except FieldPathError:
        return None  # a top-level column whose name merely looks like a path


def _inside(outer: FieldPath, inner: FieldPath) -> bool:
    return outer.column == inner.column and inner.steps[: len(outer.steps)] == outer.steps


def _check_plans(plans: list[ColumnPlan], find_spans: SpanFinder | None) -> None:
    seen: dict[str, FieldPath | None] = {}
    for plan in plans:
        if plan.column in seen:
            raise PIIError(f"column {plan.column!r} is planned twice")
        path = _path_of(plan.column)
        for other, other_path in seen.items():
            if (
                path is not None
                and other_path is not None
                and (_inside(path, other_path) or _inside(other_path, path))
            ):
                raise PIIError(
                    f"{other!r} and {plan.column!r} are both planned, one inside the other: plan one of them"
                )
        seen[plan.column] = path
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
        strategy = strategy_named(plan.strategy, plan.column)
        if "key" not in strategy.defaults:  # pseudonymize and encrypt: the option names a keyring key
            continue
        name = strategy.option(plan.options, "key")
        if not isinstance(name, str) or not name:
            raise PIIError(f"{plan.strategy} of column {plan.column!r}: `key` must name a keyring key")
        if name not in by_name:
            by_name[name] = keyring.ensure(name, "symmetric")
        keys[plan.column] = by_name[name]
    return keys


def _targets(plans: list[ColumnPlan], schema: pa.Schema) -> dict[str, FieldPath]:
    """Where each plan applies in ``schema``: a top-level column of that name, else the path it spells.

    Raises ``PIIError`` listing the planned columns and paths the data lacks (with the reason for a path).
    """
    targets: dict[str, FieldPath] = {}
    missing = []
    for plan in plans:
        path = FieldPath(plan.column) if plan.column in schema.names else _path_of(plan.column)
        if path is None or path.column not in schema.names:
            missing.append(plan.column)
            continue
        if path.is_nested:
            try:
                resolve(schema, path)
            except FieldPathError as e:
                missing.append(f"{plan.column} ({e})")
                continue
        targets[plan.column] = path
    if missing:
        raise PIIError(f"column(s) to mask not in the data: {', '.join(missing)}")
    return targets


def _text_values(values: Values) -> list[Any] | None:
    value_type = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        return None
    return list(values.to_pylist())


class Masker:
    """Masks the planned columns of record batches; every other column passes through untouched.

    A plan's column is a top-level column or a path into a struct or list column (``payload.ip``,
    ``items[].email``, ``tags[]``, see ``io.nested``): the strategy then masks the values the path reaches,
    and ``drop`` removes the field from its struct. When free text is planned, the row's values of the other
    planned columns are masked in that row's free text too (``row_context``).

    Keys are read from the keyring once, when the masker is made (a missing key is created). ``counts``
    adds up, per planned column or path and entity, the values masked (for free text: the entities
    replaced, per type) over every batch masked so far.
    """

    def __init__(
        self, plans: Iterable[ColumnPlan], keyring: LocalKeyring, find_spans: SpanFinder | None = None
    ) -> None:
        self.plans = list(plans)
        _check_plans(self.plans, find_spans)
        # Drops last: removing a field must not come before the masking of its neighbours.
        self._ordered = sorted(self.plans, key=lambda p: p.strategy == "drop")
        self._keys = _resolve_keys(self.plans, keyring)
        self._find_spans = find_spans
        self._free_text = any(p.strategy == FREE_TEXT for p in self.plans)
        self.counts: dict[str, dict[str, int]] = {}
        self._checked: tuple[pa.Schema, pa.Schema, dict[str, FieldPath]] | None = None

    def __repr__(self) -> str:
        return f"Masker({', '.join(f'{p.column}={p.strategy}' for p in self.plans)})"

    def _apply(self, plan: ColumnPlan, values: Values, context: RowNeedles | None = None) -> Masked:
        return apply_strategy(
            values,
            plan.rule,
            column=plan.column,
            entity=plan.entity,
            key=self._keys.get(plan.column),
            find_spans=self._find_spans,
            context=context if plan.strategy == FREE_TEXT else None,
        )

    def _check(self, schema: pa.Schema) -> tuple[pa.Schema, dict[str, FieldPath]]:
        if self._checked is not None and self._checked[0].equals(schema, check_metadata=True):
            return self._checked[1], self._checked[2]
        targets = _targets(self.plans, schema)
        fields = []
        for schema_field in schema:
            # Masking an empty column checks the strategies suit the types, before any data is read.
            empty = pa.array([], schema_field.type)
            masked = self._mask_column(schema_field.name, empty, targets, None, count=False)
            if masked is DROP:
                continue
            redacted = any(
                p.strategy == "redact" and targets[p.column] == FieldPath(schema_field.name)
                for p in self.plans
            )
            kept = schema_field.with_type(masked.type)
            fields.append(kept.with_nullable(True) if redacted else kept)
        output = pa.schema(fields, metadata=schema.metadata)
        self._checked = (schema, output, targets)
        return output, targets

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """The schema of masked batches: ``schema`` without dropped columns and fields, types unchanged.

        Raises ``PIIError`` when a planned column or path is missing or its type does not suit its strategy.
        """
        return self._check(schema)[0]

    def _count(self, plan: ColumnPlan, masked: Masked) -> None:
        counts = self.counts.setdefault(plan.column, {})
        for entity, n in masked.counts.items():
            if n:
                counts[entity] = counts.get(entity, 0) + n

    def _mask_column(
        self,
        name: str,
        values: Values,
        targets: Mapping[str, FieldPath],
        context: list[list[Needle]] | None,
        *,
        count: bool = True,
    ) -> Values:
        """``values`` of column ``name`` with every plan on it or inside it applied (``DROP`` if dropped)."""
        for plan in self._ordered:
            path = targets[plan.column]
            if path.column != name:
                continue
            if not path.is_nested:
                masked = self._apply(plan, values, context)
                if count:
                    self._count(plan, masked)
                values = masked.values
                continue
            found = leaves(values, path)
            per_leaf = None  # a nested free-text value gets the context of the row it is in
            if context is not None and plan.strategy == FREE_TEXT:
                per_leaf = [context[r] for r in found.rows.to_numpy()]
            masked = self._apply(plan, found.values, per_leaf)
            if count:
                self._count(plan, masked)
            if masked.values is DROP:
                values = without_field(values, path)
            else:
                values = with_leaves(values, path, masked.values, nullable=plan.strategy == "redact")
        return values

    def _row_context(
        self, schema: pa.Schema, columns: list[Values], targets: Mapping[str, FieldPath]
    ) -> list[list[Needle]] | None:
        """Per row, what row context looks for in its free text: its values of the planned PII columns."""
        if not self._free_text or not columns:
            return None
        per_row: list[list[Needle]] = [[] for _ in range(len(columns[0]))]
        made = NeedleCache()  # per batch: memory must not grow with the dataset
        for plan in self.plans:
            if plan.strategy == FREE_TEXT or plan.entity in (None, FREE_TEXT):
                continue
            path = targets[plan.column]
            values = columns[schema.get_field_index(path.column)]
            rows: Iterable[int] = range(len(values))
            if path.is_nested:
                found = leaves(values, path)
                values, rows = found.values, found.rows.to_pylist()
            texts = _text_values(values)
            if texts is None:
                continue
            entity = str(plan.entity)
            for row, text in zip(rows, texts, strict=True):
                if text:
                    per_row[row].extend(made(entity, text))
        return per_row if any(per_row) else None

    def _mask_columns(self, schema: pa.Schema, columns: list[Values]) -> list[Values]:
        _, targets = self._check(schema)
        context = self._row_context(schema, columns, targets)
        masked_columns = []
        for name, values in zip(schema.names, columns, strict=True):
            masked = self._mask_column(name, values, targets, context)
            if masked is not DROP:
                masked_columns.append(masked)
        return masked_columns

    def mask_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with its planned columns masked and dropped columns and fields removed."""
        schema = self.output_schema(batch.schema)
        columns = self._mask_columns(batch.schema, list(batch.columns))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def mask_table(self, table: pa.Table) -> pa.Table:
        """The table masked column by column (each distinct value of a column transformed once)."""
        schema = self.output_schema(table.schema)
        return pa.Table.from_arrays(self._mask_columns(table.schema, list(table.columns)), schema=schema)

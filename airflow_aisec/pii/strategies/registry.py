"""Every masking strategy by name, and ``apply_strategy``, which masks a column with the one a rule names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pyarrow as pa

from airflow_aisec.catalog.models import MASK_STRATEGIES
from airflow_aisec.crypto.keyring import KeyVersion
from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.row_context import RowNeedles
from airflow_aisec.pii.strategies.arrow import non_null
from airflow_aisec.pii.strategies.base import Masked, MaskRule, Strategy, Target, Values
from airflow_aisec.pii.strategies.free_text import FREE_TEXT_MASKING
from airflow_aisec.pii.strategies.generalize import GENERALIZE
from airflow_aisec.pii.strategies.hide import DROP_COLUMN, PARTIAL, REDACT, REPLACE
from airflow_aisec.pii.strategies.keyed import ENCRYPT, PSEUDONYMIZE
from airflow_aisec.pii.types import FREE_TEXT, SpanFinder

_DECLARED = {s.name: s for s in (REDACT, REPLACE, PARTIAL, PSEUDONYMIZE, ENCRYPT, GENERALIZE, DROP_COLUMN)}
# In the catalog's order (its ``mask: strategy`` names), then free text; a name without a strategy fails here.
REGISTRY: Final[Mapping[str, Strategy]] = {
    **{name: _DECLARED[name] for name in MASK_STRATEGIES},
    FREE_TEXT: FREE_TEXT_MASKING,
}
STRATEGIES: Final = tuple(REGISTRY)


def strategy_named(name: str, column: str) -> Strategy:
    """The strategy ``name`` masking ``column``; an unknown name raises ``PIIError`` listing the known."""
    strategy = REGISTRY.get(name)
    if strategy is None:
        raise PIIError(
            f"column {column!r}: unknown masking strategy {name!r} (known: {', '.join(STRATEGIES)})"
        )
    return strategy


def check_options(strategy: str, options: Mapping[str, Any], column: str) -> None:
    """Refuse an unknown strategy, or an option the strategy does not know (a typo would mask nothing)."""
    strategy_named(strategy, column).check(options, column)


def apply_strategy(
    values: Values,
    rule: MaskRule,
    *,
    column: str,
    entity: str | None = None,
    key: KeyVersion | None = None,
    find_spans: SpanFinder | None = None,
    context: RowNeedles | None = None,
) -> Masked:
    """Mask ``values`` of ``column`` with ``rule``; ``key`` serves pseudonymize/encrypt, ``find_spans`` and
    ``context`` (per row, see ``mask_free_text``) free text. ``counts`` is keyed by entity (``PII`` without
    one): the non-null values masked, or for free text the entities replaced."""
    strategy = strategy_named(rule.strategy, column)
    strategy.check(rule.options, column)
    if pa.types.is_null(values.type) and strategy is not DROP_COLUMN:
        # Readers type a column with no value at all as ``null``: nothing to mask, and no type to keep.
        return Masked(values, {})
    target = Target(column, entity, key, find_spans, context)
    try:
        masked = strategy.mask(values, rule.options, target)
    except pa.ArrowNotImplementedError:
        raise PIIError(f"{rule.strategy} cannot mask column {column!r} of type {values.type}") from None
    except pa.ArrowInvalid:  # e.g. an integer bucket overflowing; Arrow's message may quote a value
        raise PIIError(f"{rule.strategy} of column {column!r}: a value is out of range") from None
    if isinstance(masked, Masked):
        return masked
    return Masked(masked, {entity or "PII": non_null(values)})

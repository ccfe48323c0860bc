"""The strategies that hide values: ``redact`` (null), ``replace`` (a constant, by default the entity tag),
``partial`` (all but the last characters masked) and ``drop`` (the column removed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.strategies.arrow import (
    elementwise,
    in_kernel_type,
    is_text,
    kernel_type,
    require_text,
    value_type_of,
)
from airflow_aisec.pii.strategies.base import DROP, Drop, Strategy, Target, Values
from airflow_aisec.pii.strategies.entities import tag


def redact(values: Values) -> Values:
    """Every value → null, of the same type."""
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([pa.nulls(len(c), values.type) for c in values.chunks], type=values.type)
    return pa.nulls(len(values), values.type)


def replace(values: Values, *, value: Any = None, entity: str | None = None, column: str = "") -> Values:
    """Every non-null value → ``value`` (strings default to the entity tag); nulls stay null."""
    value_type = value_type_of(values.type)
    if value is None:
        if not is_text(value_type):
            raise PIIError(
                f"replace needs a string column, or a `value` of the column's type; "
                f"column {column!r} is {values.type}"
            )
        value = tag(entity)
    try:
        constant = pa.array([value]).cast(kernel_type(value_type))[0]
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        raise PIIError(
            f"replace: the `value` set for column {column!r} cannot be converted to {value_type}"
        ) from None

    def constant_where_valid(arr: Values) -> Values:
        return pc.if_else(pc.is_valid(arr), constant, pa.scalar(None, constant.type))

    return elementwise(values, in_kernel_type(constant_where_valid))


def keep_chars(arr: Values, keep: int, mask_char: str, *, at_end: bool) -> Values:
    """Keep ``keep`` characters at one end and mask the others; values not longer than ``keep`` are masked
    entirely. ``arr`` is a string or large string array; lengths are in code points."""
    length = pc.utf8_length(arr)
    reveal = pc.greater(length, keep)
    empty = pa.scalar("", arr.type)
    if keep == 0:
        kept = empty
    else:
        sliced = (
            pc.utf8_slice_codeunits(arr, start=-keep) if at_end else pc.utf8_slice_codeunits(arr, 0, keep)
        )
        kept = pc.if_else(reveal, sliced, empty)
    masked = pc.binary_repeat(
        pa.scalar(mask_char, arr.type), pc.if_else(reveal, pc.subtract(length, keep), length)
    )
    parts = (masked, kept) if at_end else (kept, masked)
    return pc.binary_join_element_wise(*parts, empty)


def count_option(number: object, name: str, strategy: str, column: str) -> int:
    """The option ``name``, a count of characters: refused unless a whole number ≥ 0."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise PIIError(f"{strategy} of column {column!r}: set `{name}` to a whole number ≥ 0")
    return number


def one_char(char: object, strategy: str, column: str) -> str:
    """The ``mask_char`` option: refused unless one character."""
    if not isinstance(char, str) or len(char) != 1:
        raise PIIError(f"{strategy} of column {column!r}: `mask_char` must be one character")
    return char


def _partial(values: Values, options: Mapping[str, Any], target: Target) -> Values:
    require_text(values, "partial", target.column)
    keep = count_option(PARTIAL.option(options, "keep_last"), "keep_last", "partial", target.column)
    char = one_char(PARTIAL.option(options, "mask_char"), "partial", target.column)
    return elementwise(values, in_kernel_type(lambda arr: keep_chars(arr, keep, char, at_end=True)))


def partial(values: Values, *, column: str = "", **options: Any) -> Values:
    """Mask all but the last ``keep_last`` characters (length kept); short values are masked entirely.

    Options as the ``partial`` strategy's: ``keep_last`` and ``mask_char``, defaults in ``PARTIAL``.
    """
    PARTIAL.check(options, column)
    return _partial(values, options, Target(column))


def drop(values: Values) -> Drop:
    """The column is removed from the output."""
    return DROP


def _redact(values: Values, options: Mapping[str, Any], target: Target) -> Values:
    return redact(values)


def _replace(values: Values, options: Mapping[str, Any], target: Target) -> Values:
    value = REPLACE.option(options, "value")
    return replace(values, value=value, entity=target.entity, column=target.column)


def _drop(values: Values, options: Mapping[str, Any], target: Target) -> Drop:
    return DROP


REDACT: Final = Strategy("redact", {}, _redact)
# No default ``value``: a string column gets the entity tag, any other column needs a value of its type.
REPLACE: Final = Strategy("replace", {"value": None}, _replace)
PARTIAL: Final = Strategy("partial", {"keep_last": 4, "mask_char": "*"}, _partial)
DROP_COLUMN: Final = Strategy("drop", {}, _drop)

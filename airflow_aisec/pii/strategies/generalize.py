"""``generalize``: coarser values of the same type (dates and timestamps truncated, numbers bucketed,
strings cut to a prefix)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.strategies.arrow import elementwise, in_kernel_type, is_text, value_type_of
from airflow_aisec.pii.strategies.base import Strategy, Target, Values
from airflow_aisec.pii.strategies.hide import count_option, keep_chars, one_char

_TEMPORAL_UNITS: Final = ("year", "month", "day", "hour")


def _inapplicable(options: Mapping[str, Any], applicable: set[str], column: str, kind: str, fix: str) -> None:
    given = ", ".join(f"`{name}`" for name in sorted(set(options) - applicable))
    if given:
        raise PIIError(
            f"generalize of column {column!r}: option(s) {given} do not apply to a {kind} column; set {fix}"
        )


def _generalize_temporal(values: Values, options: Mapping[str, Any], column: str) -> Values:
    is_timestamp = pa.types.is_timestamp(value_type_of(values.type))
    units = _TEMPORAL_UNITS if is_timestamp else _TEMPORAL_UNITS[:-1]
    fix = f"`to: {'|'.join(units)}`"
    _inapplicable(options, {"to"}, column, "date or timestamp", fix)
    unit = options.get("to")
    if unit not in units:
        raise PIIError(f"generalize of column {column!r} ({value_type_of(values.type)}) needs {fix}")
    return elementwise(values, lambda arr: pc.floor_temporal(arr, unit=unit).cast(arr.type))


def _floor_int(arr: Values, step: Any) -> Values:
    # Arrow's integer division truncates toward zero; step negative remainders down to floor.
    remainder = pc.subtract(arr, pc.multiply(pc.divide(arr, step), step))
    below = pc.if_else(pc.less(remainder, pa.scalar(0, arr.type)), step, pa.scalar(0, arr.type))
    return pc.subtract_checked(pc.subtract(arr, remainder), below)


def _positive(size: object, integer: bool) -> bool:
    if isinstance(size, bool) or not isinstance(size, int | float) or (integer and isinstance(size, float)):
        return False
    return 0 < size < float("inf")


def _generalize_number(values: Values, options: Mapping[str, Any], column: str) -> Values:
    integer = pa.types.is_integer(value_type_of(values.type))
    fix = "`bucket: <size>`" + (" (a whole number)" if integer else "")
    _inapplicable(options, {"bucket"}, column, "number", fix)
    size = options.get("bucket")
    if not _positive(size, integer):
        raise PIIError(f"generalize of column {column!r} ({value_type_of(values.type)}) needs {fix} > 0")
    if integer:
        try:
            step = pa.scalar(size, value_type_of(values.type))
        except (pa.ArrowException, OverflowError):
            raise PIIError(
                f"generalize of column {column!r}: `bucket` is too large for {value_type_of(values.type)}"
            ) from None
        return elementwise(values, lambda arr: _floor_int(arr, step).cast(arr.type))
    return elementwise(values, lambda arr: pc.multiply(pc.floor(pc.divide(arr, size)), size).cast(arr.type))


def _generalize_text(values: Values, options: Mapping[str, Any], column: str) -> Values:
    fix = "`prefix: N` (characters kept)"
    if "to" in options:  # e.g. the DATE_TIME default applied to dates stored as text
        fix += ", as `to` needs a date or timestamp column"
    _inapplicable(options, {"prefix", "mask_char"}, column, "string", fix)
    if "prefix" not in options:
        raise PIIError(f"generalize of string column {column!r} needs {fix}")
    keep = count_option(options["prefix"], "prefix", "generalize", column)
    char = one_char(GENERALIZE.option(options, "mask_char"), "generalize", column)
    return elementwise(values, in_kernel_type(lambda arr: keep_chars(arr, keep, char, at_end=False)))


def generalize(values: Values, *, column: str = "", **options: Any) -> Values:
    """Coarsen values, keeping the type: ``to`` for dates/timestamps, ``bucket`` for numbers, ``prefix``
    for strings (see the ``strategies`` package docstring)."""
    value_type = value_type_of(values.type)
    if pa.types.is_date(value_type) or pa.types.is_timestamp(value_type):
        return _generalize_temporal(values, options, column)
    if pa.types.is_integer(value_type) or pa.types.is_floating(value_type):
        return _generalize_number(values, options, column)
    if is_text(value_type):
        return _generalize_text(values, options, column)
    raise PIIError(
        f"generalize supports date, timestamp, integer, float and string columns; "
        f"column {column!r} is {values.type}"
    )


def _generalize(values: Values, options: Mapping[str, Any], target: Target) -> Values:
    return generalize(values, column=target.column, **options)


# No default for ``to``, ``bucket`` or ``prefix``: which one applies depends on the column's type.
GENERALIZE: Final = Strategy(
    "generalize", {"to": None, "bucket": None, "prefix": None, "mask_char": "*"}, _generalize
)

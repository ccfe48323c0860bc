"""Retention dates: every value a retention column may hold, as an aware UTC instant.

Timestamps (zoned, or naive taken as UTC), dates (midnight UTC) and ISO-8601 text are understood; anything
else is no date, and a row without a usable date is never treated as old.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

INSTANT = pa.timestamp("us", tz="UTC")
"""The Arrow type retention compares: microseconds, UTC."""
# Text is tried as zoned and naive instants, at micro- then nanosecond precision, before parsing one by one.
_TEXT_TARGETS = (INSTANT, pa.timestamp("us"), pa.timestamp("ns", tz="UTC"), pa.timestamp("ns"))
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def instant(value: object) -> dt.datetime | None:
    """A statistics value as an aware UTC instant (a date is its midnight, UTC), or None."""
    if isinstance(value, dt.datetime):  # includes pandas.Timestamp (nanosecond columns)
        return as_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC)
    return None


def to_instants(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Retention values as ``timestamp[us, UTC]``; null where a value is missing or not a date.

    Timestamps (zoned, or naive taken as UTC), dates (midnight UTC) and ISO-8601 text are understood.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            values = values.cast(pa.timestamp(kind.unit, tz="UTC"))
        return values.cast(INSTANT, safe=False)
    if pa.types.is_date(kind):
        return values.cast(INSTANT)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_text(values)
    return pa.nulls(len(values), INSTANT)  # numbers and the like are no dates: every row counts as bad


def _parse_text(values: pa.Array) -> pa.Array:
    for target in _TEXT_TARGETS:
        try:
            parsed = values.cast(target)
        except _CAST_ERRORS:
            continue
        if parsed.type.tz is None:
            parsed = parsed.cast(pa.timestamp(parsed.type.unit, tz="UTC"))
        return parsed.cast(INSTANT, safe=False)
    # Mixed or unusual forms: one by one, so a single bad value makes only its own row bad.
    return pa.array([_parse_one(v) for v in values.to_pylist()], type=INSTANT)


def _parse_one(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        return None

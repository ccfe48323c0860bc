"""``free_text``: every entity found in a text replaced in place by its tag, the rest of the text kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa

from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii import row_context
from airflow_aisec.pii.row_context import RowNeedles
from airflow_aisec.pii.strategies.arrow import Distinct, kernel_type, require_text
from airflow_aisec.pii.strategies.base import Masked, Strategy, Target, Values
from airflow_aisec.pii.strategies.entities import tag
from airflow_aisec.pii.types import FREE_TEXT, Span, SpanFinder


def _merge_spans(spans: Sequence[Span], length: int, column: str) -> list[Span]:
    """Spans in text order, overlapping ones merged into one tagged with the highest-scoring entity."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end, -s.score)):
        if not 0 <= span.start <= span.end <= length:
            raise PIIError(
                f"free_text of column {column!r}: the span finder returned a span outside the text"
            )
        if span.start == span.end:
            continue
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            winner = span if span.score > last.score else last
            merged[-1] = Span(winner.entity, last.start, max(last.end, span.end), max(last.score, span.score))
        else:
            merged.append(span)
    return merged


def _replace_spans(text: str, spans: Sequence[Span], column: str) -> tuple[str, Counter[str]]:
    parts: list[str] = []
    found: Counter[str] = Counter()
    position = 0
    for span in _merge_spans(spans, len(text), column):
        parts += (text[position : span.start], tag(span.entity))
        found[span.entity] += 1
        position = span.end
    parts.append(text[position:])
    return "".join(parts), found


def mask_free_text(
    values: Values,
    find_spans: SpanFinder,
    *,
    column: str = "",
    entities: Sequence[str] | None = None,
    context: RowNeedles | None = None,
) -> Masked:
    """Replace every entity found in each text by its tag, keeping the rest of the text.

    The finder is called once, with every distinct non-empty text of ``values``. ``context`` (one entry per
    row, see ``row_context``) adds, in each row, the spans where the row's own PII values occur. ``counts``
    holds, per entity type, how many entities were replaced over all rows.
    """
    require_text(values, FREE_TEXT, column)
    if entities is not None and (isinstance(entities, str) or not all(isinstance(e, str) for e in entities)):
        raise PIIError(f"{FREE_TEXT} of column {column!r}: `entities` must be a list of entity types")
    wanted = None if entities is None else set(entities)
    distinct = Distinct(values)
    texts: list[str | None] = distinct.dictionary.to_pylist()
    todo = [i for i, text in enumerate(texts) if text]
    found_spans = find_spans([texts[i] or "" for i in todo]) if todo else []
    if len(found_spans) != len(todo):
        raise PIIError(
            f"{FREE_TEXT} of column {column!r}: the span finder did not return one result per text"
        )
    kept: list[list[Span]] = [[] for _ in texts]
    for i, spans in zip(todo, found_spans, strict=True):
        kept[i] = [s for s in spans if wanted is None or s.entity in wanted]
    masked: list[str | None] = list(texts)
    per_text: list[Counter[str]] = [Counter() for _ in texts]
    for i in todo:
        if kept[i]:
            masked[i], per_text[i] = _replace_spans(texts[i] or "", kept[i], column)
    if context is not None and any(context):
        return _with_row_context(distinct, texts, kept, masked, per_text, context, wanted, column)
    names = sorted({entity for found in per_text for entity in found})
    counts = {e: distinct.total(pa.array([c[e] for c in per_text], pa.int64())) for e in names}
    new_values = distinct.rebuild(pa.array(masked, kernel_type(distinct.value_type)))
    return Masked(new_values, {e: n for e, n in counts.items() if n})


def _with_row_context(
    distinct: Distinct,
    texts: list[str | None],
    kept: list[list[Span]],
    masked: list[str | None],
    per_text: list[Counter[str]],
    context: RowNeedles,
    wanted: set[str] | None,
    column: str,
) -> Masked:
    """The masked column when rows add spans of their own: a row whose text holds one of its values gets a
    text of its own; every other row shares the masked text of its distinct value."""
    rows = distinct.row_indices()
    if len(context) != len(rows):
        raise PIIError(f"{FREE_TEXT} of column {column!r}: row context does not match the rows")
    extra: list[str | None] = []
    forms: dict[int, row_context.Forms] = {}  # a text repeated over rows is folded once
    for row, wanted_here in enumerate(context):
        index = int(rows[row])
        text = texts[index] if wanted_here and index >= 0 else None
        if not text:
            continue
        if index not in forms:
            forms[index] = row_context.Forms(text)
        found_here = row_context.find(forms[index], wanted_here)
        spans = [s for s in found_here if wanted is None or s.entity in wanted]
        if spans:
            new_text, found = _replace_spans(text, kept[index] + spans, column)
            rows[row] = len(texts) + len(extra)
            extra.append(new_text)
            per_text.append(found)
    names = sorted({entity for found in per_text for entity in found})
    present = rows[rows >= 0]
    counts = {e: int(np.array([c[e] for c in per_text], np.int64)[present].sum()) for e in names}
    new_values = distinct.rebuild_rows(pa.array(masked + extra, kernel_type(distinct.value_type)), rows)
    return Masked(new_values, {e: n for e, n in counts.items() if n})


def _free_text(values: Values, options: Mapping[str, Any], target: Target) -> Masked:
    if target.find_spans is None:
        raise PIIError(f"column {target.column!r} is free text: masking it needs a span finder")
    entities = FREE_TEXT_MASKING.option(options, "entities")
    return mask_free_text(
        values, target.find_spans, column=target.column, entities=entities, context=target.context
    )


# Not a catalog ``mask`` strategy: the one of ``pii: free_text`` columns.
FREE_TEXT_MASKING: Final = Strategy(FREE_TEXT, {"entities": None}, _free_text)

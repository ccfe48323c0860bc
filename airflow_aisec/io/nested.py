"""Paths to fields inside struct and list columns, and vectorised access to the values they hold.

A path names a leaf inside a top-level column: ``payload.ip`` is field ``ip`` of struct column ``payload``,
``items[].email`` field ``email`` of each struct of list column ``items``, ``tags[]`` each element of a list,
and the steps nest to any depth (``order.lines[].contact.phone``). A path is a column name followed by
steps; each step is ``.<field>`` (into a struct) or ``[]`` (into each element of a list). A plain column
name is a path without steps.

``leaves`` gathers every value a path reaches in a column as one flat Arrow array, with the row each value
comes from; ``with_leaves`` puts new values back, keeping the column's type, its nulls and its list
offsets (a null struct or list stays null, an empty list stays empty); ``without_field`` removes the last
field of a path from its struct. All of it works on Arrow buffers (``flatten``, offsets, compute kernels),
never with a Python loop per row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.exceptions import FieldPathError

# An Arrow column: ``pa.Array`` or ``pa.ChunkedArray`` (pyarrow has no type stubs, so this is ``Any``).
Values = Any

LIST: Final = "[]"  # the step into each element of a list

_NAME = r"[^.\[\]\s][^.\[\]]*"
_SEGMENT = re.compile(rf"({_NAME})((?:\[\])*)")


@dataclass(frozen=True)
class FieldPath:
    """A parsed path: the top-level ``column``, then ``steps`` (a field name, or ``LIST``)."""

    column: str
    steps: tuple[str, ...] = ()

    @property
    def is_nested(self) -> bool:
        """Whether the path reaches inside its column (a plain column name is not nested)."""
        return bool(self.steps)

    def __str__(self) -> str:
        text = self.column
        for step in self.steps:
            text += step if step == LIST else f".{step}"
        return text


def looks_nested(text: str) -> bool:
    """Whether ``text`` is written as a path into a column (holds ``.`` or ``[]``) rather than a name."""
    return "." in text or LIST in text


def top_column(name: str) -> str:
    """The top-level column a column name or path names (``payload`` for ``payload.ip``); a name that does
    not parse as a path is taken as a column name."""
    if not looks_nested(name):
        return name
    try:
        return parse_path(name).column
    except FieldPathError:
        return name


def parse_path(text: str) -> FieldPath:
    """Parse ``column(.field|[])*``; raises ``FieldPathError`` naming the path and what is wrong with it."""
    if not isinstance(text, str) or not text.strip():
        raise FieldPathError(f"invalid field path {text!r}: it is empty")
    names: list[str] = []
    steps: list[str] = []
    for position, segment in enumerate(text.split(".")):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise FieldPathError(_syntax_error(text, segment, position))
        names.append(match[1])
        if position:
            steps.append(match[1])
        steps.extend([LIST] * (len(match[2]) // 2))
    return FieldPath(names[0], tuple(steps))


def _syntax_error(text: str, segment: str, position: int) -> str:
    where = "the column name" if position == 0 else f"part {position + 1}"
    if not segment:
        why = f"{where} is empty (two dots in a row, or a dot at an end)"
    elif segment.startswith("["):
        why = f"{where} starts with '[' ('[]' follows a name: items[].email)"
    elif "[" in segment or "]" in segment:
        why = f"{where} has brackets other than '[]' after its name (only '[]' is allowed: tags[])"
    else:
        why = f"{where} starts with a space"
    return f"invalid field path {text!r}: {why}"


def _as_path(path: str | FieldPath) -> FieldPath:
    return path if isinstance(path, FieldPath) else parse_path(path)


def _is_list(t: Any) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def _step_type(t: Any, step: str, done: FieldPath) -> Any:
    """The type one step below ``t``; ``done`` is the path up to ``t``, for the message."""
    if step == LIST:
        if _is_list(t):
            return t.value_type
        raise FieldPathError(f"{done} is {_kind(t)}, not a list: '[]' cannot follow it")
    if pa.types.is_struct(t):
        index = t.get_field_index(step)
        if index >= 0:
            return t.field(index).type
        names = ", ".join(t.field(i).name for i in range(t.num_fields)) or "none"
        raise FieldPathError(f"{done} has no field {step}; fields: {names}")
    if _is_list(t):
        raise FieldPathError(f"{done} is a list: write {done}[].{step} to reach a field of its elements")
    raise FieldPathError(f"{done} is {_kind(t)}, not a struct: it has no field {step}")


def _kind(t: Any) -> str:
    if pa.types.is_fixed_size_list(t) or pa.types.is_map(t) or pa.types.is_list_view(t):
        return f"{t} (not supported in paths; only struct and list are)"
    return str(t)


def resolve(schema: pa.Schema, path: str | FieldPath) -> pa.DataType:
    """The type of the leaf ``path`` reaches in ``schema``.

    Raises ``FieldPathError`` with the reason it does not exist ("payload has no field ip; fields: ...").
    """
    parsed = _as_path(path)
    if parsed.column not in schema.names:
        names = ", ".join(schema.names) or "none"
        raise FieldPathError(f"no column {parsed.column}; columns: {names}")
    t = schema.field(parsed.column).type
    done = FieldPath(parsed.column)
    for step in parsed.steps:
        t = _step_type(t, step, done)
        done = FieldPath(done.column, (*done.steps, step))
    return t


# -- reading and rebuilding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaves:
    """The values a path reaches in a column, flattened: ``values[i]`` comes from row ``rows[i]``;
    ``present[i]`` is false when a struct holding it is null (the value is then null, and stays so)."""

    values: Values
    rows: Values  # int64, one per value
    present: Values  # bool, one per value


def _chunks(values: Values) -> list[Values]:
    return list(values.chunks) if isinstance(values, pa.ChunkedArray) else [values]


def _step_down(arr: Values, step: str) -> Values:
    """The child values one step below ``arr``: a struct's field with the struct's nulls, a list's
    elements without those of null lists."""
    if step == LIST:
        return arr.flatten()
    return pc.struct_field(arr, [arr.type.get_field_index(step)])


def _list_lengths(arr: Values) -> Any:
    lengths = pc.fill_null(pc.list_value_length(arr), 0)
    return lengths.to_numpy(zero_copy_only=False).astype(np.int64)


def _leaves_of(arr: Values, steps: Sequence[str]) -> tuple[Values, Any, Any]:
    rows = np.arange(len(arr), dtype=np.int64)
    present = np.ones(len(arr), dtype=bool)
    for step in steps:
        if step == LIST:
            lengths = _list_lengths(arr)
            rows, present = np.repeat(rows, lengths), np.repeat(present, lengths)
        else:
            present &= arr.is_valid().to_numpy(zero_copy_only=False)
        arr = _step_down(arr, step)
    return arr, rows, present


def _check(values: Values, path: FieldPath) -> pa.DataType:
    return resolve(pa.schema([pa.field(path.column, values.type)]), path)


def leaves(values: Values, path: str | FieldPath) -> Leaves:
    """Every value ``path`` reaches in ``values`` (the column ``path.column``), as one flat array."""
    parsed = _as_path(path)
    leaf_type = _check(values, parsed)
    parts, rows, present, offset = [], [], [], 0
    for chunk in _chunks(values):
        leaf, chunk_rows, chunk_present = _leaves_of(chunk, parsed.steps)
        parts.append(leaf)
        rows.append(chunk_rows + offset)
        present.append(chunk_present)
        offset += len(chunk)
    flat = pa.concat_arrays(parts) if parts else pa.array([], leaf_type)
    all_rows = np.concatenate(rows) if rows else np.array([], np.int64)
    all_present = np.concatenate(present) if present else np.array([], bool)
    return Leaves(flat, pa.array(all_rows, pa.int64()), pa.array(all_present, pa.bool_()))


def _struct(arr: Values, fields: list[pa.Field], children: list[Values]) -> Values:
    mask = arr.is_null() if arr.null_count else None
    return pa.StructArray.from_arrays(children, fields=fields, mask=mask)


def _list(arr: Values, child_field: pa.Field, values: Values) -> Values:
    large = pa.types.is_large_list(arr.type)
    lengths = _list_lengths(arr)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    offsets_array = pa.array(offsets, pa.int64() if large else pa.int32())
    mask = arr.is_null() if arr.null_count else None
    list_type = pa.large_list(child_field) if large else pa.list_(child_field)
    cls = pa.LargeListArray if large else pa.ListArray
    return cls.from_arrays(offsets_array, values, type=list_type, mask=mask)


def _with_child(arr: Values, step: str, child: Values, nullable: bool) -> Values:
    """``arr`` with the child one ``step`` below it (as ``_step_down`` gives it) replaced by ``child``."""
    if step == LIST:
        value_field = arr.type.value_field.with_type(child.type)
        return _list(arr, value_field.with_nullable(True) if nullable else value_field, child)
    index = arr.type.get_field_index(step)
    fields = [arr.type.field(i) for i in range(arr.type.num_fields)]
    children = [arr.field(i) for i in range(arr.type.num_fields)]
    fields[index] = fields[index].with_type(child.type)
    if nullable:
        fields[index] = fields[index].with_nullable(True)
    if not fields[index].nullable and arr.null_count:
        # The child came down with the struct's nulls; a field that may not be null keeps its own
        # (unseen) values under a null struct, as writers refuse a null there.
        child = pc.if_else(arr.is_valid(), child, children[index])
    children[index] = child
    return _struct(arr, fields, children)


def _rebuild(arr: Values, steps: Sequence[str], leaf: Values, nullable: bool) -> Values:
    """``arr`` with the values ``steps`` reach replaced by ``leaf`` (as flat as ``leaves`` gives them)."""
    if not steps:
        return leaf
    new_child = _rebuild(_step_down(arr, steps[0]), steps[1:], leaf, nullable)
    return _with_child(arr, steps[0], new_child, nullable)


def with_leaves(
    values: Values, path: str | FieldPath, new_leaves: Values, *, nullable: bool = False
) -> Values:
    """``values`` with the leaves of ``path`` replaced by ``new_leaves`` (in the order ``leaves`` gives).

    The column keeps its type (bar the leaf type, if ``new_leaves`` has another), its nulls and its list
    offsets. ``nullable`` marks every field along the path nullable (for leaves that became null).
    """
    parsed = _as_path(path)
    _check(values, parsed)
    if not parsed.is_nested:
        return new_leaves
    if isinstance(new_leaves, pa.ChunkedArray):
        new_leaves = new_leaves.combine_chunks()
    out, start = [], 0
    for chunk in _chunks(values):
        count = len(_leaves_of(chunk, parsed.steps)[0])
        out.append(_rebuild(chunk, parsed.steps, new_leaves.slice(start, count), nullable))
        start += count
    if start != len(new_leaves):
        raise FieldPathError(f"{parsed}: {len(new_leaves)} new values given for {start} leaves")
    if isinstance(values, pa.ChunkedArray):
        out_type = out[0].type if out else _empty_rebuilt_type(values.type, parsed, new_leaves, nullable)
        return pa.chunked_array(out, type=out_type)
    return out[0]


def _empty_rebuilt_type(t: Any, path: FieldPath, new_leaves: Values, nullable: bool) -> Any:
    return _rebuild(pa.array([], t), path.steps, new_leaves.slice(0, 0), nullable).type


def _drop_last(arr: Values, steps: Sequence[str]) -> Values:
    if len(steps) == 1:
        drop = arr.type.get_field_index(steps[0])
        kept = [i for i in range(arr.type.num_fields) if i != drop]
        return _struct(arr, [arr.type.field(i) for i in kept], [arr.field(i) for i in kept])
    new_child = _drop_last(_step_down(arr, steps[0]), steps[1:])
    return _with_child(arr, steps[0], new_child, nullable=False)


def without_field(values: Values, path: str | FieldPath) -> Values:
    """``values`` with the field ``path`` ends on removed from its struct (``payload.ip`` → ``payload``
    without ``ip``). A path ending in ``[]`` names list elements, not a field, and is refused."""
    parsed = _as_path(path)
    _check(values, parsed)
    if not parsed.is_nested or parsed.steps[-1] == LIST:
        raise FieldPathError(
            f"{parsed} is not a field of a struct: only a struct field can be dropped "
            f"(drop the column {parsed.column}, or redact the elements)"
        )
    out = [_drop_last(chunk, parsed.steps) for chunk in _chunks(values)]
    if isinstance(values, pa.ChunkedArray):
        out_type = out[0].type if out else _drop_last(pa.array([], values.type), parsed.steps).type
        return pa.chunked_array(out, type=out_type)
    return out[0]


def _holds_null_list(t: Any) -> bool:
    if _is_list(t):
        return bool(pa.types.is_null(t.value_type) or _holds_null_list(t.value_type))
    if pa.types.is_struct(t):
        return any(_holds_null_list(f.type) for f in t)
    return False


def _repaired(arr: Any) -> Any:
    t = arr.type
    if not _holds_null_list(t):
        return arr
    mask = arr.is_null() if arr.null_count else None
    if pa.types.is_struct(t):
        children = [_repaired(arr.field(i)) for i in range(t.num_fields)]
        return pa.StructArray.from_arrays(children, fields=list(t), mask=mask)
    offsets = arr.offsets
    # The child of a list of nulls is rebuilt with exactly as many nulls as the offsets reach.
    if pa.types.is_null(t.value_type):
        values = pa.nulls(int(offsets[-1].as_py() or 0))
    else:
        values = _repaired(arr.values)
    return type(arr).from_arrays(offsets, values, type=t, mask=mask)


def repair_null_lists(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with every list of nulls (JSON ``[null, null]``) rebuilt as a valid Arrow array.

    Arrow's JSON reader gives a list column whose elements are all null a child array shorter than its
    offsets say, which fails validation and breaks whatever reads it. Other columns are untouched; a batch
    without such a list is returned as is.
    """
    if not _holds_null_list(pa.struct(list(batch.schema))) or batch.num_rows == 0:
        return batch
    columns = [_repaired(column) for column in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)

"""Sampling a dataset's columns: a uniform reservoir of values per column (nested fields by path), so a scan
sees every file and batch while its memory stays bounded."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

Kind = Literal["text", "number", "date", "other"]


class Reservoir:
    """A uniform random sample of at most ``size`` values of a stream fed in arrays (Li's Algorithm L).

    Random numbers are drawn per *taken* value, not per value seen, so large batches cost little.
    """

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size = size
        self.rng = rng
        self.values: list[Any] = []
        self.seen = 0
        self._weight = self._factor()
        self._next = size + self._skip()  # stream position of the next value to take

    def _uniform(self) -> float:
        value = self.rng.random()
        while value == 0.0:  # log(0) is undefined; random() may return exactly 0
            value = self.rng.random()
        return value

    def _factor(self) -> float:
        return math.exp(math.log(self._uniform()) / self.size)

    def _skip(self) -> int:
        return math.floor(math.log(self._uniform()) / math.log(max(1.0 - self._weight, 1e-300)))

    def offer(self, array: pa.Array) -> None:
        """Feed the non-null values of ``array``, in stream order."""
        start, count = self.seen, len(array)
        self.seen += count
        fill = min(self.size - len(self.values), count)
        if fill > 0:
            self.values.extend(array.slice(0, fill).to_pylist())
        picks: list[tuple[int, int]] = []  # (slot, position in array)
        while self._next < self.seen:
            picks.append((self.rng.randrange(self.size), self._next - start))
            self._weight *= self._factor()
            self._next += self._skip() + 1
        if picks:
            taken = array.take(pa.array([index for _, index in picks], type=pa.int64())).to_pylist()
            for (slot, _), value in zip(picks, taken, strict=True):
                self.values[slot] = value


@dataclass
class SampledColumn:
    """What a scan keeps of one column: its kinds, non-null count and value sample."""

    path: str
    reservoir: Reservoir
    kinds: set[Kind] = field(default_factory=set)
    non_null: int = 0


def value_kind(data_type: pa.DataType) -> Kind:
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or _is_string_view(data_type):
        return "text"
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "number"
    if pa.types.is_date(data_type) or pa.types.is_timestamp(data_type):
        return "date"
    return "other"


def _is_string_view(data_type: pa.DataType) -> bool:
    check = getattr(pa.types, "is_string_view", None)
    return bool(check and check(data_type))


_LIST_ARRAYS = (
    pa.ListArray,
    pa.LargeListArray,
    pa.FixedSizeListArray,
    pa.ListViewArray,
    pa.LargeListViewArray,
)


def _leaves(path: str, array: pa.Array) -> Iterator[tuple[str, pa.Array]]:
    """``(path, values)`` of each scalar field below ``array``: struct fields by dot, list items by ``[]``."""
    data_type = array.type
    if pa.types.is_dictionary(data_type):
        yield from _leaves(path, array.dictionary_decode())
    elif isinstance(array, pa.ExtensionArray):
        yield from _leaves(path, array.storage)
    elif pa.types.is_struct(data_type):
        # flatten() applies the struct's own nulls to its children.
        for index, child in enumerate(array.flatten()):
            yield from _leaves(f"{path}.{data_type.field(index).name}", child)
    elif pa.types.is_map(data_type):
        yield from _leaves(f"{path}[].key", array.keys)
        yield from _leaves(f"{path}[].value", array.items)
    elif isinstance(array, _LIST_ARRAYS):
        yield from _leaves(f"{path}[]", array.flatten())
    else:
        yield path, array


def _sampleable(array: pa.Array, kind: Kind) -> pa.Array:
    """The values worth sampling: non-null, and for text not blank (a blank string holds no PII)."""
    values = array.drop_null()
    if kind == "text" and len(values):
        if _is_string_view(values.type):
            values = values.cast(pa.string())
        values = values.filter(pc.not_equal(pc.utf8_trim_whitespace(values), ""))
    return values


class Sampler:
    """Per-column reservoirs over a stream of record batches."""

    def __init__(self, sample: int, seed: int) -> None:
        self.sample = sample
        self.seed = seed
        self.columns: dict[str, SampledColumn] = {}
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            for path, values in _leaves(name, array):
                self._add_leaf(path, values)

    def _add_leaf(self, path: str, array: pa.Array) -> None:
        column = self.columns.get(path)
        if column is None:
            # One random stream per column: adding a column never changes another column's sample.
            rng = random.Random(f"{self.seed}:{path}")  # nosec B311 # a reproducible sample of values, not a secret
            column = self.columns[path] = SampledColumn(path, Reservoir(self.sample, rng))
        kind = value_kind(array.type)
        if pa.types.is_null(array.type):
            return
        column.kinds.add(kind)
        values = _sampleable(array, kind)
        column.non_null += len(values)
        if kind in ("text", "number") and len(values):
            column.reservoir.offer(values)

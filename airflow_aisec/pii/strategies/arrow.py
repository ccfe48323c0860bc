"""Arrow plumbing shared by the strategies: types, kernels, and the distinct values of a column.

Where per-value Python is unavoidable (HMAC, AES-SIV, free text) a column is dictionary-encoded, each
DISTINCT value is transformed once and the result is taken back by index (``Distinct``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.strategies.base import Values


def value_type_of(t: Any) -> Any:
    """The type of the values: a dictionary column's value type, else ``t``."""
    return t.value_type if pa.types.is_dictionary(t) else t


def is_text(t: Any) -> bool:
    """Whether ``t`` is a string type (plain, large or view)."""
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def is_bytes(t: Any) -> bool:
    """Whether ``t`` is a binary type (plain, large or view)."""
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t))


def kernel_type(t: Any) -> Any:
    """The type Arrow's kernels work on for ``t``."""
    # Most string kernels (and take) lack view-type kernels: work on the large layout, cast back after.
    if pa.types.is_string_view(t):
        return pa.large_string()
    if pa.types.is_binary_view(t):
        return pa.large_binary()
    return t


def non_null(values: Values) -> int:
    """How many values are not null."""
    return int(len(values) - values.null_count)


def require_text(values: Values, strategy: str, column: str) -> None:
    """Refuse a column that does not hold strings."""
    if not is_text(value_type_of(values.type)):
        raise PIIError(f"{strategy} needs a string column; column {column!r} is {values.type}")


class Distinct:
    """A column as its distinct values plus indices, to transform each distinct value only once."""

    def __init__(self, values: Values) -> None:
        self.type = values.type
        self.chunked = isinstance(values, pa.ChunkedArray)
        self.value_type = value_type_of(values.type)
        encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
        if self.chunked:
            # Chunks may carry different dictionaries; one shared dictionary is transformed once.
            encoded = encoded.unify_dictionaries()
            self._chunks = list(encoded.chunks)
        else:
            self._chunks = [encoded]
        self.dictionary = self._chunks[0].dictionary if self._chunks else pa.array([], self.value_type)

    def rebuild(self, new_dictionary: Values) -> Values:
        """The column with each value replaced by the entry of ``new_dictionary`` at its index."""
        if pa.types.is_dictionary(self.type):
            new_dictionary = new_dictionary.cast(self.value_type)
            parts = [
                pa.DictionaryArray.from_arrays(c.indices, new_dictionary, ordered=self.type.ordered)
                for c in self._chunks
            ]
        else:
            parts = [pc.take(new_dictionary, c.indices).cast(self.type) for c in self._chunks]
        return pa.chunked_array(parts, type=self.type) if self.chunked else parts[0]

    def row_indices(self) -> Any:
        """The index into the distinct values of each row (all chunks, in order), -1 for a null."""
        parts = [pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False) for c in self._chunks]
        return np.concatenate(parts).astype(np.int64) if parts else np.array([], np.int64)

    def rebuild_rows(self, new_values: Values, rows: Any) -> Values:
        """The column with row ``i`` set to ``new_values[rows[i]]`` (null where ``rows[i]`` is -1)."""
        parts, start = [], 0
        for c in self._chunks:
            chunk = rows[start : start + len(c)]
            start += len(c)
            indices = pa.array(chunk, pa.int64(), mask=chunk < 0)
            parts.append(pc.take(new_values, indices).cast(self.type))
        return pa.chunked_array(parts, type=self.type) if self.chunked else parts[0]

    def map(self, fn: Callable[[Values], Values]) -> Values:
        """Apply ``fn`` to the distinct values (an Array in, an Array of the same length out)."""
        return self.rebuild(fn(self.dictionary))

    def total(self, per_value: Values) -> int:
        """The sum over all rows of ``per_value`` (one number per distinct value)."""
        return sum(int(pc.sum(pc.take(per_value, c.indices)).as_py() or 0) for c in self._chunks)


def elementwise(values: Values, fn: Callable[[Values], Values]) -> Values:
    """Apply a vectorized ``fn``; on a dictionary column only the dictionary is transformed."""
    if pa.types.is_dictionary(values.type):
        return Distinct(values).map(fn)
    return fn(values)


def in_kernel_type(fn: Callable[[Values], Values]) -> Callable[[Values], Values]:
    """Wrap ``fn`` to run on a type Arrow kernels support and cast the result back to the input type."""

    def wrapped(values: Values) -> Values:
        kernel = kernel_type(values.type)
        return fn(values.cast(kernel) if kernel != values.type else values).cast(values.type)

    return wrapped

"""Column profiles built from streamed Arrow batches: mergeable, serializable summaries of a dataset.

A numeric column keeps a KLL quantile sketch (Apache DataSketches) with its count, nulls, min, max, mean and
sum of squared deviations, and its exact value counts while it has at most ``SMALL_DISTINCT`` values. A
categorical column keeps exact counts of its values up to ``MAX_CATEGORIES`` distinct ones, then a
frequent-items sketch. Two profiles of the same column merge into the profile of both inputs (per-file
partial results combine), so a reference of any size is profiled once and saved.

A column the catalog declares as PII keeps keyed digests (BLAKE2b under the profile's ``salt``) instead of its
category values, and no min/max: a saved profile or a report never holds one of its values.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.exceptions import DriftError

KLL_K = 2000  # normalized rank error ~0.14%; a column of up to 2,000 values is kept exactly
SMALL_DISTINCT = 32
MAX_CATEGORIES = 10_000
FREQUENT_LG_MAX = 12  # 4,096 tracked items once a column has more than MAX_CATEGORIES values

Kind = Literal["numeric", "categorical"]


def _sketches() -> Any:
    try:
        import datasketches
    except ImportError as e:  # pragma: no cover - the extra is installed wherever drift runs
        raise DriftError("drift checks need Apache DataSketches: pip install 'airflow-aisec[drift]'") from e
    return datasketches


def column_kind(dtype: pa.DataType) -> Kind | None:
    """How a column of ``dtype`` is profiled; None for types drift does not check (lists, structs, bytes)."""
    if pa.types.is_dictionary(dtype):
        return column_kind(dtype.value_type)
    if pa.types.is_boolean(dtype) or pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_temporal(dtype) and not pa.types.is_interval(dtype):
        return "numeric"
    return None


def _as_float(array: pa.Array) -> pa.Array:
    """Numeric values as float64 (temporal ones as their integer count since the epoch), NaN as null."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_temporal(array.type):
        array = array.view(pa.int32() if array.type.bit_width == 32 else pa.int64())
    values = array.cast(pa.float64(), safe=False)
    return pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values)


@dataclass
class NumericProfile:
    """A numeric column: KLL sketch, count (non-null), nulls, min, max, mean, M2, small value counts."""

    sketch: Any
    count: int = 0
    nulls: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    small: dict[float, int] | None = field(default_factory=dict)
    kind: Kind = "numeric"

    @classmethod
    def empty(cls) -> NumericProfile:
        return cls(sketch=_sketches().kll_doubles_sketch(KLL_K))

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    def update(self, array: pa.Array) -> None:
        values = _as_float(array)
        self.nulls += values.null_count
        present = values.drop_null()
        if not len(present):
            return
        data = np.array(present.to_numpy(zero_copy_only=False), dtype=np.float64)
        self.sketch.update(data)
        self._combine(len(data), float(data.min()), float(data.max()), float(data.mean()), data)
        if self.small is not None:
            counts = pc.value_counts(present)
            for item in counts.to_pylist():
                self.small[item["values"]] = self.small.get(item["values"], 0) + item["counts"]
            if len(self.small) > SMALL_DISTINCT:
                self.small = None

    def _combine(self, n: int, lo: float, hi: float, mean: float, data: Any) -> None:
        m2 = float(((data - mean) ** 2).sum())
        self._merge_moments(n, lo, hi, mean, m2)

    def _merge_moments(self, n: int, lo: float, hi: float, mean: float, m2: float) -> None:
        # Chan et al.'s pairwise update: exact merging of means and squared deviations.
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.minimum, self.maximum = min(self.minimum, lo), max(self.maximum, hi)

    def merge(self, other: NumericProfile) -> None:
        self.nulls += other.nulls
        if other.count:
            self.sketch.merge(other.sketch)
            self._merge_moments(other.count, other.minimum, other.maximum, other.mean, other.m2)
        if self.small is None or other.small is None:
            self.small = None
        else:
            for value, n in other.small.items():
                self.small[value] = self.small.get(value, 0) + n
            if len(self.small) > SMALL_DISTINCT:
                self.small = None

    def to_dict(self, pii: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "numeric", "count": self.count, "nulls": self.nulls}
        doc.update(mean=self.mean, m2=self.m2, sketch=base64.b64encode(self.sketch.serialize()).decode())
        if not pii:
            doc.update(min=self.minimum if self.count else None, max=self.maximum if self.count else None)
            doc["small"] = None if self.small is None else [[v, n] for v, n in sorted(self.small.items())]
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> NumericProfile:
        sketch = _sketches().kll_doubles_sketch.deserialize(base64.b64decode(doc["sketch"]))
        count = int(doc["count"])
        lo = doc.get("min")
        hi = doc.get("max")
        small = doc.get("small")
        return cls(
            sketch=sketch,
            count=count,
            nulls=int(doc["nulls"]),
            minimum=float(lo) if lo is not None else (sketch.get_min_value() if count else math.inf),
            maximum=float(hi) if hi is not None else (sketch.get_max_value() if count else -math.inf),
            mean=float(doc["mean"]),
            m2=float(doc["m2"]),
            small=None if small is None else {float(v): int(n) for v, n in small},
        )


@dataclass
class CategoricalProfile:
    """A categorical column: exact counts up to ``MAX_CATEGORIES`` values, then a frequent-items sketch."""

    counts: dict[str, int] | None = field(default_factory=dict)
    frequent: Any = None
    count: int = 0
    nulls: int = 0
    salt: bytes | None = None  # set for PII columns: keys are keyed digests, never values
    kind: Kind = "categorical"

    def key(self, value: object) -> str:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if self.salt is None:
            return text
        return hashlib.blake2b(text.encode(), key=self.salt, digest_size=12).hexdigest()

    def update(self, array: pa.Array) -> None:
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        self.nulls += array.null_count
        self.count += len(array) - array.null_count
        for item in pc.value_counts(array.drop_null()).to_pylist():
            self._add(self.key(item["values"]), int(item["counts"]))

    def _add(self, key: str, n: int) -> None:
        if self.counts is not None:
            self.counts[key] = self.counts.get(key, 0) + n
            if len(self.counts) > MAX_CATEGORIES:
                self._overflow()
        else:
            self.frequent.update(key, n)

    def _overflow(self) -> None:
        self.frequent = _sketches().frequent_strings_sketch(FREQUENT_LG_MAX)
        for key, n in (self.counts or {}).items():
            self.frequent.update(key, n)
        self.counts = None

    @property
    def exact(self) -> bool:
        return self.counts is not None

    def items(self) -> dict[str, int]:
        """Counts of the values: exact, or the frequent items' estimates once the column overflowed."""
        if self.counts is not None:
            return dict(self.counts)
        errors = _sketches().frequent_items_error_type.NO_FALSE_NEGATIVES
        return {item: int(estimate) for item, estimate, _lo, _hi in self.frequent.get_frequent_items(errors)}

    def merge(self, other: CategoricalProfile) -> None:
        self.count += other.count
        self.nulls += other.nulls
        if other.counts is not None:
            for key, n in other.counts.items():
                self._add(key, n)
            return
        if self.counts is not None:
            self._overflow()
        self.frequent.merge(other.frequent)

    def to_dict(self, pii: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "categorical", "count": self.count, "nulls": self.nulls}
        if self.counts is not None:
            doc["counts"] = dict(sorted(self.counts.items()))
        else:
            doc["frequent"] = base64.b64encode(self.frequent.serialize()).decode()
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any], salt: bytes | None) -> CategoricalProfile:
        frequent = None
        if "frequent" in doc:
            frequent = _sketches().frequent_strings_sketch.deserialize(base64.b64decode(doc["frequent"]))
        counts = {str(k): int(v) for k, v in doc["counts"].items()} if "counts" in doc else None
        return cls(counts, frequent, int(doc["count"]), int(doc["nulls"]), salt)


ColumnProfile = NumericProfile | CategoricalProfile


def new_profile(kind: Kind, salt: bytes | None = None) -> ColumnProfile:
    """An empty profile of a column of ``kind``; ``salt`` hides a PII column's category values."""
    return NumericProfile.empty() if kind == "numeric" else CategoricalProfile(salt=salt)


def column_from_dict(doc: dict[str, Any], salt: bytes | None) -> ColumnProfile:
    if doc.get("kind") == "numeric":
        return NumericProfile.from_dict(doc)
    if doc.get("kind") == "categorical":
        return CategoricalProfile.from_dict(doc, salt)
    raise DriftError(f"profile column has unknown kind {doc.get('kind')!r}")


def batches_of(tables: Iterable[pa.Table | pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Record batches of tables or batches (a helper for callers holding tables)."""
    for item in tables:
        if isinstance(item, pa.Table):
            yield from item.to_batches()
        else:
            yield item

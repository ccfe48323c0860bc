"""How the subject's rows are recognised in Arrow data: one normalization of identifiers, criteria, masks.

Identifiers matched regardless of case (e-mail addresses) are normalized by ``fold`` (in ``io.text``), defined
once over Arrow values: Unicode NFKC (fullwidth letters, ligatures and composed characters become plain),
surrounding whitespace trimmed, then every character mapped to the lower case of its upper case (so ``ı``,
``I`` and ``i`` agree, as do ``ſ`` and ``s``, ``ς`` and ``σ``, ``ß`` and ``ẞ``). The request side folds its
values with the same function on a one-element array, the data side folds whole columns (or a dataset
filter expression), and the subject index hashes folded values, so the three agree by construction.
Python's ``str.lower`` would not: it turns ``İ`` into two characters where Arrow gives one, and spells a
final sigma apart.

``Criteria`` says which values of which columns make a row the subject's (``criteria`` builds it from the
catalog and the identifiers known), as a mask over a batch or as a dataset filter that Parquet statistics
can prune with; ``mention_mask`` finds the rows whose free text mentions the subject.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.io.nested import leaves, top_column
from airflow_aisec.io.text import as_text as as_text  # re-exported: shared with consent at read time
from airflow_aisec.io.text import fold as fold
from airflow_aisec.io.text import fold_text as fold_text
from airflow_aisec.io.text import fold_texts as fold_texts
from airflow_aisec.pii.types import FREE_TEXT

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.dsr.identifiers import Identifiers


def member(values: pa.Array | pa.ChunkedArray, wanted: set[str], casefold: bool = False) -> pa.Array:
    """True where a value is one of ``wanted`` (never null)."""
    if not wanted:
        return falses(len(values))
    keys = sorted(fold_texts(wanted) if casefold else wanted)
    found = pc.is_in(as_text(values, casefold), value_set=pa.array(keys, pa.string()))
    return pc.fill_null(found, False)


def casefolded(dataset: Dataset, column: str) -> bool:
    """E-mail addresses are matched regardless of case."""
    spec = dataset.columns.get(column)
    return spec is not None and spec.pii == "EMAIL_ADDRESS"


@dataclasses.dataclass(frozen=True)
class Criteria:
    """How the subject's rows of one dataset are recognised: column → values it may hold.

    ``excluded`` (rows an earlier search already found) are left out, so searching only for newly learnt
    values never counts a row twice.
    """

    dataset: Dataset
    columns: dict[str, frozenset[str]]
    excluded: Criteria | None = None

    def mask(self, batch: pa.RecordBatch) -> pa.Array:
        """True for the subject's rows of ``batch``."""
        result = falses(batch.num_rows)
        for column, values in self.columns.items():
            found = member(batch.column(column), set(values), casefolded(self.dataset, column))
            result = pc.or_(result, found)
        if self.excluded is not None and self.excluded.columns:
            result = pc.and_not(result, self.excluded.mask(batch))
        return result

    def expression(self, schema: pa.Schema) -> pc.Expression | None:
        """The same test as a dataset filter, which Parquet row-group statistics can prune with (None: the
        schema lacks a column)."""
        terms = []
        for column, values in self.columns.items():
            if column not in schema.names:
                return None
            terms.append(_term(column, schema.field(column).type, values, casefolded(self.dataset, column)))
        found = functools.reduce(operator.or_, [t for t in terms if t is not None], pc.scalar(False))
        if self.excluded is not None and self.excluded.columns:
            before = self.excluded.expression(schema)
            if before is None:
                return None
            found = found & ~before
        return found


def _term(column: str, kind: pa.DataType, values: frozenset[str], casefold: bool) -> pc.Expression | None:
    field = pc.field(column)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if casefold:
            return fold(field).isin(pa.array(sorted(fold_texts(values)), kind))
        return field.isin(pa.array(sorted(values), kind))
    typed = []
    for value in sorted(values):
        try:
            typed.append(pa.scalar(value).cast(kind))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue  # a value this column cannot hold matches no row
    return field.isin(pa.array([t.as_py() for t in typed], kind)) if typed else None


def falses(n: int) -> pa.Array:
    """``n`` times False."""
    return pa.repeat(pa.scalar(False), n)


def criteria(catalog: Catalog, dataset: Dataset, ids: Identifiers) -> Criteria:
    """The identity and reference columns of ``dataset`` and the subject's values for each."""
    columns: dict[str, set[str]] = {}
    for kind, column in dataset.identity.items():
        if ids.identities.get(kind):
            columns.setdefault(column, set()).update(ids.identities[kind])
    for column, target in dataset.reference_targets().items():
        if ids.linked.get(target) and target[0] != dataset.name:
            columns.setdefault(column, set()).update(ids.linked[target])
    return Criteria(dataset, {c: frozenset(v) for c, v in columns.items()})


def free_text_columns(dataset: Dataset) -> list[str]:
    """The columns the catalog declares as free text (top-level names, or paths such as ``notes[].body``)."""
    return [name for name, col in dataset.columns.items() if col.pii == FREE_TEXT]


def in_batch(batch: pa.RecordBatch, name: str) -> bool:
    """Whether ``batch`` holds the column ``name``, or the column the path ``name`` goes into."""
    return name in batch.schema.names or top_column(name) in batch.schema.names


def column_values(batch: pa.RecordBatch, name: str) -> tuple[pa.Array | pa.ChunkedArray, pa.Array | None]:
    """The values of ``name`` in ``batch``: a column's (and None), or the leaves of a path into a column and
    the row each comes from."""
    if name in batch.schema.names:
        return batch.column(name), None
    found = leaves(batch.column(top_column(name)), name)
    return found.values, found.rows


def rows_of(values_mask: pa.Array, rows: pa.Array | None, num_rows: int) -> pa.Array:
    """A per-row mask from a per-value one: true where any value of the row is (``rows`` None: already one
    per row)."""
    if rows is None:
        return pc.fill_null(values_mask, False)
    hit = pc.filter(rows, pc.fill_null(values_mask, False))
    mask = np.zeros(num_rows, dtype=bool)
    mask[hit.to_numpy(zero_copy_only=False)] = True
    return pa.array(mask, pa.bool_())


def mention_mask(batch: pa.RecordBatch, columns: Sequence[str], pattern: str | None) -> pa.Array:
    """True for rows whose free text (top-level columns or paths) mentions the subject."""
    result = falses(batch.num_rows)
    if pattern is None:
        return result
    for column in columns:
        values, rows = column_values(batch, column)
        found = pc.match_substring_regex(as_text(values), pattern=pattern)
        result = pc.or_(result, rows_of(found, rows, batch.num_rows))
    return result

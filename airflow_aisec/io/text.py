"""Arrow values as text, and the one normalization of identifiers matched regardless of case (``fold``).

Identifiers matched regardless of case (e-mail addresses) are normalized by ``fold``, defined once over Arrow
values: Unicode NFKC (fullwidth letters, ligatures and composed characters become their plain forms),
surrounding whitespace trimmed, then every character mapped to the lower case of its upper case (so ``ı``,
``I`` and ``i`` agree, as do ``ſ`` and ``s``, ``ς`` and ``σ``, ``ß`` and ``ẞ``). Python's ``str.lower``
would not: it turns ``İ`` into two characters where Arrow gives one, and spells a final sigma apart.

It sits at the bottom of the package so that every reader of subjects' identifiers (data-subject requests,
consent at read time) folds them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

Folded = TypeVar("Folded", pa.Array, pa.ChunkedArray, pc.Expression)


def fold(values: Folded) -> Folded:
    """``values`` (strings, or a string-valued filter expression) normalized for case-insensitive matching."""
    normal = pc.utf8_trim_whitespace(pc.utf8_normalize(values, form="NFKC"))
    return pc.utf8_normalize(pc.utf8_lower(pc.utf8_upper(normal)), form="NFKC")


def fold_texts(values: Iterable[str]) -> set[str]:
    """The folded form of each of ``values`` (the request side of ``fold``)."""
    texts = list(values)
    if not texts:
        return set()
    return {v for v in fold(pa.array(texts, pa.string())).to_pylist() if v is not None}


def fold_text(value: str) -> str:
    """The folded form of one value: ``fold`` of a one-element array."""
    folded = fold(pa.array([value], pa.string()))[0].as_py()
    return str(folded)


def as_text(values: pa.Array | pa.ChunkedArray, casefold: bool = False) -> pa.Array:
    """Values as strings (dictionary-decoded, numbers in decimal), normalized by ``fold`` with
    ``casefold``."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    return fold(values) if casefold else values

"""What the recognizers share: the ``Found`` result and word lists turned into regular expressions."""

from __future__ import annotations

import re
from typing import NamedTuple


class Found(NamedTuple):
    """``text[start:end]`` is a ``entity`` with ``score``."""

    entity: str
    start: int
    end: int
    score: float


def words(*groups: str) -> str:
    """An alternation of the space-separated words (``_`` stands for a space), longest first."""
    items = sorted({w.replace("_", " ") for group in groups for w in group.split()}, key=len, reverse=True)
    return "|".join(re.escape(w) for w in items)


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``, as a set (long word lists read best as prose)."""
    return frozenset(text.split())


def written_lower_elsewhere(text: str, value: str) -> bool:
    """Whether a capitalised one-word ``value`` also stands in ``text`` in lower case: then it is a common
    word or a product ("Gmail: how do I retrieve gmail drafts?"), as a name is written the same each time."""
    word = value.strip()
    if " " in word or not word[:1].isupper() or word.isupper():
        return False
    return re.search(rf"(?<![\w]){re.escape(word.lower())}(?![\w])", text) is not None

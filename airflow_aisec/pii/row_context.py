"""Row context: a value of a row's PII columns is masked wherever the same row's free text repeats it.

A customer's own name and phone number in their ticket are masked even when the NER model misses them (a
lower-case or unusual name, a number written with other separators). Each value of a PII column of the row
(a string of at least ``MIN_LENGTH`` characters) is searched for in the row's free text as whole words,
regardless of case; a name (``PERSON``) is also searched word by word (each word of at least ``MIN_LENGTH``
letters), and a phone number (``PHONE_NUMBER``) also by its digits, whatever separates them. What is found
becomes a span tagged with the column's entity, merged with the spans the engine found.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from airflow_aisec.pii.types import Span

MIN_LENGTH: Final = 3
MIN_PHONE_DIGITS: Final = 6  # fewer digits would match unrelated numbers (amounts, order numbers)
NAME_ENTITIES: Final = frozenset({"PERSON"})
PHONE_ENTITIES: Final = frozenset({"PHONE_NUMBER"})
SCORE: Final = 1.0  # the row itself says the value is this entity: it wins over the engine's guess

_WORD = re.compile(r"[^\W\d_]{3,}")
_NOT_DIGIT = re.compile(r"\D+")
_PHONE_SEPARATORS = r"[\s.\-/()]{0,3}"


@functools.lru_cache(maxsize=4096)
def _compiled(text: str, digits: bool) -> re.Pattern[str]:
    if digits:  # the digits in order, with up to 3 separators between two of them
        body = _PHONE_SEPARATORS.join(text)
        return re.compile(rf"(?<![\w+(])[+(]?{body}(?!\d)")
    # Whole words: not preceded nor followed by a letter or digit; any run of spaces matches any other.
    words = r"\s+".join(re.escape(part) for part in text.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Needle:
    """One thing to look for in a row's free text, tagged ``entity``: the words of ``probe`` (lower-cased,
    spaces folded) or, with ``digits``, its digits whatever separates them. ``probe`` is also a cheap
    first test (a substring of the folded text, or of its digits): the expression is only made and
    compiled for texts that pass it."""

    entity: str
    probe: str
    digits: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled expression (compiled once, kept among the most recently used)."""
        return _compiled(self.probe, self.digits)


def needles(entity: str, value: str) -> list[Needle]:
    """What row context looks for, for ``value`` of a column holding ``entity`` (none for short values)."""
    text = " ".join(value.lower().split())
    if len(text) < MIN_LENGTH:
        return []
    found = [Needle(entity, text)]
    if entity in NAME_ENTITIES:
        words = sorted(set(_WORD.findall(text)))
        if words != [text]:
            found += [Needle(entity, word) for word in words]
    if entity in PHONE_ENTITIES:
        digits = _NOT_DIGIT.sub("", text)
        if len(digits) >= MIN_PHONE_DIGITS:
            found.append(Needle(entity, digits, digits=True))
    return found


class NeedleCache:
    """``needles`` of each (entity, value) made once: a value repeated over many rows compiles once."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, str], tuple[Needle, ...]] = {}

    def __call__(self, entity: str, value: str) -> tuple[Needle, ...]:
        key = (entity, value)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = tuple(needles(entity, value))
        return made


class Forms:
    """The lower-cased text and the digits of a text, each made once, on first need."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lower: str | None = None
        self._digits: str | None = None

    @property
    def lower(self) -> str:
        """The text lower-cased, every run of spaces made one space (as the probes are)."""
        if self._lower is None:
            self._lower = " ".join(self.text.lower().split())
        return self._lower

    @property
    def digits(self) -> str:
        """The digits of the text, in order."""
        if self._digits is None:
            self._digits = _NOT_DIGIT.sub("", self.text)
        return self._digits


def find(text: str | Forms, wanted: Iterable[Needle]) -> list[Span]:
    """The spans of ``text`` where any of ``wanted`` occurs (``Forms`` of a text seen in many rows saves
    folding it again)."""
    forms = text if isinstance(text, Forms) else Forms(text)
    spans: list[Span] = []
    for needle in wanted:
        if needle.probe not in (forms.digits if needle.digits else forms.lower):
            continue
        found = needle.pattern.finditer(forms.text)
        spans += [Span(needle.entity, m.start(), m.end(), SCORE) for m in found]
    return spans


RowNeedles = Sequence[Sequence[Needle]]
"""Per row of a free-text column, what row context looks for in it."""

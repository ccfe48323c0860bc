"""Full names the model misses, found by the names themselves: a known given name followed by a known surname.

The lists are the US Census Bureau's frequently occurring given names and surnames (1990 census: 5,163 given
names, 88,799 surnames), as the ``names`` package ships them. A surname list of that size holds most of the
world's common surnames as they are written in ASCII (``Patel``, ``Nguyen``, ``Schmidt``, ``Dubois``); accents
are ignored when looking a word up (``Müller`` is ``MULLER``). Given names are more local: the list adds
little for names from outside the US, for which the model and the cues remain the only signal.

A candidate is two or three words in a row, separated by one space (no line break, no punctuation), with a
given name first and a surname last; a middle word is an initial or itself a known name. Hyphenated names
count when each part does (``Jean-Paul``, ``Lloyd-Jones``). Then:

* capitalised (``Ingrid Haugen``), or in lower case in a text with no capital letter at all
  (``lorna kowalczyk``), as people who write without capitals write names too;
* not a phrase of the language: at least one word is no word of the model's English lemmatizer tables
  (``Mark Price`` or ``Rose Garden`` stay to the model; ``Jean-Paul Lefebvre`` is found);
* a capitalised first word the list does not know counts as a given name when no word of the run is a
  dictionary word (``Aarav Patel``);
* no title, stop word, weekday or month among them, and, capitalised, a surname the text does not also write
  in lower case (a product, a common word).

Without the dictionary (a model without lemmatizer tables) the recognizer finds nothing: the test of a
phrase is what keeps it precise. The lists are read once per process (about 10 MB).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterator
from importlib import resources
from typing import NamedTuple

from airflow_aisec.pii.recognizers.common import Found, written_lower_elsewhere
from airflow_aisec.pii.recognizers.cues import Dictionary
from airflow_aisec.pii.recognizers.persons import NOT_ONE_WORD_PERSONS, PERSON, TITLE_WORDS

log = logging.getLogger(__name__)

GAZETTEER_PERSON_SCORE = 0.86  # above the model's 0.85: a known full name wins over its LOCATION or ORG
_MAX_WORDS = 3
_PACKAGE = "names"
_GIVEN_FILES = ("dist.female.first", "dist.male.first")
_SURNAME_FILES = ("dist.all.last",)


class Gazetteer:
    """Given names and surnames, upper-case ASCII, looked up with accents folded."""

    def __init__(self, given: frozenset[str], surnames: frozenset[str]) -> None:
        self.given = given
        self.surnames = surnames

    @classmethod
    def from_census(cls) -> Gazetteer | None:
        """The lists of the installed ``names`` package, or None when it is not installed."""
        try:
            root = resources.files(_PACKAGE)
            given = frozenset(_read(root.joinpath(name).read_text("ascii")) for name in _GIVEN_FILES)
            surnames = frozenset(_read(root.joinpath(name).read_text("ascii")) for name in _SURNAME_FILES)
        except (ModuleNotFoundError, OSError, UnicodeDecodeError):
            return None
        return cls(frozenset().union(*given), frozenset().union(*surnames))

    def is_given(self, word: str) -> bool:
        """Whether ``word`` (or each part of a hyphenated one: "Jean-Paul") is a known given name."""
        return all(_key(part) in self.given for part in word.split("-") if part)

    def is_surname(self, word: str) -> bool:
        """Whether ``word`` (or each part of a hyphenated one) is a known surname."""
        return all(_key(part) in self.surnames for part in word.split("-") if part)

    def is_name(self, word: str) -> bool:
        """Whether ``word`` is a known given name or surname."""
        return self.is_given(word) or self.is_surname(word)


def _read(text: str) -> frozenset[str]:
    return frozenset(line.split(maxsplit=1)[0] for line in text.splitlines() if line.strip())


def _key(word: str) -> str:
    word = word.strip(".").replace("'", "").replace("’", "").upper()  # O'Brien is OBRIEN
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


@functools.cache
def census_gazetteer() -> Gazetteer | None:
    """The census lists, read once per process (None, with a warning, when the ``names`` package is not
    installed: full names are then left to the model and the cues)."""
    gazetteer = Gazetteer.from_census()
    if gazetteer is None:
        log.warning(
            "the given-name and surname lists of the 'names' package are not installed: install the "
            "'presidio' extra of airflow-aisec (pip install 'airflow-aisec[presidio]') to find full names "
            "the model misses"
        )
    return gazetteer


class _Word(NamedTuple):
    """A word of the text, hyphenated ones whole ("Hans-Jürgen", "Lloyd-Jones"), or an initial ("J.")."""

    text: str
    start: int
    end: int
    spaced: bool  # one space or tab (no line break, no punctuation) before the next word


# An initial, or letters with inner hyphens and apostrophes; the gap after it tells whether a name goes on.
_WORD = re.compile(r"(?:[A-Z]\.|[^\W\d_]+(?:['’\-][^\W\d_]+)*)(?P<gap>[ \t]?)")


def _words(text: str) -> list[_Word]:
    out = []
    for match in _WORD.finditer(text):
        end = match.start("gap")
        spaced = bool(match.group("gap")) and _WORD.match(text, match.end()) is not None
        out.append(_Word(text[match.start() : end], match.start(), end, spaced))
    return out


def find_listed_persons(
    text: str, dictionary: Dictionary | None, gazetteer: Gazetteer | None
) -> Iterator[Found]:
    """Known given name + known surname runs in ``text`` (see the module docstring)."""
    if dictionary is None or gazetteer is None:
        return
    lower_text = not any(char.isupper() for char in text)
    words = _words(text)
    i = 0
    while i < len(words) - 1:
        found = _run_at(words, i, dictionary, gazetteer, lower_text)
        if found is None:
            i += 1
            continue
        end, result = found
        last = text[result.start : result.end].split()[-1]
        if lower_text or not written_lower_elsewhere(text, last):
            yield result
        i = end


def _run_at(
    words: list[_Word], i: int, dictionary: Dictionary, gazetteer: Gazetteer, lower_text: bool
) -> tuple[int, Found] | None:
    """The name starting at word ``i`` and the index after it: a given name (or, capitalised, a word no
    dictionary knows), an optional initial or known name, a known surname."""
    first = words[i]
    if not _name_word(first, lower_text):
        return None
    listed = gazetteer.is_given(first.text)
    if not listed and (lower_text or not first.text.isalpha() or dictionary.known(first.text)):
        return None  # an unlisted first word is one plain word ("Aarav"), never "I'm" or "Wi-Fi"
    best: int | None = None
    j = i
    while j - i < _MAX_WORDS - 1 and j + 1 < len(words) and words[j].spaced:
        nxt = words[j + 1]
        initial = _initial(nxt, lower_text)
        if not initial and not _name_word(nxt, lower_text):
            break
        j += 1
        if not initial and gazetteer.is_surname(nxt.text):
            best = j
        elif not (initial or gazetteer.is_name(nxt.text)):
            break
    if best is None:
        return None
    run = words[i : best + 1]
    known = [_known(dictionary, word.text) for word in run if not _initial(word, lower_text)]
    if all(known) or (not listed and any(known)):
        return None
    return best + 1, Found(PERSON, run[0].start, run[-1].end, GAZETTEER_PERSON_SCORE)


def _known(dictionary: Dictionary, word: str) -> bool:
    """A hyphenated word is known when each part is ("Jean-Paul" is not; "check-in" is)."""
    return all(dictionary.known(part) for part in word.split("-") if part)


def _name_word(word: _Word, lower_text: bool) -> bool:
    text = word.text
    if len(text) < 2 or text.lower() in _stop_words():
        return False
    if text.lower() in NOT_ONE_WORD_PERSONS or text.lower() in TITLE_WORDS:
        return False
    if lower_text:
        return text.islower()
    return all(part[:1].isupper() and not part.isupper() for part in text.split("-") if part)


@functools.cache
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def _initial(word: _Word, lower_text: bool) -> bool:
    text = word.text
    return not lower_text and len(text) in (1, 2) and text[0].isupper() and text[1:] in ("", ".")

"""Names standing where a person stands, found on the model's own tokens with the help of an English dictionary.

A small model relies on capitals and on names it has seen: it misses "spoke with Thandiwe" and "forward this to
yuki okonkwo", and files "Tomasz" as a place and "Aoife Ivanova" as an organisation. Two signs together make a
name here:

* a person cue: a word after which people are named ("with", "by", "to", "from", "cc", "dear", "this is",
  "ask for", "mit", "avec", ...), or a verb that people do right after the words ("... called", "... said");
* a word that is no English word: not in the model's lemmatizer dictionary (WordNet's words, shipped with the
  English pipelines) after a simple de-inflection. A name that is also a word ("john", "mei") needs a
  surname that is not.

Words that look like products are not names: inner capitals ("PayPal", but "MacLeod" is a name), and compounds
of two dictionary words ("Zendesk", "Salesforce"). The dictionary is read once per process, on first use,
from the model the engine loaded; a pipeline without one (a blank pipeline) finds nothing here.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_aisec.pii.recognizers.common import Found, word_set
from airflow_aisec.pii.recognizers.persons import ACTIONS, NOT_ONE_WORD_PERSONS, PERSON, TITLE_WORDS

# Words after which a name often follows, and the words one of them must follow to count ("is" only after
# "this", "name"): ``None`` means any. Prepositions are weak cues; the others name a person on their own.
WEAK_CUES: dict[str, frozenset[str] | None] = {
    word: None for word in "with by to from for per cc mit von für avec par pour con por para com".split()
}
STRONG_CUES: dict[str, frozenset[str] | None] = {
    **{
        word: None
        for word in "dear hi hello hey regards thanks thank cc attn ping contact tell remind customer client "
        "patient colleague caller liebe lieber cher chère querido querida caro cara".split()
    },
    "is": word_set("this name here it"),
    "'s": word_set("it name"),
    "’s": word_set("it name"),
    "am": word_set("i"),
    "for": word_set("ask asked asking voicemail message booked"),
    "to": word_set(
        "spoke speak speaking talked talk talking forward forwarded assigned reassigned handed passed "
        "transferred sent send reply replied wrote write"
    ),
    "with": word_set("spoke speak speaking talked talk talking met meeting chatted call"),
    "by": word_set("escalated raised opened reported approved signed handled submitted requested closed"),
    "from": word_set("message email e-mail call note reply letter request complaint feedback heard"),
}
_SENTENCE_ENDS = frozenset({".", "!", "?", ":", ";", "\n"})
_OBJECTS = word_set("this it that them these those him her me us one everything over back")
# Verbs after which the word before them is someone doing it ("Thandiwe called").
PERSON_VERBS = frozenset(word for word in ACTIONS.split() if "_" not in word)
# Tokens skipped between a cue and the name ("cc: Tomasz", "Regards, Tomasz").
_SKIPPED = frozenset({",", ":", "-", "—"})
# Labels of the model's spans that a person cue turns into a person.
RELABELLED = frozenset({"GPE", "LOC", "FAC", "NORP", "ORG", "PERSON", "PER", "LOCATION", "ORGANIZATION"})
# Name prefixes that are followed by a capital inside a name ("MacLeod", "O'Brien", "DeShawn").
_INNER_CAPITAL_PREFIXES = ("mac", "mc", "o'", "o’", "de", "di", "da", "la", "le", "van", "von", "fitz", "d'")
_INNER_CAPITAL = re.compile(r"[a-zà-ÿ][A-ZÀ-Þ]")
_NAME_TOKEN = re.compile(r"^[^\W\d_][^\W\d_'’\-]*(?:['’\-][^\W\d_]+)*$")
MAX_NAME_TOKENS = 3
CUED_PERSON_SCORE = 0.86  # above the model's 0.85, so a cued name wins over its LOCATION of the same words
# Shortest part of a compound of dictionary words ("Zen" + "desk").
_COMPOUND_PART = 3
_SUFFIXES = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"))


class Dictionary:
    """English words from a spaCy lemmatizer's lookup tables, with a simple de-inflection."""

    def __init__(self, words: frozenset[str]) -> None:
        self.words = words

    @classmethod
    def from_lookups(cls, path: Path) -> Dictionary:
        """The words of the ``lemma_index`` and ``lemma_exc`` tables in ``path`` (a ``lookups`` folder)."""
        from spacy.lookups import Lookups

        lookups = Lookups().from_disk(path)
        words: set[str] = set()
        for name in ("lemma_index", "lemma_exc"):
            if not lookups.has_table(name):
                continue
            table = lookups.get_table(name)
            for pos in ("noun", "verb", "adj", "adv"):
                entries = table.get(pos) or ()
                words.update(str(word).lower() for word in entries)
        return cls(frozenset(words))

    def known(self, word: str) -> bool:
        """Whether ``word`` (any case, accents ignored) is a dictionary word or an inflection of one."""
        word = _fold(word.lower())
        if word in self.words:
            return True
        return any(
            word.endswith(suffix) and word[: -len(suffix)] + ending in self.words
            for suffix, ending in _SUFFIXES
            if len(word) > len(suffix) + 2
        )

    def compound(self, word: str) -> bool:
        """Whether ``word`` is two dictionary words run together, as product names are ("Zendesk")."""
        word = _fold(word.lower())
        return any(
            word[:cut] in self.words and self.known(word[cut:])
            for cut in range(_COMPOUND_PART, len(word) - _COMPOUND_PART + 1)
        )


def _fold(word: str) -> str:
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


@functools.cache
def dictionary_at(path: str) -> Dictionary | None:
    """The dictionary of the lookups folder ``path``, read once per process; ``None`` if it cannot be read."""
    try:
        return Dictionary.from_lookups(Path(path))
    except (OSError, ValueError, KeyError):
        return None


def lookups_path(model_path: str | Path | None) -> str | None:
    """The lemmatizer lookups folder of a loaded model's directory, or ``None`` when it has none."""
    if model_path is None:
        return None
    folder = Path(model_path) / "lemmatizer" / "lookups"
    return str(folder) if folder.is_dir() else None


def _cue(doc: Any, i: int) -> int:
    """2 when token ``i`` is a strong person cue, 1 when a weak one, else 0."""
    word = doc[i].lower_
    before = {doc[i - 1].lower_} if i > 0 else set()
    if i > 1 and doc[i - 1].lower_ in _OBJECTS:  # "forward this to ..."
        before.add(doc[i - 2].lower_)
    for strength, cues in ((2, STRONG_CUES), (1, WEAK_CUES)):
        if word in cues:
            allowed = cues[word]
            if allowed is None or before & allowed:
                return strength
    return 0


def _name_like(token: Any) -> bool:
    text = token.text
    return (
        len(text) > 1
        and not token.is_stop
        and _NAME_TOKEN.match(text) is not None
        and text.lower().strip(".") not in NOT_ONE_WORD_PERSONS
        and text.lower() not in TITLE_WORDS
        and not (text.isupper() and len(text) <= 5)
    )


def _productlike(word: str, dictionary: Dictionary) -> bool:
    inner = _INNER_CAPITAL.search(word)
    if inner is not None and not word.lower().startswith(_INNER_CAPITAL_PREFIXES):
        return True
    return dictionary.compound(word)


class _Candidate:
    """Up to ``MAX_NAME_TOKENS`` name-like tokens from ``start``, in one case style."""

    def __init__(self, doc: Any, start: int, end: int | None, dictionary: Dictionary) -> None:
        first = doc[start]
        capital = first.text[:1].isupper()
        stop = min(len(doc), start + MAX_NAME_TOKENS) if end is None else end
        tokens = [first] if _name_like(first) else []
        for token in doc[start + 1 : stop] if tokens else ():
            # Whitespace only between the words of a name; a lower-case name goes on with unknown words only.
            if not tokens[-1].whitespace_ or not _name_like(token):
                break
            if end is None and token.text[:1].isupper() != capital:
                break
            if end is None and not capital and dictionary.known(token.text):
                break
            tokens.append(token)
        self.tokens = tokens
        self.capital = capital
        self.unknown = [t for t in tokens if not dictionary.known(t.text)]
        self.products = [t for t in self.unknown if _productlike(t.text, dictionary)]

    def found(self) -> Found:
        return Found(PERSON, self.tokens[0].idx, self.tokens[-1].idx + len(self.tokens[-1].text), CUED_PERSON_SCORE)


def _is_name(candidate: _Candidate, strength: int, lower_text: bool) -> bool:
    tokens = candidate.tokens
    # A product name alone ("Zendesk", "PayPal"); a surname may look like one ("Ivanova": "ivan" + "ova").
    if not tokens or len(candidate.products) == len(candidate.unknown):
        return False
    if not candidate.unknown:
        # Dictionary words only ("john", "New York"): too common to trust a cue alone.
        return False
    if candidate.capital:
        return True
    # Lower-case words only after a person-only cue ("spoke with yuki okonkwo", not "coders from tamil nadu").
    return strength == 2


def find_cued_persons(doc: Any, dictionary: Dictionary | None) -> Iterator[Found]:
    """Names after person cues and before person verbs in a spaCy ``doc``, judged with ``dictionary``."""
    if dictionary is None or len(doc) < 2:
        return
    text = doc.text
    lower_text = not any(char.isupper() for char in text)
    entities = {ent.start: ent for ent in doc.ents if ent.label_ in RELABELLED}
    for i in range(len(doc) - 1):
        strength = _cue(doc, i)
        if strength:
            j = i + 1
            while j < len(doc) - 1 and doc[j].text in _SKIPPED:
                j += 1
            ent = entities.get(j)
            end = ent.end if ent is not None and ent.end - ent.start <= MAX_NAME_TOKENS else None
            candidate = _Candidate(doc, j, end, dictionary)
            if _is_name(candidate, strength, lower_text):
                yield candidate.found()
        elif doc[i + 1].lower_ in PERSON_VERBS:
            found = _actor(doc, i, dictionary)
            if found is not None:
                yield found


def _actor(doc: Any, i: int, dictionary: Dictionary) -> Found | None:
    """The name ending at token ``i``, before a person verb ("Thandiwe called", "diogo wants"), if any: one
    to three words in one case, one of them unknown; lower-case ones only opening a sentence."""
    capital = doc[i].text[:1].isupper()
    start = i
    while (
        start > 0
        and i - start < MAX_NAME_TOKENS - 1
        and doc[start - 1].whitespace_
        and _name_like(doc[start - 1])
        and doc[start - 1].text[:1].isupper() == capital
    ):
        start -= 1
    if not capital and start > 0 and doc[start - 1].text not in _SENTENCE_ENDS:
        return None
    candidate = _Candidate(doc, start, i + 1, dictionary)
    if len(candidate.tokens) != i + 1 - start or not candidate.unknown:
        return None
    if len(candidate.products) == len(candidate.unknown):
        return None
    return candidate.found()

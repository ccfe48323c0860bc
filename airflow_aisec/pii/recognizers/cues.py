"""Names standing where a person stands, found on the model's tokens with the help of an English dictionary.

A small model relies on capitals and on names it has seen: it misses "spoke with Thandiwe" and "forward
this to yuki okonkwo", and files "Tomasz" as a place and "Aoife Ivanova" as an organisation. Two signs
together make a name here:

* a person cue before it: a word after which people are named ("dear", "cc", "this is", "spoke with",
  "forward this to", "escalated by", "ask for", ...), or a preposition ("with", "by", "to", "from", "mit",
  "avec", ...), which is as often followed by a place or a product and so counts only before two words
  ("from Tomasz Dubois"); or a verb after it, for a lower-case name or two words opening a sentence or a
  log line ("diogo called", "audit: Noberta Bauers exported"); or a colon after it, opening a chat line
  before a message ("Suzanne: reach me at ...");
* a word that is no English word: not in the model's lemmatizer dictionary (WordNet's words, shipped with
  the English pipelines) after a simple de-inflection. A name that is also a word ("john", "mei") needs a
  surname that is not ("fatima nguyen").

Lower-case names need a person-only cue ("coders from tamil nadu" is no one). Words that look like products
are no names: inner capitals ("PayPal"; "MacLeod" is a name), two dictionary words run together
("Zendesk", "Salesforce"), a word qualifying the common word after it ("Shopify support"), and one the
text also writes in lower case ("Gmail: ... gmail drafts"). Only mostly English text is judged: in another
language every noun is unknown to the dictionary ("Telefon:", "Betreff:"). The dictionary is read once per
process, on first use, from the model the engine loaded; without one (a blank pipeline) nothing is found.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_aisec.pii.recognizers.common import Found, word_set, written_lower_elsewhere
from airflow_aisec.pii.recognizers.persons import ACTIONS, NOT_ONE_WORD_PERSONS, PERSON, TITLE_WORDS

# Words after which a name often follows, and the words one of them must follow to count ("is" only after
# "this", "name"): ``None`` means any. Prepositions are weak cues; the others name a person on their own.
WEAK_CUES: dict[str, frozenset[str] | None] = dict.fromkeys(
    word_set("with by to from for per mit von für avec par pour con por para com")
)
STRONG_CUES: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(
        word_set(
            "dear hi hello hey regards thanks thank cc attn ping contact tell remind customer client patient "
            "colleague caller reference payee beneficiary liebe lieber cher chère querido querida caro cara"
        )
    ),
    "is": word_set("this name here it"),
    "'s": word_set("it name"),
    "’s": word_set("it name"),
    "am": word_set("i"),
    "for": word_set("ask asked asking voicemail message booked"),
    "to": word_set(
        "spoke speak speaking talked talk talking forward forwarded assigned reassigned handed passed "
        "transferred reply replied wrote write"
    ),
    "with": word_set("spoke speak speaking talked talk talking met meeting chatted call"),
    "by": word_set("escalated raised opened reported approved signed handled submitted requested closed"),
    "from": word_set("message email e-mail call note reply letter request complaint feedback heard"),
}
# Words that follow a name without qualifying it ("spoke with Thandiwe today").
_ADVERBS = word_set(
    "today tomorrow yesterday tonight earlier later again twice directly personally already still yet "
    "regarding concerning re asap soon now first last"
)
_SENTENCE_ENDS = frozenset({".", "!", "?", ":", ";", "\n"})
_OBJECTS = word_set("this it that them these those him her me us one everything over back")
# Verbs after which the word before them is someone doing it ("Thandiwe called").
PERSON_VERBS = frozenset(word for word in ACTIONS.split() if "_" not in word) | word_set(
    "exported downloaded uploaded deleted updated changed created edited viewed accessed logged approved "
    "cancelled canceled ordered paid returned signed booked opened closed submitted"
)
# Tokens skipped between a cue and the name ("cc: Tomasz", "Regards, Tomasz").
_SKIPPED = frozenset({",", ":", "-", "—"})
# Labels of the model's spans that a person cue turns into a person.
RELABELLED = frozenset({"GPE", "LOC", "FAC", "NORP", "ORG", "PERSON", "PER", "LOCATION", "ORGANIZATION"})
# Name prefixes that are followed by a capital inside a name ("MacLeod", "O'Brien", "DeShawn").
_INNER_CAPITAL_PREFIXES = ("mac", "mc", "o'", "o’", "de", "di", "da", "la", "le", "van", "von", "fitz", "d'")
_INNER_CAPITAL = re.compile(r"[a-zà-ÿ][A-ZÀ-Þ]")
_NAME_TOKEN = re.compile(r"^[^\W\d_][^\W\d_'’\-]*(?:['’\-][^\W\d_]+)*$")
MAX_NAME_TOKENS = 3
# A text is judged when at least this many, and this share, of its lower-case words are English.
ENGLISH_WORDS = 2
ENGLISH_SHARE = 0.5
CUED_PERSON_SCORE = 0.86  # above the model's 0.85, so a cued name wins over its LOCATION of the same words
# Shortest parts of a compound of dictionary words ("Zen" + "desk"); shorter tails make names products
# ("Tor" + "han"), as do longer heads (1 in 50 unknown names is such a compound, 1 in 3 product names).
_COMPOUND_HEAD = 3
_COMPOUND_TAIL = 4
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
        for cut in range(_COMPOUND_HEAD, len(word) - _COMPOUND_TAIL + 1):
            head, tail = word[:cut], word[cut:]
            if head in self.words and (tail in self.words or (tail[-1] == "s" and tail[:-1] in self.words)):
                return True
        return False


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


def lookups_path(model: str | None) -> str | None:
    """The lemmatizer lookups folder of the installed spaCy model ``model`` (a package name or a model
    directory), or ``None`` when it has none."""
    if not model:
        return None
    import spacy

    if Path(model).is_dir():
        root = Path(model)
    elif spacy.util.is_package(model):
        root = spacy.util.get_package_path(model)
    else:
        return None
    # A model directory holds it; a model package holds the model directory, named after its version.
    for folder in (root / "lemmatizer" / "lookups", *sorted(root.glob("*/lemmatizer/lookups"))):
        if folder.is_dir():
            return str(folder)
    return None


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


def _initial(token: Any) -> bool:
    """A capital letter alone inside a name ("Siobhán Ó Briain", "Anna K Weber")."""
    return len(token.text) == 1 and token.text.isalpha() and token.text.isupper()


class _Candidate:
    """Up to ``MAX_NAME_TOKENS`` name-like tokens from ``start``, in one case style; the tokens up to ``end``
    (the model's span, or the words before a verb) are taken whatever their case, and those only if ``fixed``.
    """

    def __init__(
        self, doc: Any, start: int, end: int | None, dictionary: Dictionary, fixed: bool = False
    ) -> None:
        first = doc[start]
        capital = first.text[:1].isupper()
        stop = min(len(doc), start + MAX_NAME_TOKENS)
        if end is not None:
            stop = end if fixed else max(stop, end)
        tokens = [first] if _name_like(first) else []
        for token in doc[start + 1 : stop] if tokens else ():
            # Whitespace only between the words of a name; a lower-case name goes on with unknown words only.
            if not tokens[-1].whitespace_ or not (_name_like(token) or (capital and _initial(token))):
                break
            inside = end is not None and token.i < end
            if not inside and token.text[:1].isupper() != capital:
                break
            if not inside and not capital and dictionary.known(token.text):
                break
            tokens.append(token)
        while tokens and _initial(tokens[-1]):
            tokens.pop()
        self.tokens = tokens
        self.capital = capital
        self.unknown = [t for t in tokens if not _initial(t) and not dictionary.known(t.text)]
        self.products = [t for t in self.unknown if _productlike(t.text, dictionary)]

    def found(self) -> Found:
        """The candidate as a person."""
        last = self.tokens[-1]
        return Found(PERSON, self.tokens[0].idx, last.idx + len(last.text), CUED_PERSON_SCORE)


def _is_name(candidate: _Candidate, strength: int, lower_text: bool) -> bool:
    tokens = candidate.tokens
    # A product name alone ("Zendesk", "PayPal"); a surname may look like one ("Ivanova": "ivan" + "ova").
    if not tokens or len(candidate.products) == len(candidate.unknown):
        return False
    if not candidate.unknown:
        # Dictionary words only ("john", "New York"): too common to trust a cue alone.
        return False
    if candidate.capital:
        # One word after a preposition is as often a product or a place ("processed by Shopify").
        return strength == 2 or len(tokens) > 1
    # Lower-case words only after a person-only cue ("spoke with yuki okonkwo", not "coders from tamil nadu").
    return strength == 2


def _modifier(doc: Any, candidate: _Candidate, dictionary: Dictionary) -> bool:
    """Whether the candidate qualifies the common word after it ("Shopify support", "Kraków office")."""
    after = candidate.tokens[-1].i + 1
    if after >= len(doc) or not candidate.tokens[-1].whitespace_:
        return False
    word = doc[after]
    return (
        word.is_alpha
        and word.text.islower()
        and not word.is_stop
        and word.lower_ not in PERSON_VERBS
        and word.lower_ not in _ADVERBS
        and dictionary.known(word.text)
    )


def _english(doc: Any, dictionary: Dictionary) -> bool:
    """Whether the lower-case words of ``doc`` are mostly English: in another language every noun is unknown
    to the dictionary ("Telefon:", "Rechnung für Familie Schmidt"), so it tells nothing about names there."""
    words = [token for token in doc if token.is_alpha and token.text[:1].islower()]
    english = sum(1 for token in words if token.is_stop or dictionary.known(token.text))
    return english >= ENGLISH_WORDS and english >= ENGLISH_SHARE * len(words)


def find_cued_persons(doc: Any, dictionary: Dictionary | None) -> Iterator[Found]:
    """Names after person cues and before person verbs in a spaCy ``doc``, judged with ``dictionary``."""
    if dictionary is None or len(doc) < 2:
        return
    if not _english(doc, dictionary):
        return
    text = doc.text
    lower_text = not any(char.isupper() for char in text)
    entities = {ent.start: ent for ent in doc.ents if ent.label_ in RELABELLED}
    yield from _speaker(doc, dictionary)
    for i in range(len(doc) - 1):
        strength = _cue(doc, i)
        if strength:
            j = i + 1
            while j < len(doc) - 1 and doc[j].text in _SKIPPED:
                j += 1
            ent = entities.get(j)
            end = ent.end if ent is not None and ent.end - ent.start <= MAX_NAME_TOKENS else None
            candidate = _Candidate(doc, j, end, dictionary)
            if _is_name(candidate, strength, lower_text) and not _modifier(doc, candidate, dictionary):
                found = candidate.found()
                if not written_lower_elsewhere(text, text[found.start : found.end]):
                    yield found
        elif doc[i + 1].lower_ in PERSON_VERBS:
            actor = _actor(doc, i, dictionary)
            if actor is not None:
                yield actor


def _actor(doc: Any, i: int, dictionary: Dictionary) -> Found | None:
    """The name ending at token ``i`` and opening a sentence or a log line, before a person verb ("diogo
    wants", "audit: Noberta Bauers exported"), if any: one to three words in one case, one of them unknown.
    One capitalised word before a verb is as often a product ("Shopify said"): capitalised names need two."""
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
    if (capital and start == i) or (start > 0 and doc[start - 1].text not in _SENTENCE_ENDS):
        return None
    candidate = _Candidate(doc, start, i + 1, dictionary, fixed=True)
    if len(candidate.tokens) != i + 1 - start or not candidate.unknown:
        return None
    if len(candidate.products) == len(candidate.unknown):
        return None
    return candidate.found()


def _speaker(doc: Any, dictionary: Dictionary) -> Iterator[Found]:
    """Names opening a chat or transcript line before a colon ("Suzanne: reach me at ..."): one or two
    capitalised words, one of them unknown, none product-like; "Note:", "Error:" are words."""
    for i in range(len(doc) - 1):
        if i > 0 and "\n" not in doc[i - 1].text and "\n" not in doc[i - 1].whitespace_:
            continue
        candidate = _Candidate(doc, i, None, dictionary)
        tokens = candidate.tokens
        if not tokens or not candidate.capital or len(tokens) > 2 or not candidate.unknown:
            continue
        after = tokens[-1].i + 1
        # A message follows ("Suzanne: reach me"), not a value ("Telefon: 0151 ...", "Nom: Dupont").
        message = after < len(doc) - 1 and doc[after + 1].text[:1].islower() and doc[after + 1].is_alpha
        if message and doc[after].text == ":" and not candidate.products:
            found = candidate.found()
            if not written_lower_elsewhere(doc.text, doc.text[found.start : found.end]):
                yield found

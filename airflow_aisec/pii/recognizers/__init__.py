"""Our recognizers, as Presidio recognizers: phone and card numbers, street addresses, names in context.

The finders in the submodules work on plain strings and need neither Presidio nor spaCy; this module wraps
them, importing Presidio only when ``build_recognizers`` is called.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from typing import Any

from airflow_aisec.pii.recognizers.addresses import STREET_ADDRESS, find_addresses
from airflow_aisec.pii.recognizers.cards import find_cards
from airflow_aisec.pii.recognizers.common import Found, word_set, written_lower_elsewhere
from airflow_aisec.pii.recognizers.cues import dictionary_at, find_cued_persons, lookups_path
from airflow_aisec.pii.recognizers.gazetteer import census_gazetteer, find_listed_persons
from airflow_aisec.pii.recognizers.ibans import find_ibans
from airflow_aisec.pii.recognizers.persons import PERSON, find_persons, plausible_person
from airflow_aisec.pii.recognizers.phones import find_phones
from airflow_aisec.pii.recognizers.regions import coarse_place

__all__ = [
    "STREET_ADDRESS",
    "Found",
    "build_recognizers",
    "find_addresses",
    "find_cards",
    "find_cued_persons",
    "find_ibans",
    "find_persons",
    "find_phones",
    "from_ours",
    "lookups_path",
    "plausible",
    "plausible_person",
    "superseded",
]

Finder = Callable[[str], Iterable[Found]]

# Presidio's recognizers that ours replace. Ours find what theirs find, except on purpose: of Presidio's
# phone matches, card numbers, postcodes and IP addresses are not phones here.
SUPERSEDED = ("PhoneRecognizer", "CreditCardRecognizer")
OUR_RECOGNIZERS = frozenset(
    {
        "PhoneNumberRecognizer",
        "CardNumberRecognizer",
        "StreetAddressRecognizer",
        "IbanChecksumRecognizer",
        "PersonInContextRecognizer",
        "CuedPersonRecognizer",
    }
)

# Entities kept in running text only with a reason (see ``plausible``).
CONTEXTUAL_ENTITIES = frozenset({"DATE_TIME", "NRP", "LOCATION"})
# Words after which a lower-case name from the model is believed ("this is anna weber").
PERSON_INTRODUCERS = word_set(
    "is i'm am with by from hi hello dear cc thanks regards mr mrs ms miss dr called contact ask attn"
)
_LAST_WORD = re.compile(r"([\w'’]+)[.,:]?[ \t]+$")
# Words that make a place someone's: where they live, were born, are.
_RESIDENCE = re.compile(
    r"(?<![\w])(?:live|lives|lived|living|reside|resides|resident|residing|address|moved|home|born|"
    r"located|wohne|wohnt|wohnhaft|habite|domicile|vivo|vive|abito|moro|mora)(?![\w])",
    re.IGNORECASE,
)
_BIRTH = re.compile(
    r"(?<![\w])(?:born|birth|birthday|dob|d\.o\.b\.?|geboren|geb\.|geburtstag|geburtsdatum|née?|naissance|"
    r"nacid[oa]|nacimiento|nat[oa]|nascita|nascid[oa]|nascimento|age[ds]?)(?![\w])",
    re.IGNORECASE,
)


def from_ours(result: Any) -> bool:
    """Whether a Presidio result comes from one of our recognizers (which judge their own matches)."""
    metadata = getattr(result, "recognition_metadata", None) or {}
    return metadata.get("recognizer_name") in OUR_RECOGNIZERS


def superseded(recognizer: Any) -> bool:
    """Whether ``recognizer`` is a Presidio recognizer that one of ours replaces."""
    return type(recognizer).__name__ in SUPERSEDED and type(recognizer).__module__.startswith("presidio")


def _sentence_start_word(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    if " " in value.strip() or not text[end:].startswith(" ") or text[end + 1 : end + 2].isupper():
        return False
    before = text[:start].rstrip(" \t")
    return not before or before[-1] in ".!?\n"


def plausible(entity: str, text: str, start: int, end: int) -> bool:
    """Whether a span of ``text`` found by a general recognizer is worth masking.

    In running text, dates, places and nationalities are personal data when they describe someone: a date
    is kept near a birth word ("born", "DOB", "geboren", ...), a place smaller than a country's first-level
    region near a residence word ("live in", "address", "moved to"); a date, place or ``NRP`` standing as
    the whole value (a column of cities) is kept; "shipped on 2024-03-15", "in 5 minutes", "delivery to
    New York", "I live in India" and "American" are not. Street addresses are ``STREET_ADDRESS``, found by
    their own recognizer. A person from the model must be ``plausible_person``, and one capitalised word
    written in lower case elsewhere in the text is none; one capitalised word opening a sentence and
    followed by a lower-case word is no person nor place.
    """
    value = text[start:end]
    if entity in (PERSON, "LOCATION") and _sentence_start_word(text, start, end):
        # The model takes a capitalised first word for a name or a place ("Sea stuff...", "Drop the..."); one
        # word alone there is too weak to mask. Names in context are found by ``find_persons`` instead.
        return False
    if entity == PERSON:
        # In a text with capitals, a name without any is mostly a common word the model misread ("java",
        # "meth smokers"): kept when it has two words and follows a word that introduces a person.
        if not any(char.isupper() for char in value) and any(char.isupper() for char in text):
            last = _LAST_WORD.search(text[max(0, start - 24) : start])
            introduced = last is not None and last.group(1).lower() in PERSON_INTRODUCERS
            return introduced and " " in value.strip() and plausible_person(value)
        return plausible_person(value) and not written_lower_elsewhere(text, value)
    if entity in CONTEXTUAL_ENTITIES:
        # A question ("Saudi arabia?") is no value standing alone.
        if not text[:start].strip() and not text[end:].strip(" \t\n.,;:!"):
            return True
        before = text[max(0, start - 32) : start]
        if entity == "LOCATION":
            # Where someone lives, unless the place is a whole country or region (``regions``).
            return _RESIDENCE.search(before) is not None and not coarse_place(value)
        return entity == "DATE_TIME" and _BIRTH.search(before) is not None
    return True


@functools.cache
def _rule_recognizer_class() -> type[Any]:
    from presidio_analyzer import LocalRecognizer, RecognizerResult

    class RuleRecognizer(LocalRecognizer):
        """A recognizer around one of our finders; context words are the finder's own business."""

        def __init__(self, name: str, entities: list[str], finder: Finder, supported_language: str) -> None:
            self._finder = finder
            self._metadata_name = name
            super().__init__(
                supported_entities=entities, name=name, supported_language=supported_language, context=[]
            )

        def load(self) -> None:
            """Nothing to load: the finders are regular expressions."""

        def find(self, text: str, nlp_artifacts: Any) -> Iterable[Found]:
            """What the finder finds in ``text``."""
            return self._finder(text)

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            wanted = set(entities) & set(self.supported_entities)
            if not wanted:
                return []
            # A finder's second entity (a whole-value address is a LOCATION) falls back to its first.
            main = self.supported_entities[0]
            return [
                RecognizerResult(
                    found.entity if found.entity in wanted else main,
                    found.start,
                    found.end,
                    found.score,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self._metadata_name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
                for found in self.find(text, nlp_artifacts)
                if found.entity in wanted or main in wanted
            ]

    return RuleRecognizer


@functools.cache
def _cued_recognizer_class() -> type[Any]:
    class CuedPersonRecognizer(_rule_recognizer_class()):  # type: ignore[misc]
        """Names after person cues, on the model's tokens and entities (see ``cues``), and known full names
        (see ``gazetteer``): both judged with the model's dictionary, in one recognizer.

        The dictionary and the name lists are read on the first text, so building an engine stays as fast
        as before.
        """

        def __init__(self, lookups: str, supported_language: str) -> None:
            self._lookups = lookups
            super().__init__("CuedPersonRecognizer", [PERSON], _no_finder, supported_language)

        def find(self, text: str, nlp_artifacts: Any) -> Iterable[Found]:
            doc = getattr(nlp_artifacts, "tokens", None)
            if doc is None or doc.text != text:
                return ()
            dictionary = dictionary_at(self._lookups)
            return itertools.chain(
                find_cued_persons(doc, dictionary), find_listed_persons(text, dictionary, census_gazetteer())
            )

    return CuedPersonRecognizer


def _no_finder(text: str) -> Iterable[Found]:
    return ()


def build_recognizers(language: str, with_names: bool, lookups: str | None = None) -> list[Any]:
    """Our recognizers for ``language``; ``with_names`` adds the names-in-context ones (needs NER mode), of
    which the cued names need the model's lemmatizer ``lookups`` folder (see ``lookups_path``)."""
    rule = _rule_recognizer_class()
    recognizers = [
        rule("PhoneNumberRecognizer", ["PHONE_NUMBER"], find_phones, language),
        rule("CardNumberRecognizer", ["CREDIT_CARD"], find_cards, language),
        rule("StreetAddressRecognizer", [STREET_ADDRESS, "LOCATION"], find_addresses, language),
        rule("IbanChecksumRecognizer", ["IBAN_CODE"], find_ibans, language),
    ]
    if with_names:
        recognizers.append(rule("PersonInContextRecognizer", [PERSON], find_persons, language))
        if lookups is not None:
            recognizers.append(_cued_recognizer_class()(lookups, language))
    return recognizers

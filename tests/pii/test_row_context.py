"""Row context: a row's own PII values are masked in that row's free text, whatever the NER decides."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.pii.engine import PIIEngine
from airflow_aisec.pii.mask import ColumnPlan, Masker
from airflow_aisec.pii.row_context import needles
from airflow_aisec.pii.types import Span, SpanFinder

TEXT = ColumnPlan("ticket", "free_text", "free_text")
NAME = ColumnPlan("full_name", "PERSON", "replace")
PHONE = ColumnPlan("phone", "PHONE_NUMBER", "pseudonymize")
EMAIL = ColumnPlan("email", "EMAIL_ADDRESS", "pseudonymize")


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json")


def nothing(texts: Sequence[str]) -> list[list[Span]]:
    """A span finder that finds nothing: whatever is masked comes from row context."""
    return [[] for _ in texts]


def tickets(names: list[str | None], phones: list[str | None], texts: list[str | None]) -> pa.Table:
    return pa.table({"full_name": names, "phone": phones, "ticket": pa.array(texts, pa.string())})


def masked_text(
    table: pa.Table, keyring: LocalKeyring, *plans: ColumnPlan, finder: SpanFinder = nothing
) -> list[str | None]:
    """The ``ticket`` column of ``table`` masked with ``plans``."""
    return list(Masker(plans, keyring, finder).mask_table(table).column("ticket").to_pylist())


def test_a_name_the_ner_misses_is_masked_in_its_own_row(keyring: LocalKeyring, ner_engine: PIIEngine) -> None:
    table = tickets(
        ["zorbax quimbly", "Ottoline Vantrasse"],
        [None, None],
        ["order late again - zorbax quimbly", "refund pending, ottoline vantrasse"],
    )
    alone = masked_text(table, keyring, TEXT, finder=ner_engine.find_spans)
    # Lower-case, no cue word before them: the engine alone lets both names through.
    assert "quimbly" in str(alone[0]) and "vantrasse" in str(alone[1])
    with_context = masked_text(table, keyring, TEXT, NAME, finder=ner_engine.find_spans)
    assert with_context == ["order late again - <PERSON>", "refund pending, <PERSON>"]


def test_each_word_of_a_name_is_masked_whatever_its_case(keyring: LocalKeyring) -> None:
    table = tickets(["Ottoline Vantrasse"], [None], ["VANTRASSE again; ask for Ottoline or ottoline."])
    assert masked_text(table, keyring, TEXT, NAME) == ["<PERSON> again; ask for <PERSON> or <PERSON>."]


def test_a_phone_written_with_other_separators_is_masked(keyring: LocalKeyring) -> None:
    table = tickets(
        [None, None, None],
        ["+33 6 12 34 56 78", "(555) 123-4567", "555 123 4567"],
        ["call +33.6.12.34.56.78 or 33612345678", "my number: 555.123.4567!", "ref 5551234567890 not it"],
    )
    assert masked_text(table, keyring, TEXT, PHONE) == [
        "call <PHONE_NUMBER> or <PHONE_NUMBER>",
        "my number: <PHONE_NUMBER>!",
        "ref 5551234567890 not it",  # the digits run on: another number
    ]


def test_a_value_inside_a_longer_word_is_not_masked(keyring: LocalKeyring) -> None:
    table = tickets(["Ann Lee"], [None], ["Annual fees in Leeds: ann lee disagrees, Ann-Lee too"])
    assert masked_text(table, keyring, TEXT, NAME) == [
        "Annual fees in Leeds: <PERSON> disagrees, <PERSON>-<PERSON> too"
    ]


def test_values_of_another_row_are_not_masked(keyring: LocalKeyring) -> None:
    table = tickets(["Ottoline Vantrasse", "Bram Quell"], [None, None], ["Bram Quell is my neighbour", "ok"])
    assert masked_text(table, keyring, TEXT, NAME) == ["Bram Quell is my neighbour", "ok"]


def test_short_values_and_nulls_are_left_alone(keyring: LocalKeyring) -> None:
    table = tickets(
        ["Al", None, "Ottoline Vantrasse", "Ottoline Vantrasse"],
        ["12", None, None, "+33 6 12 34 56 78"],
        ["Al said 12 times", "nothing of theirs", None, ""],
    )
    assert masked_text(table, keyring, TEXT, NAME, PHONE) == [
        "Al said 12 times",
        "nothing of theirs",
        None,
        "",
    ]


def test_row_spans_merge_with_the_engines_and_are_counted(keyring: LocalKeyring) -> None:
    def first_names(texts: Sequence[str]) -> list[list[Span]]:
        return [[Span("PERSON", 6, 14, 0.6)] if t.startswith("Hello Ottoline") else [] for t in texts]

    table = tickets(
        ["Ottoline Vantrasse"] * 2, ["555 123 4567"] * 2, ["Hello Ottoline Vantrasse, 555-123-4567"] * 2
    )
    masker = Masker([TEXT, NAME, PHONE], keyring, first_names)
    out = masker.mask_table(table).column("ticket").to_pylist()
    assert out == ["Hello <PERSON>, <PHONE_NUMBER>"] * 2
    assert masker.counts["ticket"] == {"PERSON": 2, "PHONE_NUMBER": 2}


def test_free_text_entities_option_also_limits_row_context(keyring: LocalKeyring) -> None:
    only_phones = ColumnPlan("ticket", "free_text", "free_text", {"entities": ["PHONE_NUMBER"]})
    table = tickets(["Ottoline Vantrasse"], ["555 123 4567"], ["Ottoline: 555-123-4567"])
    assert masked_text(table, keyring, only_phones, NAME, PHONE) == ["Ottoline: <PHONE_NUMBER>"]


def test_row_context_covers_nested_values_and_several_chunks(keyring: LocalKeyring) -> None:
    contact = pa.struct([("email", pa.string()), ("phone", pa.string())])
    first = pa.table(
        {
            "contact": pa.array([{"email": "zq@example.com", "phone": None}], contact),
            "ticket": pa.array(["write to ZQ@example.com"]).dictionary_encode(),
        }
    )
    second = pa.table(
        {
            "contact": pa.array([None, {"email": None, "phone": "+44 20 7946 0958"}], contact),
            "ticket": pa.array(
                ["write to zq@example.com", "ring 020 7946 0958 or +44 20 7946 0958"]
            ).dictionary_encode(),
        }
    )
    table = pa.concat_tables([first, second])
    assert table.column("ticket").num_chunks == 2
    plans = [
        TEXT,
        ColumnPlan("contact.email", "EMAIL_ADDRESS", "redact"),
        ColumnPlan("contact.phone", "PHONE_NUMBER", "redact"),
    ]
    out = Masker(plans, keyring, nothing).mask_table(table)
    assert out.column("ticket").type == table.column("ticket").type
    assert out.column("ticket").to_pylist() == [
        "write to <EMAIL_ADDRESS>",
        "write to zq@example.com",  # that row holds no e-mail of its own
        "ring 020 7946 0958 or <PHONE_NUMBER>",
    ]


def test_nested_free_text_gets_the_context_of_its_row(keyring: LocalKeyring) -> None:
    note = pa.struct([("body", pa.string())])
    table = pa.table(
        {
            "full_name": ["Ottoline Vantrasse", "Bram Quell"],
            "notes": pa.array(
                [[{"body": "Vantrasse called"}, {"body": "Bram Quell?"}], [{"body": "Bram Quell called"}]],
                pa.list_(note),
            ),
        }
    )
    out = Masker([NAME, ColumnPlan("notes[].body", "free_text", "free_text")], keyring, nothing).mask_table(
        table
    )
    assert out.column("notes").to_pylist() == [
        [{"body": "<PERSON> called"}, {"body": "Bram Quell?"}],
        [{"body": "<PERSON> called"}],
    ]


def test_needles_of_a_value() -> None:
    assert needles("PERSON", "  ") == []
    assert [n.probe for n in needles("PERSON", "Ottoline  Vantrasse")] == [
        "ottoline vantrasse",
        "ottoline",
        "vantrasse",
    ]
    assert [n.probe for n in needles("PHONE_NUMBER", "+33 6 12 34 56 78")] == [
        "+33 6 12 34 56 78",
        "33612345678",
    ]
    assert [n.probe for n in needles("EMAIL_ADDRESS", "a@b.io")] == ["a@b.io"]

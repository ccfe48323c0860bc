"""Masking strategies: each keeps the column's type, length and nulls, and leaves no masked value readable."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.crypto.keyring import KeyVersion, LocalKeyring
from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.strategies import (
    DROP,
    MaskRule,
    apply_strategy,
    check_options,
    decrypt_values,
    default_strategy,
    drop,
    encrypt,
    generalize,
    mask_free_text,
    partial,
    pseudonym,
    pseudonymize,
    redact,
    replace,
)
from airflow_aisec.pii.types import Span

KEY = KeyVersion("aisec-pseudonyms", "symmetric", 1, "2026-01-01T00:00:00+00:00", "active", b"\x01" * 32)
OTHER_KEY = KeyVersion("other", "symmetric", 1, "2026-01-01T00:00:00+00:00", "active", b"\x02" * 32)
EMAILS = ["alice@example.com", None, "bob@example.org", "alice@example.com"]
TOKEN = re.compile(r"pseu_[0-9a-f]{32}")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json")


def _no_value_in(error: pytest.ExceptionInfo[PIIError], values: Sequence[Any]) -> None:
    for value in values:
        if value is not None and len(str(value)) >= 3:
            assert str(value) not in str(error.value)


def email_finder(texts: Sequence[str]) -> list[list[Span]]:
    """A fake span finder: e-mail addresses, and capitalised 'Alice'/'Bob' as persons."""
    results = []
    for text in texts:
        spans = [Span("EMAIL_ADDRESS", m.start(), m.end(), 0.9) for m in re.finditer(r"\S+@\S+\.\w+", text)]
        spans += [Span("PERSON", m.start(), m.end(), 0.8) for m in re.finditer(r"\b(Alice|Bob)\b", text)]
        results.append(spans)
    return results


# -- redact -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        pa.array(EMAILS),
        pa.array([1, None, 3], pa.int32()),
        pa.array([dt.date(1987, 6, 15), None]),
        pa.array(["a", "b", "a"]).dictionary_encode(),
        pa.chunked_array([["x", None], ["y"]], pa.large_string()),
        pa.array([{"a": 1}, None]),
    ],
)
def test_redact_nulls_every_value_and_keeps_the_type(values: Any) -> None:
    out = redact(values)
    assert out.type == values.type
    assert type(out) is type(values)
    assert len(out) == len(values)
    assert out.null_count == len(values)


# -- replace ------------------------------------------------------------------------------------------


def test_replace_writes_the_entity_tag_and_keeps_nulls() -> None:
    out = replace(pa.array(EMAILS), entity="EMAIL_ADDRESS")
    assert out.to_pylist() == ["<EMAIL_ADDRESS>", None, "<EMAIL_ADDRESS>", "<EMAIL_ADDRESS>"]
    assert out.type == pa.string()


def test_replace_uses_the_value_option_and_keeps_large_view_and_dictionary_types() -> None:
    for values in (
        pa.array(["a", None], pa.large_string()),
        pa.array(["a", None], pa.string_view()),
        pa.array(["a", None, "b"]).dictionary_encode(),
    ):
        out = replace(values, value="hidden")
        assert out.type == values.type
        assert out.to_pylist() == ["hidden", None, "hidden"][: len(values)]


def test_replace_without_entity_uses_a_generic_tag() -> None:
    assert replace(pa.array(["x"])).to_pylist() == ["<REDACTED>"]


def test_replace_of_a_non_string_column_needs_a_castable_value() -> None:
    ints = pa.array([7, None, 9], pa.int16())
    with pytest.raises(PIIError, match=r"replace needs a string column.*'age'"):
        replace(ints, column="age")
    out = replace(ints, value=0, column="age")
    assert (out.type, out.to_pylist()) == (pa.int16(), [0, None, 0])
    with pytest.raises(PIIError, match=r"`value` set for column 'age' cannot be converted to int16"):
        replace(ints, value="zero", column="age")


# -- partial ------------------------------------------------------------------------------------------


def test_partial_keeps_the_last_four_characters_and_the_length() -> None:
    out = partial(pa.array(["4111111111111111", None, "+33 6 12 34 56 78"]))
    assert out.to_pylist() == ["************1111", None, "*************6 78"]


def test_partial_masks_short_values_entirely_so_they_are_not_revealed() -> None:
    out = partial(pa.array(["1234", "123", "", "12345"]), keep_last=4)
    assert out.to_pylist() == ["****", "***", "", "*2345"]


def test_partial_counts_characters_not_bytes_and_honours_options() -> None:
    out = partial(pa.array(["héllo wörld"], pa.large_string()), keep_last=3, mask_char="#")
    assert out.to_pylist() == ["########rld"]
    assert out.type == pa.large_string()
    assert partial(pa.array(["secret"]), keep_last=0).to_pylist() == ["******"]


def test_partial_refuses_non_string_columns_and_bad_options() -> None:
    with pytest.raises(PIIError, match=r"partial needs a string column; column 'n' is int64"):
        partial(pa.array([1]), column="n")
    with pytest.raises(PIIError, match=r"partial of column 'c': set `keep_last`"):
        partial(pa.array(["x"]), keep_last=-1, column="c")
    with pytest.raises(PIIError, match=r"`mask_char` must be one character"):
        partial(pa.array(["x"]), mask_char="**", column="c")


# -- pseudonymize -------------------------------------------------------------------------------------


def _expected_token(value: str, key: KeyVersion) -> str:
    derived = HKDF(hashes.SHA256(), 32, None, b"aisec/pseudonymize/v1").derive(key.material)
    return "pseu_" + hmac.new(derived, value.encode(), hashlib.sha256).hexdigest()[:32]


def test_pseudonymize_gives_the_documented_hmac_token_and_keeps_nulls() -> None:
    out = pseudonymize(pa.array(EMAILS), KEY, column="email")
    assert out.type == pa.string()
    tokens = out.to_pylist()
    assert tokens[1] is None
    assert tokens[0] == tokens[3] == _expected_token("alice@example.com", KEY)
    assert tokens[0] != tokens[2]
    assert all(TOKEN.fullmatch(t) for t in tokens if t is not None)


def test_pseudonymize_is_deterministic_across_arrays_chunks_and_types() -> None:
    plain = pseudonymize(pa.array(EMAILS), KEY).to_pylist()
    chunked = pseudonymize(pa.chunked_array([EMAILS[:2], EMAILS[2:]]), KEY)
    assert chunked.to_pylist() == plain
    for type_ in (pa.large_string(), pa.string_view()):
        out = pseudonymize(pa.array(EMAILS, type_), KEY)
        assert (out.type, out.to_pylist()) == (type_, plain)
    dictionary = pseudonymize(pa.array(EMAILS).dictionary_encode(), KEY)
    assert pa.types.is_dictionary(dictionary.type)
    assert dictionary.to_pylist() == plain
    assert pseudonym("alice@example.com", KEY) == plain[0]


def test_pseudonymize_with_another_key_gives_other_tokens() -> None:
    assert pseudonym("alice@example.com", KEY) != pseudonym("alice@example.com", OTHER_KEY)


def test_pseudonymize_integers_gives_non_negative_integers_of_the_same_type() -> None:
    for type_ in (pa.int64(), pa.uint64()):
        out = pseudonymize(pa.array([42, None, 42, 7], type_), KEY)
        assert out.type == type_
        values = out.to_pylist()
        assert values[0] == values[2] != values[3]
        assert values[1] is None
        assert all(0 <= v < 2**63 for v in values if v is not None)
        assert values[0] not in (42, 7)


def test_pseudonymize_refuses_narrow_integers_whose_tokens_would_collide() -> None:
    with pytest.raises(PIIError, match=r"column 'customer_id' needs 64-bit integers \(int32"):
        pseudonymize(pa.array([1], pa.int32()), KEY, column="customer_id")


def test_pseudonymize_binary_gives_the_digest_and_refuses_floats() -> None:
    out = pseudonymize(pa.array([b"secret", None], pa.binary()), KEY)
    assert out.type == pa.binary()
    assert len(out[0].as_py()) == 32
    assert out[1].as_py() is None
    with pytest.raises(PIIError, match=r"column 'score' is double"):
        pseudonymize(pa.array([1.5]), KEY, column="score")


# -- encrypt ------------------------------------------------------------------------------------------


def test_encrypt_round_trips_and_is_deterministic(keyring: LocalKeyring) -> None:
    key = keyring.ensure("aisec-mask-encryption")
    values = pa.array(["alice@example.com", None, "", "ünïcødé ✓", "alice@example.com"])
    sealed = encrypt(values, key, column="email")
    assert sealed.type == pa.string()
    texts = sealed.to_pylist()
    assert texts[1] is None
    assert texts[0] == texts[4]
    assert all(t.startswith("enc:v1:") and "=" not in t for t in texts if t is not None)
    assert "alice" not in "".join(t for t in texts if t)
    assert decrypt_values(sealed, keyring, "aisec-mask-encryption", "email").to_pylist() == values.to_pylist()


def test_encrypt_keeps_large_and_dictionary_types(keyring: LocalKeyring) -> None:
    key = keyring.ensure("k")
    for values in (pa.array(["a", None], pa.large_string()), pa.array(["a", None, "a"]).dictionary_encode()):
        sealed = encrypt(values, key, column="c")
        assert sealed.type == values.type
        assert decrypt_values(sealed, keyring, "k", "c").to_pylist() == values.to_pylist()


def test_decrypt_after_rotation_uses_the_version_in_each_value(keyring: LocalKeyring) -> None:
    old = encrypt(pa.array(["before"]), keyring.ensure("k"), column="c")
    new = encrypt(pa.array(["after"]), keyring.rotate("k"), column="c")
    assert new[0].as_py().startswith("enc:v2:")
    mixed = pa.chunked_array([old, new])
    assert decrypt_values(mixed, keyring, "k", "c").to_pylist() == ["before", "after"]


def test_decrypt_with_the_wrong_key_fails_without_showing_the_value(keyring: LocalKeyring) -> None:
    sealed = encrypt(pa.array(["alice@example.com"]), keyring.ensure("right"), column="email")
    keyring.ensure("wrong")
    with pytest.raises(PIIError, match="cannot decrypt column 'email': wrong key or tampered value") as error:
        decrypt_values(sealed, keyring, "wrong", "email")
    _no_value_in(error, ["alice@example.com", sealed[0].as_py()])


def test_decrypt_of_a_tampered_value_fails(keyring: LocalKeyring) -> None:
    sealed = encrypt(pa.array(["alice@example.com"]), keyring.ensure("k"), column="email")[0].as_py()
    prefix, payload = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[-1] ^= 1
    tampered = prefix + ":" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for bad in (tampered, "alice@example.com", "enc:v1:!!!", sealed + "x"):
        with pytest.raises(PIIError, match="wrong key or tampered value") as error:
            decrypt_values(pa.array([bad]), keyring, "k", "email")
        _no_value_in(error, [bad, "alice@example.com"])


def test_a_value_encrypted_for_one_column_does_not_decrypt_in_another(keyring: LocalKeyring) -> None:
    sealed = encrypt(pa.array(["alice@example.com"]), keyring.ensure("k"), column="email")
    with pytest.raises(PIIError, match="cannot decrypt column 'backup_email'"):
        decrypt_values(sealed, keyring, "k", "backup_email")


def test_decrypt_with_a_destroyed_key_version_fails(keyring: LocalKeyring) -> None:
    sealed = encrypt(pa.array(["x"]), keyring.ensure("k"), column="c")
    keyring.destroy("k", 1)
    with pytest.raises(PIIError, match=r"cannot decrypt column 'c': key 'k' version 1 is not available"):
        decrypt_values(sealed, keyring, "k", "c")


def test_encrypt_refuses_non_string_columns() -> None:
    with pytest.raises(PIIError, match=r"encrypt needs a string column; column 'n' is int64"):
        encrypt(pa.array([1]), KEY, column="n")


# -- generalize ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("year", dt.date(1987, 1, 1)), ("month", dt.date(1987, 6, 1)), ("day", dt.date(1987, 6, 15))],
)
@pytest.mark.parametrize("type_", [pa.date32(), pa.date64()])
def test_generalize_truncates_dates_keeping_the_type(unit: str, expected: dt.date, type_: Any) -> None:
    out = generalize(pa.array([dt.date(1987, 6, 15), None], type_), to=unit)
    assert out.type == type_
    assert out.to_pylist() == [expected, None]


def test_generalize_truncates_timestamps_in_their_time_zone() -> None:
    type_ = pa.timestamp("us", "Europe/Paris")
    moment = dt.datetime(1987, 6, 15, 13, 45, 12, tzinfo=dt.UTC)
    values = pa.array([moment, None], type_)
    out = generalize(values, to="hour")
    assert out.type == type_
    assert out[0].as_py() == dt.datetime(1987, 6, 15, 13, 0, tzinfo=dt.UTC)
    year = generalize(values, to="year")[0].as_py()
    assert year == dt.datetime(1986, 12, 31, 23, 0, tzinfo=dt.UTC)  # midnight, 1 January, in Paris


@pytest.mark.parametrize("type_", [pa.int8(), pa.int32(), pa.int64(), pa.uint16()])
def test_generalize_floors_integers_to_the_bucket_keeping_the_type(type_: Any) -> None:
    signed = pa.types.is_signed_integer(type_)
    values = [-7, 7, -10, 0, None, 19] if signed else [7, 0, None, 19]
    out = generalize(pa.array(values, type_), bucket=10)
    assert out.type == type_
    expected = {-7: -10, 7: 0, -10: -10, 0: 0, 19: 10, None: None}
    assert out.to_pylist() == [expected[v] for v in values]


def test_generalize_floors_floats_to_the_bucket() -> None:
    out = generalize(pa.array([31.7, -0.5, None], pa.float32()), bucket=5)
    assert (out.type, out.to_pylist()) == (pa.float32(), [30.0, -5.0, None])


def test_generalize_keeps_a_postcode_prefix_and_the_length() -> None:
    out = generalize(pa.array(["75001", "SW1A 1AA", None, "AB"]), prefix=2)
    assert out.to_pylist() == ["75***", "SW******", None, "**"]


def test_generalize_with_missing_or_inapplicable_options_says_what_to_set() -> None:
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (pa.array([dt.date(2000, 1, 2)]), {}, r"column 'c' \(date32\[day\]\) needs `to: year\|month\|day`"),
        (pa.array([dt.date(2000, 1, 2)]), {"to": "hour"}, r"needs `to: year\|month\|day`"),
        (pa.array([dt.date(2000, 1, 2)]), {"to": "year", "bucket": 5}, r"`bucket` do not apply to a date"),
        (pa.array([1]), {}, r"column 'c' \(int64\) needs `bucket: <size>` \(a whole number\)"),
        (pa.array([1]), {"bucket": 2.5}, r"needs `bucket: <size>` \(a whole number\) > 0"),
        (pa.array([1.0]), {"bucket": 0}, r"column 'c' \(double\) needs `bucket: <size>` > 0"),
        (pa.array(["x"]), {}, r"string column 'c' needs `prefix: N`"),
        (
            pa.array(["x"]),
            {"to": "year"},
            r"`to` do not apply to a string column; set `prefix: N` .*, as `to` needs a date",
        ),
        (pa.array([True]), {"to": "year"}, r"generalize supports .* column 'c' is bool"),
        (pa.array([100], pa.int8()), {"bucket": 1000}, r"`bucket` is too large for int8"),
    ]
    for values, options, message in cases:
        with pytest.raises(PIIError, match=message):
            generalize(values, column="c", **options)


def test_a_bucket_that_overflows_raises_a_pii_error_without_the_value() -> None:
    values = pa.array([-(2**63) + 1], pa.int64())
    with pytest.raises(PIIError, match="a value is out of range") as error:
        apply_strategy(values, MaskRule("generalize", {"bucket": 10}), column="n")
    _no_value_in(error, [str(-(2**63) + 1)])


# -- drop, defaults, options ----------------------------------------------------------------------------


def test_drop_returns_the_marker() -> None:
    assert drop(pa.array([1])) is DROP
    assert apply_strategy(pa.array([1, None]), MaskRule("drop"), column="c").values is DROP


@pytest.mark.parametrize(
    ("entity", "strategy", "options"),
    [
        ("EMAIL_ADDRESS", "pseudonymize", {}),
        ("PHONE_NUMBER", "pseudonymize", {}),
        ("CREDIT_CARD", "pseudonymize", {}),
        ("IBAN_CODE", "pseudonymize", {}),
        ("US_SSN", "pseudonymize", {}),
        ("IP_ADDRESS", "pseudonymize", {}),
        ("PERSON", "replace", {}),
        ("LOCATION", "replace", {}),
        ("NRP", "replace", {}),
        ("DATE_TIME", "generalize", {"to": "year"}),
        ("free_text", "free_text", {}),
        ("SOMETHING_NEW", "replace", {}),
        ("UUID", "pseudonymize", {}),
        ("MAC_ADDRESS", "pseudonymize", {}),
        ("CUSTOMER_NUMBER", "pseudonymize", {}),
        ("EMPLOYEE_ID", "pseudonymize", {}),
        ("URL", "replace", {}),
    ],
)
def test_default_strategy_per_entity(entity: str, strategy: str, options: dict[str, Any]) -> None:
    assert default_strategy(entity) == MaskRule(strategy, options)


def test_unknown_strategies_and_misspelt_options_are_refused() -> None:
    with pytest.raises(PIIError, match=r"column 'c': unknown masking strategy 'hash'"):
        check_options("hash", {}, "c")
    with pytest.raises(PIIError, match=r"unknown option\(s\) keeplast for strategy partial"):
        check_options("partial", {"keeplast": 2}, "c")


def test_apply_strategy_counts_the_non_null_values_masked_per_entity() -> None:
    masked = apply_strategy(pa.array(EMAILS), MaskRule("replace"), column="email", entity="EMAIL_ADDRESS")
    assert masked.counts == {"EMAIL_ADDRESS": 3}


def test_arrow_type_errors_become_pii_errors_naming_the_column() -> None:
    with pytest.raises(PIIError, match=r"column 'flag'"):
        apply_strategy(pa.array([True]), MaskRule("replace", {"value": [1, 2]}), column="flag")


# -- free text ----------------------------------------------------------------------------------------


def test_free_text_replaces_entities_in_place_keeping_the_rest() -> None:
    texts = pa.array(["Hi, I am Alice, mail me at alice@example.com please", None, "nothing here", ""])
    masked = mask_free_text(texts, email_finder, column="body")
    assert masked.values.to_pylist() == [
        "Hi, I am <PERSON>, mail me at <EMAIL_ADDRESS> please",
        None,
        "nothing here",
        "",
    ]
    assert masked.counts == {"PERSON": 1, "EMAIL_ADDRESS": 1}


def test_free_text_calls_the_finder_once_with_distinct_texts_and_counts_every_row() -> None:
    calls: list[list[str]] = []

    def finder(texts: Sequence[str]) -> list[list[Span]]:
        calls.append(list(texts))
        return email_finder(texts)

    texts = pa.chunked_array([["Bob: bob@x.org", None, "Bob: bob@x.org"], ["hello", "Bob: bob@x.org", ""]])
    masked = mask_free_text(texts, finder, column="body")
    assert len(calls) == 1
    assert sorted(calls[0]) == ["Bob: bob@x.org", "hello"]
    assert masked.counts == {"PERSON": 3, "EMAIL_ADDRESS": 3}
    assert masked.values.type == pa.string()
    assert masked.values.to_pylist()[0] == "<PERSON>: <EMAIL_ADDRESS>"


def test_free_text_entities_option_restricts_what_is_replaced() -> None:
    masked = apply_strategy(
        pa.array(["Alice: alice@example.com"]),
        MaskRule("free_text", {"entities": ["EMAIL_ADDRESS"]}),
        column="body",
        find_spans=email_finder,
    )
    assert masked.values.to_pylist() == ["Alice: <EMAIL_ADDRESS>"]
    assert masked.counts == {"EMAIL_ADDRESS": 1}


def test_free_text_merges_overlapping_spans_under_the_highest_score() -> None:
    def finder(texts: Sequence[str]) -> list[list[Span]]:
        return [[Span("PERSON", 0, 9, 0.5), Span("EMAIL_ADDRESS", 6, 17, 0.9), Span("URL", 12, 17, 0.4)]]

    masked = mask_free_text(pa.array(["John Doe@acme.com rest"]), finder)
    assert masked.values.to_pylist() == ["<EMAIL_ADDRESS> rest"]
    assert masked.counts == {"EMAIL_ADDRESS": 1}


def test_free_text_keeps_large_and_dictionary_types() -> None:
    for values in (
        pa.array(["Bob", None], pa.large_string()),
        pa.array(["Bob", None, "Bob"]).dictionary_encode(),
    ):
        masked = mask_free_text(values, email_finder)
        assert masked.values.type == values.type
        assert masked.values.to_pylist()[0] == "<PERSON>"


def test_free_text_refuses_a_finder_that_returns_bad_spans() -> None:
    def outside(texts: Sequence[str]) -> list[list[Span]]:
        return [[Span("PERSON", 0, 500, 1.0)] for _ in texts]

    def too_few(texts: Sequence[str]) -> list[list[Span]]:
        return []

    for finder, message in ((outside, "span outside the text"), (too_few, "one result per text")):
        with pytest.raises(PIIError, match=message) as error:
            mask_free_text(pa.array(["Alice Smith"]), finder, column="body")
        _no_value_in(error, ["Alice Smith"])


def test_free_text_without_a_finder_or_on_numbers_is_refused() -> None:
    with pytest.raises(PIIError, match="column 'body' is free text: masking it needs a span finder"):
        apply_strategy(pa.array(["x"]), MaskRule("free_text"), column="body")
    with pytest.raises(PIIError, match="free_text needs a string column"):
        mask_free_text(pa.array([1]), email_finder, column="n")


# -- fuzzing ------------------------------------------------------------------------------------------

TEXTS = st.lists(
    st.one_of(st.none(), st.text(), st.text(min_size=300, max_size=3000)),
    max_size=25,
).filter(lambda vs: "<EMAIL_ADDRESS>" not in vs)
TEXT_TYPES = st.sampled_from([pa.string(), pa.large_string(), pa.string_view()])


def _assert_shape_kept(before: Any, after: Any) -> None:
    assert after.type == before.type
    assert len(after) == len(before)


def _assert_nothing_survives(originals: list[str | None], masked: list[Any]) -> None:
    for original, out in zip(originals, masked, strict=True):
        if original is None or len(original) < 4:
            continue
        assert out != original
        # Shorter values could appear in a token's hex or base64 by chance.
        if len(original) >= 12 and isinstance(out, str):
            assert original not in out


@FUZZ
@given(TEXTS, TEXT_TYPES, st.sampled_from(["redact", "replace", "pseudonymize", "encrypt"]))
def test_fuzz_hiding_strategies_leave_no_value_verbatim(
    texts: list[str | None], type_: Any, name: str
) -> None:
    values = pa.array(texts, type_)
    masked = apply_strategy(values, MaskRule(name), column="c", entity="EMAIL_ADDRESS", key=KEY).values
    _assert_shape_kept(values, masked)
    after = masked.to_pylist()
    if name != "redact":
        assert [v is None for v in after] == [v is None for v in texts]
    _assert_nothing_survives(texts, after)


@FUZZ
@given(TEXTS, TEXT_TYPES)
def test_fuzz_encryption_round_trips_any_text(texts: list[str | None], type_: Any) -> None:
    keyring = _FuzzKeyring()
    values = pa.array(texts, type_)
    sealed = encrypt(values, KEY, column="c")
    _assert_shape_kept(values, sealed)
    opened = decrypt_values(sealed, keyring, KEY.name, "c")  # type: ignore[arg-type]
    assert opened.to_pylist() == texts


class _FuzzKeyring:
    """The keyring ``decrypt_values`` needs, in memory (Hypothesis and tmp_path do not mix)."""

    def get(self, name: str, version: int | None = None) -> KeyVersion:
        assert (name, version) == (KEY.name, KEY.version)
        return KEY


@FUZZ
@given(TEXTS, TEXT_TYPES, st.integers(0, 6), st.sampled_from(["partial", "generalize"]))
def test_fuzz_character_masks_keep_each_length(
    texts: list[str | None], type_: Any, keep: int, name: str
) -> None:
    values = pa.array(texts, type_)
    option = {"keep_last": keep} if name == "partial" else {"prefix": keep}
    masked = apply_strategy(values, MaskRule(name, option), column="c").values
    _assert_shape_kept(values, masked)
    for original, out in zip(texts, masked.to_pylist(), strict=True):
        assert (out is None) == (original is None)
        if original is not None:
            assert len(out) == len(original)
            if len(original) <= keep:
                assert out == "*" * len(original)


@FUZZ
@given(TEXTS, TEXT_TYPES)
def test_fuzz_free_text_replaces_exactly_what_the_finder_found(texts: list[str | None], type_: Any) -> None:
    digits = re.compile(r"[0-9]{3,}")

    def finder(batch: Sequence[str]) -> list[list[Span]]:
        return [[Span("NUMBER", m.start(), m.end(), 1.0) for m in digits.finditer(t)] for t in batch]

    values = pa.array(texts, type_)
    masked = mask_free_text(values, finder, column="c")
    _assert_shape_kept(values, masked.values)
    expected = [None if t is None else digits.sub("<NUMBER>", t) for t in texts]
    assert masked.values.to_pylist() == expected
    assert masked.counts.get("NUMBER", 0) == sum(len(digits.findall(t)) for t in texts if t)


@FUZZ
@given(st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), max_size=25), st.integers(1, 10**6))
def test_fuzz_integers_keep_their_type(ints: list[int | None], bucket: int) -> None:
    values = pa.array(ints, pa.int64())
    tokens = pseudonymize(values, KEY)
    _assert_shape_kept(values, tokens)
    assert all(t is None or t >= 0 for t in tokens.to_pylist())
    floored = generalize(values, bucket=bucket).to_pylist()
    for original, out in zip(ints, floored, strict=True):
        assert (out is None) == (original is None)
        if original is not None:
            assert out == original // bucket * bucket


@FUZZ
@given(
    st.lists(st.one_of(st.none(), st.dates()), max_size=25),
    st.sampled_from(["year", "month", "day"]),
    st.sampled_from([pa.date32(), pa.date64()]),
)
def test_fuzz_dates_generalize_to_the_start_of_their_period(dates: list[Any], unit: str, type_: Any) -> None:
    values = pa.array(dates, type_)
    out = generalize(values, to=unit)
    _assert_shape_kept(values, out)
    for original, truncated in zip(dates, out.to_pylist(), strict=True):
        if original is None:
            assert truncated is None
            continue
        expected = {
            "year": original.replace(month=1, day=1),
            "month": original.replace(day=1),
            "day": original,
        }[unit]
        assert truncated == expected


@pytest.mark.parametrize("name", ["redact", "replace", "partial", "pseudonymize", "encrypt", "free_text"])
def test_empty_columns_and_columns_without_chunks_are_masked_to_empty_columns(name: str) -> None:
    for values in (pa.array([], pa.string()), pa.chunked_array([], pa.string())):
        masked = apply_strategy(values, MaskRule(name), column="c", key=KEY, find_spans=email_finder)
        _assert_shape_kept(values, masked.values)
        assert type(masked.values) is type(values)


def test_a_column_of_the_null_type_has_nothing_to_mask() -> None:
    values = pa.nulls(3)
    for name in ("replace", "pseudonymize", "generalize"):
        assert apply_strategy(values, MaskRule(name), column="c", key=KEY).values is values

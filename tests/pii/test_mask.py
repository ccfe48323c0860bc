"""Masking plans and the Masker: planned columns masked, others untouched, types kept, audit counts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_aisec.catalog.loader import load_catalog
from airflow_aisec.catalog.models import Dataset
from airflow_aisec.crypto.keyring import KeyKind, KeyVersion, LocalKeyring
from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.mask import ColumnPlan, Masker, plan_from_catalog, plan_from_findings
from airflow_aisec.pii.strategies import decrypt_values
from airflow_aisec.pii.types import Span

EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json")


def find_spans(texts: Sequence[str]) -> list[list[Span]]:
    """A fake span finder: e-mail addresses, phone numbers and two first names."""
    patterns = {
        "EMAIL_ADDRESS": r"\S+@\S+\.\w+",
        "PHONE_NUMBER": r"\+?[0-9][0-9 ]{7,}[0-9]",
        "PERSON": r"\b(Alice|Bob)( [A-Z][a-z]+)?\b",
    }
    return [
        [
            Span(entity, m.start(), m.end(), 0.9)
            for entity, p in patterns.items()
            for m in re.finditer(p, text)
        ]
        for text in texts
    ]


def customers() -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "customer_id": pa.array([1, 2, 3], pa.int64()),
            "full_name": ["Alice Martin", "Bob Stone", None],
            "email": ["alice@example.com", "bob@example.org", "alice@example.com"],
            "phone": ["+33 6 12 34 56 78", None, "+44 20 7946 0958"],
            "birth_date": pa.array([dt.date(1987, 6, 15), dt.date(1990, 2, 3), None]),
            "created_at": pa.array([dt.datetime(2024, 1, 2, 3, 4)] * 3, pa.timestamp("us")),
        }
    )


def customers_dataset(**columns: Any) -> Dataset:
    return Dataset(
        uri="/lake/customers",
        format="parquet",
        columns={
            "customer_id": {},
            "full_name": {"pii": "PERSON"},
            "email": {"pii": "EMAIL_ADDRESS"},
            "phone": {"pii": "PHONE_NUMBER"},
            "birth_date": {"pii": "DATE_TIME"},
            "created_at": {},
            **columns,
        },
    )


# -- plans --------------------------------------------------------------------------------------------


def test_plan_from_the_example_catalog_uses_masks_and_entity_defaults() -> None:
    catalog = load_catalog(EXAMPLE_CATALOG, {"lake": "/lake"})
    assert plan_from_catalog(catalog.dataset("customers")) == [
        ColumnPlan("full_name", "PERSON", "replace", {}),
        ColumnPlan("email", "EMAIL_ADDRESS", "pseudonymize", {}),
        ColumnPlan("phone", "PHONE_NUMBER", "pseudonymize", {}),
        ColumnPlan("birth_date", "DATE_TIME", "generalize", {"to": "year"}),
    ]
    assert plan_from_catalog(catalog.dataset("support_tickets")) == [
        ColumnPlan("body", "free_text", "free_text", {})
    ]
    assert plan_from_catalog(catalog.dataset("chargebacks")) == []


def test_plan_from_catalog_keeps_the_options_of_a_mask() -> None:
    dataset = customers_dataset(
        phone={"pii": "PHONE_NUMBER", "mask": {"strategy": "partial", "keep_last": 2}}
    )
    plans = {p.column: p for p in plan_from_catalog(dataset)}
    assert plans["phone"] == ColumnPlan("phone", "PHONE_NUMBER", "partial", {"keep_last": 2})


def test_plan_from_findings_keeps_confident_findings_only() -> None:
    class Finding:
        entity = "PERSON"
        confidence = 0.7

    plans = plan_from_findings(
        {"email": ("EMAIL_ADDRESS", 0.95), "notes": ("PERSON", 0.3), "id": (None, 1.0), "name": Finding()},
        min_confidence=0.5,
    )
    assert plans == [
        ColumnPlan("email", "EMAIL_ADDRESS", "pseudonymize", {}),
        ColumnPlan("name", "PERSON", "replace", {}),
    ]


# -- the masker ---------------------------------------------------------------------------------------


def test_masker_masks_planned_columns_and_keeps_every_type(keyring: LocalKeyring) -> None:
    batch = customers()
    masker = Masker(plan_from_catalog(customers_dataset()), keyring)
    out = masker.mask_batch(batch)
    assert out.schema == batch.schema
    assert out.column("customer_id").equals(batch.column("customer_id"))
    assert out.column("created_at").equals(batch.column("created_at"))
    assert out.column("full_name").to_pylist() == ["<PERSON>", "<PERSON>", None]
    assert out.column("birth_date").to_pylist() == [dt.date(1987, 1, 1), dt.date(1990, 1, 1), None]
    emails = out.column("email").to_pylist()
    assert emails[0] == emails[2] != emails[1]
    assert out.column("phone").null_count == 1


def test_masker_counts_values_masked_per_column_and_entity_over_batches(keyring: LocalKeyring) -> None:
    masker = Masker(plan_from_catalog(customers_dataset()), keyring)
    masker.mask_batch(customers())
    masker.mask_batch(customers())
    assert masker.counts == {
        "full_name": {"PERSON": 4},
        "email": {"EMAIL_ADDRESS": 6},
        "phone": {"PHONE_NUMBER": 4},
        "birth_date": {"DATE_TIME": 4},
    }


def test_dropped_columns_leave_the_output_and_its_schema(keyring: LocalKeyring) -> None:
    masker = Masker([ColumnPlan("phone", "PHONE_NUMBER", "drop")], keyring)
    batch = customers()
    assert masker.output_schema(batch.schema).names == [n for n in batch.schema.names if n != "phone"]
    out = masker.mask_batch(batch)
    assert "phone" not in out.schema.names
    assert out.num_rows == batch.num_rows
    assert masker.counts == {"phone": {"PHONE_NUMBER": 2}}


def test_schema_metadata_is_kept_and_redacted_fields_become_nullable(keyring: LocalKeyring) -> None:
    schema = pa.schema([pa.field("ssn", pa.string(), nullable=False)], metadata={"owner": "crm"})
    batch = pa.RecordBatch.from_pydict({"ssn": ["123-45-6789"]}, schema=schema)
    out = Masker([ColumnPlan("ssn", "US_SSN", "redact")], keyring).mask_batch(batch)
    assert out.schema.metadata == {b"owner": b"crm"}
    assert out.schema.field("ssn").type == pa.string()
    assert out.schema.field("ssn").nullable
    assert out.column("ssn").to_pylist() == [None]


def test_a_planned_column_missing_from_the_batch_is_an_error(keyring: LocalKeyring) -> None:
    masker = Masker([ColumnPlan("iban", "IBAN_CODE", "pseudonymize")], keyring)
    with pytest.raises(PIIError, match=r"column\(s\) to mask not in the data: iban"):
        masker.mask_batch(customers())


def test_a_strategy_unfit_for_the_column_type_fails_on_the_schema(keyring: LocalKeyring) -> None:
    masker = Masker([ColumnPlan("customer_id", "ID", "encrypt")], keyring)
    with pytest.raises(PIIError, match=r"encrypt needs a string column; column 'customer_id' is int64"):
        masker.output_schema(customers().schema)


def test_bad_plans_are_refused_when_the_masker_is_made(keyring: LocalKeyring) -> None:
    with pytest.raises(PIIError, match="column 'email' is planned twice"):
        Masker([ColumnPlan("email", None, "redact"), ColumnPlan("email", None, "drop")], keyring)
    with pytest.raises(PIIError, match="column 'email': unknown masking strategy 'hash'"):
        Masker([ColumnPlan("email", None, "hash")], keyring)
    with pytest.raises(PIIError, match="column 'body' is free text: masking it needs a span finder"):
        Masker([ColumnPlan("body", "free_text", "free_text")], keyring)
    with pytest.raises(PIIError, match="`key` must name a keyring key"):
        Masker([ColumnPlan("email", None, "pseudonymize", {"key": ""})], keyring)


class CountingKeyring(LocalKeyring):
    """A keyring that counts how often keys are looked up."""

    ensured: int = 0

    def ensure(self, name: str, kind: KeyKind = "symmetric") -> KeyVersion:
        self.ensured += 1
        return super().ensure(name, kind)


def test_keys_are_read_once_per_name_when_the_masker_is_made(tmp_path: Path) -> None:
    keyring = CountingKeyring(tmp_path / "keyring.json")
    plans = [
        ColumnPlan("email", "EMAIL_ADDRESS", "pseudonymize"),
        ColumnPlan("phone", "PHONE_NUMBER", "pseudonymize"),
        ColumnPlan("full_name", "PERSON", "encrypt"),
    ]
    masker = Masker(plans, keyring)
    assert keyring.ensured == 2
    (tmp_path / "keyring.json").unlink()  # masking batches no longer reads the keyring
    masker.mask_batch(customers())
    assert keyring.ensured == 2


def test_pseudonyms_are_stable_across_maskers_and_tables_so_joins_work(keyring: LocalKeyring) -> None:
    plan = [ColumnPlan("email", "EMAIL_ADDRESS", "pseudonymize")]
    people = pa.table({"email": ["alice@example.com", "bob@example.org"], "name": ["A", "B"]})
    orders = pa.table({"email": ["bob@example.org", "alice@example.com", "bob@example.org"], "n": [1, 2, 3]})
    masked_people = Masker(plan, keyring).mask_table(people)
    masked_orders = Masker(plan, LocalKeyring(keyring.path)).mask_table(orders)
    joined = masked_orders.join(masked_people, "email").sort_by("n")
    assert joined.column("name").to_pylist() == ["B", "A", "B"]
    other = Masker([ColumnPlan("email", None, "pseudonymize", {"key": "another"})], keyring).mask_table(
        people
    )
    assert set(other.column("email").to_pylist()).isdisjoint(masked_people.column("email").to_pylist())


def test_encrypted_columns_decrypt_with_the_default_key(keyring: LocalKeyring) -> None:
    masker = Masker([ColumnPlan("email", "EMAIL_ADDRESS", "encrypt")], keyring)
    out = masker.mask_batch(customers())
    assert out.column("email").to_pylist()[0].startswith("enc:v1:")
    opened = decrypt_values(out.column("email"), keyring, "aisec-mask-encryption", "email")
    assert opened.to_pylist() == customers().column("email").to_pylist()


def test_free_text_is_masked_in_place_with_one_finder_call_per_table(keyring: LocalKeyring) -> None:
    calls: list[int] = []

    def finder(texts: Sequence[str]) -> list[list[Span]]:
        calls.append(len(texts))
        return find_spans(texts)

    body = "Hi, Alice Martin here, call +33 6 12 34 56 78 or mail alice@example.com"
    table = pa.Table.from_batches(
        [pa.record_batch({"body": [body, None]}), pa.record_batch({"body": [body, "thanks Bob"]})]
    )
    masker = Masker([ColumnPlan("body", "free_text", "free_text")], keyring, find_spans=finder)
    out = masker.mask_table(table)
    assert calls == [2]
    assert out.column("body").to_pylist() == [
        "Hi, <PERSON> here, call <PHONE_NUMBER> or mail <EMAIL_ADDRESS>",
        None,
        "Hi, <PERSON> here, call <PHONE_NUMBER> or mail <EMAIL_ADDRESS>",
        "thanks <PERSON>",
    ]
    assert masker.counts == {"body": {"PERSON": 3, "PHONE_NUMBER": 2, "EMAIL_ADDRESS": 2}}


def test_no_detected_value_is_left_verbatim_with_default_strategies(keyring: LocalKeyring) -> None:
    batch = customers()
    body = "Alice Martin (alice@example.com, +33 6 12 34 56 78) wrote about Bob Stone"
    batch = batch.append_column("notes", pa.array([body, "call +44 20 7946 0958", None]))
    dataset = customers_dataset(notes={"pii": "free_text"})
    out = Masker(plan_from_catalog(dataset), keyring, find_spans=find_spans).mask_batch(batch)
    text = str(out.to_pydict()) + str(out)
    originals = [
        "Alice Martin",
        "Bob Stone",
        "alice@example.com",
        "bob@example.org",
        "+33 6 12 34 56 78",
        "+44 20 7946 0958",
        "1987-06-15",
        "1990-02-03",
        "datetime.date(1987, 6, 15)",
        "datetime.date(1990, 2, 3)",
    ]
    for original in originals:
        assert original not in text
    assert "wrote about" in text  # free text keeps what is not PII

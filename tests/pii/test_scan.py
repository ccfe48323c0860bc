"""Column classification: values decide, names help, samples cover the whole dataset, nothing leaks."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.catalog import load_catalog
from airflow_aisec.catalog.models import Column, Dataset
from airflow_aisec.exceptions import PIIError
from airflow_aisec.io import Location
from airflow_aisec.pii.engine import CustomRecognizerSpec, PIIEngine, get_engine
from airflow_aisec.pii.sampling import Reservoir
from airflow_aisec.pii.scan import (
    ColumnFinding,
    as_json,
    scan_batches,
    scan_dataset,
    undeclared,
)
from airflow_aisec.pii.types import FREE_TEXT
from airflow_aisec.samples import SampleLake

ROOT = Path(__file__).resolve().parents[2]
KNOWN_EMAIL = "leak.canary.4711@example.com"


def luhn_number(rng: random.Random, prefix: str = "4", length: int = 16) -> str:
    """A random card number with a valid Luhn check digit."""
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, char in enumerate(reversed(body)):
        digit = int(char)
        if i % 2 == 0:  # doubled: every second digit from the right, counting the check digit as first
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


def synthetic_rows(count: int = 300, seed: int = 5) -> list[dict[str, Any]]:
    lake = SampleLake(customers=count, seed=seed)
    tickets = [row["body"] for row in lake.rows("support_tickets")]
    rng = random.Random(seed)
    rows = []
    for i, customer in enumerate(lake.customers):
        rows.append(
            {
                "id": 10_000 + i,
                "col_7": customer.email if i % 7 else None,  # nulls mixed in
                "phone": customer.phone,
                "phone_int": int(f"{rng.choice((212, 312, 415, 617))}555{rng.randint(100, 199):04d}"),
                "card": luhn_number(rng),
                "full_name": customer.full_name,
                "notes": tickets[i % len(tickets)],
                "created_at": customer.created_at,
                "birth_date": customer.birth_date,
                "amount": round(rng.uniform(5, 500), 2),
                "email": rng.randint(1, 10**6),  # named like PII, holds counters
                "status": rng.choice(("open", "closed", "pending")),
                "active": rng.random() < 0.5,
            }
        )
    return rows


@pytest.fixture(scope="module")
def synthetic_findings(ner_engine: PIIEngine) -> dict[str, ColumnFinding]:
    table = pa.Table.from_pylist(synthetic_rows())
    return scan_batches(table.to_batches(max_chunksize=64), ner_engine)


@pytest.mark.parametrize(
    ("column", "entity"),
    [
        ("col_7", "EMAIL_ADDRESS"),
        ("phone", "PHONE_NUMBER"),
        ("phone_int", "PHONE_NUMBER"),
        ("card", "CREDIT_CARD"),
        ("full_name", "PERSON"),
        ("notes", FREE_TEXT),
        ("birth_date", "DATE_TIME"),
        ("created_at", None),
        ("amount", None),
        ("email", None),
        ("id", None),
        ("status", None),
        ("active", None),
    ],
)
def test_synthetic_columns(
    synthetic_findings: dict[str, ColumnFinding], column: str, entity: str | None
) -> None:
    finding = synthetic_findings[column]
    assert finding.column == column
    assert finding.entity == entity
    if entity is None:
        assert finding.confidence == 0.0
    else:
        assert 0.5 <= finding.confidence <= 1.0
        assert 0 < finding.matches <= finding.sampled


def test_finding_counts(synthetic_findings: dict[str, ColumnFinding]) -> None:
    assert synthetic_findings["col_7"].sampled == 300 - 43  # nulls are not sampled
    assert synthetic_findings["card"].matches == synthetic_findings["card"].sampled == 300
    assert synthetic_findings["birth_date"].confidence >= 0.9
    assert list(synthetic_findings)[:3] == ["id", "col_7", "phone"]  # the table's order


def test_patterns_mode_decides_names_by_column_name(pattern_engine: PIIEngine) -> None:
    rows = synthetic_rows(120)
    table = pa.Table.from_pylist(
        [{"first_name": r["full_name"].split()[0], "label": r["full_name"]} for r in rows]
    )
    findings = scan_batches(table.to_batches(), pattern_engine)
    # Without NER the values are silent; the name decides with a modest confidence, the anonymous one is left.
    assert findings["first_name"].entity == "PERSON"
    assert 0.5 <= findings["first_name"].confidence < 0.7
    assert findings["label"].entity is None


def test_nested_jsonl_fields_are_reported_by_path(ner_engine: PIIEngine, tmp_path: Path) -> None:
    lake = SampleLake(customers=80, seed=11)
    folder = tmp_path / "people"
    folder.mkdir()
    with open(folder / "part-0.jsonl", "w", encoding="utf-8") as out:
        for i, customer in enumerate(lake.customers):
            record = {
                "id": i,
                "contact": {"email": customer.email, "phones": [customer.phone, None]},
                "address": {
                    "street": f"{i + 1} Maple Street",
                    "city": ("Springfield", "Riverton", "Paris")[i % 3],
                },
                "meta": {"source": "web", "seen_at": "2024-05-01T10:00:00"},
            }
            out.write(json.dumps(record) + "\n")
    findings = scan_dataset(Location.parse(str(folder)), "jsonl", ner_engine)
    assert findings["contact.email"].entity == "EMAIL_ADDRESS"
    assert findings["contact.phones[]"].entity == "PHONE_NUMBER"
    assert findings["address.city"].entity == "LOCATION"
    assert findings["address.street"].entity == "LOCATION"
    assert findings["meta.source"].entity is None
    assert findings["meta.seen_at"].entity is None
    assert "contact" not in findings  # structs are reported by their fields


def test_sampling_covers_the_whole_dataset(pattern_engine: PIIEngine) -> None:
    # 40 batches; `late` is empty until the last one, `contact` is PII only in the last 70 % of rows: a scan
    # of the first rows would miss both.
    rng = random.Random(3)
    batches = []
    for b in range(40):
        rows = 250
        late = [f"user{b}.{i}@example.com" for i in range(rows)] if b == 39 else [None] * rows
        contact = [f"c{b}.{i}@example.org" if b >= 12 else f"n/a-{rng.randint(0, 9)}" for i in range(rows)]
        batches.append(pa.RecordBatch.from_pydict({"late": pa.array(late, pa.string()), "contact": contact}))
    findings = scan_batches(batches, pattern_engine, sample=200)
    assert findings["late"].entity == "EMAIL_ADDRESS"
    assert findings["contact"].entity == "EMAIL_ADDRESS"
    assert 0.6 <= findings["contact"].matches / findings["contact"].sampled <= 0.8
    assert findings["contact"].sampled == 200


def test_reservoir_is_uniform_and_bounded() -> None:
    reservoir = Reservoir(500, random.Random(1))
    for start in range(0, 100_000, 1000):
        reservoir.offer(pa.array(range(start, start + 1000)))
    values = reservoir.values
    assert len(values) == 500 and len(set(values)) == 500
    assert reservoir.seen == 100_000
    # Each tenth of the stream holds about a tenth of the sample.
    tenths = [sum(1 for v in values if k * 10_000 <= v < (k + 1) * 10_000) for k in range(10)]
    assert all(25 <= count <= 80 for count in tenths), tenths


def test_same_seed_same_findings(pattern_engine: PIIEngine) -> None:
    table = pa.Table.from_pylist(synthetic_rows(200))
    first = scan_batches(table.to_batches(max_chunksize=30), pattern_engine, sample=50, seed=9)
    again = scan_batches(table.to_batches(max_chunksize=70), pattern_engine, sample=50, seed=9)
    assert first == again


def test_custom_recognizer_classifies_a_column() -> None:
    spec = CustomRecognizerSpec.from_mapping(
        {
            "entity": "CUSTOMER_NUMBER",
            "patterns": [{"name": "cust", "regex": r"\bC\d{4}\b", "score": 0.6}],
            "context": ["customer"],
        }
    )
    engine = get_engine("patterns", recognizers=[spec])
    batch = pa.RecordBatch.from_pydict(
        {"ref": [f"C{i:04d}" for i in range(1, 200)], "number": list(range(1, 200))}
    )
    findings = scan_batches([batch], engine)
    assert findings["ref"].entity == "CUSTOMER_NUMBER"
    assert findings["number"].entity is None


def test_sample_lake_matches_the_catalog(ner_engine: PIIEngine, sample_lake_dir: Path) -> None:
    catalog = load_catalog(str(ROOT / "dags" / "catalog.yaml"), {"lake": str(sample_lake_dir)})
    customers = catalog.dataset("customers")
    findings = scan_dataset(Location.parse(customers.uri), customers.format, ner_engine)
    assert {c: f.entity for c, f in findings.items()} == {
        "customer_id": None,
        "full_name": "PERSON",
        "email": "EMAIL_ADDRESS",
        "phone": "PHONE_NUMBER",
        "birth_date": "DATE_TIME",
        "created_at": None,
    }
    assert undeclared(findings, customers) == []
    tickets = catalog.dataset("support_tickets")
    ticket_findings = scan_dataset(Location.parse(tickets.uri), tickets.format, ner_engine)
    assert ticket_findings["body"].entity == FREE_TEXT
    assert undeclared(ticket_findings, tickets) == []


def test_undeclared_reports_new_and_undeclared_pii() -> None:
    dataset = Dataset(
        uri="/lake/people",
        format="jsonl",
        columns={
            "email": Column(pii="EMAIL_ADDRESS"),
            "phone": Column(),  # present but not declared as PII
            "address": Column(pii="LOCATION"),
        },
    )
    findings = {
        "email": ColumnFinding("email", "EMAIL_ADDRESS", 0.99, 100, 99),
        "phone": ColumnFinding("phone", "PHONE_NUMBER", 0.9, 100, 90),
        "address.city": ColumnFinding("address.city", "LOCATION", 0.8, 100, 80),
        "backup_email": ColumnFinding("backup_email", "EMAIL_ADDRESS", 0.95, 100, 95),
        "comment": ColumnFinding("comment", FREE_TEXT, 0.4, 100, 20),  # below min_confidence
        "status": ColumnFinding("status", None, 0.0, 100, 0),
    }
    assert [f.column for f in undeclared(findings, dataset)] == ["phone", "backup_email"]
    assert [f.column for f in undeclared(findings, dataset, min_confidence=0.3)] == [
        "phone",
        "backup_email",
        "comment",
    ]


def test_a_column_reviewed_as_not_pii_is_declared_but_vouches_for_no_nested_field() -> None:
    dataset = Dataset(
        uri="/lake/events",
        format="jsonl",
        columns={"session_id": Column(pii="none"), "payload": Column(pii="none"), "user_id": Column()},
    )
    findings = {
        "session_id": ColumnFinding("session_id", "UUID", 1.0, 100, 100),
        "payload.email": ColumnFinding("payload.email", "EMAIL_ADDRESS", 0.95, 100, 95),
        "user_id": ColumnFinding("user_id", "UUID", 1.0, 100, 100),
    }
    assert [f.column for f in undeclared(findings, dataset)] == ["payload.email", "user_id"]


def test_a_review_does_not_vouch_for_e_mails_or_cards_found_in_the_column() -> None:
    # `pii: none` says a person looked; e-mails or card numbers in that column say they looked at other data.
    dataset = Dataset(
        uri="/lake/events",
        format="parquet",
        columns={"ref": Column(pii="none"), "code": Column(pii="none"), "token": Column(pii="none")},
    )
    findings = {
        "ref": ColumnFinding("ref", "EMAIL_ADDRESS", 0.9, 100, 90),
        "code": ColumnFinding("code", "CREDIT_CARD", 1.0, 100, 100),
        "token": ColumnFinding("token", "UUID", 1.0, 100, 100),
    }
    assert [f.column for f in undeclared(findings, dataset)] == ["ref", "code"]


def test_as_json_shape(synthetic_findings: dict[str, ColumnFinding]) -> None:
    document = as_json(synthetic_findings)
    assert set(document) == {"columns"}
    assert document["columns"]["col_7"] == {"entity": "EMAIL_ADDRESS", "confidence": 1.0}
    for entry in document["columns"].values():
        assert set(entry) == {"entity", "confidence"} and isinstance(entry["confidence"], float)
    json.dumps(document)


def test_long_values_and_types_changing_between_files(pattern_engine: PIIEngine) -> None:
    long_text = "word " * 40_000 + KNOWN_EMAIL + " and more words"
    first = pa.RecordBatch.from_pydict({"doc": [long_text, "short", None], "code": [1, 2, 3]})
    second = pa.RecordBatch.from_pydict({"doc": ["x"], "code": ["A-1"], "extra": [KNOWN_EMAIL]})
    findings = scan_batches([first, second], pattern_engine)
    assert findings.keys() == {"doc", "code", "extra"}
    assert findings["code"].sampled == 4  # ints and strings, judged together as text
    assert findings["extra"].entity == "EMAIL_ADDRESS"  # a column that appears in a later file


def test_invalid_arguments(pattern_engine: PIIEngine) -> None:
    with pytest.raises(PIIError, match="sample must be a positive"):
        scan_batches([], pattern_engine, sample=0)
    with pytest.raises(PIIError, match="RecordBatches"):
        scan_batches([pa.table({"a": [1]})], pattern_engine)  # type: ignore[list-item]
    assert scan_batches([], pattern_engine) == {}


def test_no_pii_in_logs_or_errors(ner_engine: PIIEngine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    values = [f"Please reach me at {KNOWN_EMAIL} about order O000123" for _ in range(5)] + [KNOWN_EMAIL]
    batch = pa.RecordBatch.from_pydict({"body": values, "contact": [KNOWN_EMAIL] * 6})
    findings = scan_batches([batch], ner_engine)
    assert findings["contact"].entity == "EMAIL_ADDRESS"
    ner_engine.analyze_texts(values, processes=1)
    errors = []
    for bad in ([KNOWN_EMAIL, 7], [KNOWN_EMAIL, b"bytes"]):
        with pytest.raises(PIIError) as raised:
            ner_engine.analyze_texts(bad)  # type: ignore[arg-type]
        errors.append(str(raised.value))
    # Presidio itself logs matched values (its IBAN check, its context words): the engine withholds them.
    logging.getLogger("presidio-analyzer").error("Failed to validate text %s", KNOWN_EMAIL)
    assert caplog.records, "the scan logs what it did"
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert KNOWN_EMAIL not in logged
    assert "leak.canary" not in logged
    assert not any("leak.canary" in message for message in errors)
    assert repr(findings["contact"]).count("leak") == 0


# -- fuzzing ----------------------------------------------------------------------------------------------

FUZZ: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
ROWS = 12
TEXT = st.one_of(st.none(), st.text(max_size=80), st.sampled_from([KNOWN_EMAIL, "+1 212-555-0142", " "]))
COLUMNS: dict[str, tuple[pa.DataType, Any]] = {
    "text": (pa.string(), TEXT),
    "int": (pa.int64(), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))),
    "float": (pa.float64(), st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))),
    "bool": (pa.bool_(), st.one_of(st.none(), st.booleans())),
    "date": (pa.date32(), st.one_of(st.none(), st.dates())),
    "ts": (pa.timestamp("us"), st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1900, 1, 1)))),
    "binary": (pa.binary(), st.one_of(st.none(), st.binary(max_size=20))),
    "list": (pa.list_(pa.string()), st.one_of(st.none(), st.lists(TEXT, max_size=3))),
    "struct": (
        pa.struct([("name", pa.string()), ("n", pa.int32())]),
        st.one_of(
            st.none(), st.fixed_dictionaries({"name": TEXT, "n": st.one_of(st.none(), st.integers(0, 99))})
        ),
    ),
    "null": (pa.null(), st.none()),
}


@st.composite
def record_batches(draw: st.DrawFn) -> list[pa.RecordBatch]:
    names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=5, unique=True))
    schema = pa.schema([(name, COLUMNS[name][0]) for name in names])
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        rows = draw(st.integers(0, ROWS))
        data = {name: draw(st.lists(COLUMNS[name][1], min_size=rows, max_size=rows)) for name in names}
        batches.append(pa.RecordBatch.from_pydict(data, schema=schema))
    return batches


@settings(max_examples=40, **FUZZ)
@given(batches=record_batches(), sample=st.integers(1, 20))
def test_fuzz_scan_batches(pattern_engine: PIIEngine, batches: list[pa.RecordBatch], sample: int) -> None:
    findings = scan_batches(batches, pattern_engine, sample=sample)
    for path, finding in findings.items():
        assert path == finding.column
        assert 0.0 <= finding.confidence <= 1.0
        assert 0 <= finding.matches <= finding.sampled <= sample
        assert finding.entity is None or finding.confidence > 0
    assert as_json(findings)["columns"].keys() == findings.keys()

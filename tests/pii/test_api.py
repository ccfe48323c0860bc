"""``scan_table`` and ``mask_table``: masking inside a task, pandas or Arrow, with or without a catalog."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import PIIError
from airflow_aisec.io import Location
from airflow_aisec.pii import TableScan, mask_table, scan_table
from airflow_aisec.pii.engine import PIIEngine
from airflow_aisec.pii.mask import Masker, plan_from_catalog
from airflow_aisec.pii.pipeline import mask_dataset

CATALOG = """\
version: 1
subjects:
  identities: [email]
  pseudonym_key: shop-pseudonyms
keys:
  shop-pseudonyms: {provider: local}
datasets:
  customers:
    uri: "{lake}/customers"
    format: parquet
    identity: {email: email}
    retention: {column: created_at, keep_for: P3Y}
    columns:
      account_id: {pii: none}          # a UUID join key, reviewed: not personal
      full_name: {pii: PERSON}
      email: {pii: EMAIL_ADDRESS}
      birth_date: {pii: DATE_TIME, mask: {strategy: generalize, to: year}}
      created_at: {}
"""
EMAILS = ["alice.martin@example.com", "bob.stone@example.org", "carol.king@example.net"]
VARS = {"lake": "/data/lake"}
ACCOUNTS = [str(uuid.UUID(int=random.Random(n).getrandbits(128), version=4)) for n in range(3)]


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    return path


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json")


def customers_frame(rows: int = 30) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [ACCOUNTS[i % 3] for i in range(rows)],
            "full_name": [["Alice Martin", "Bob Stone", "Carol King"][i % 3] for i in range(rows)],
            "email": [EMAILS[i % 3] for i in range(rows)],
            "birth_date": [dt.date(1980 + i % 3, 6, 15) for i in range(rows)],
            "created_at": [dt.datetime(2025, 1, 1 + i % 28) for i in range(rows)],
        }
    )


def customers_table(rows: int = 30) -> pa.Table:
    frame = customers_frame(rows)
    frame["birth_date"] = frame["birth_date"].astype("object")
    return pa.Table.from_pandas(frame, preserve_index=False).cast(
        pa.schema(
            [
                ("account_id", pa.string()),
                ("full_name", pa.string()),
                ("email", pa.string()),
                ("birth_date", pa.date32()),
                ("created_at", pa.timestamp("us")),
            ]
        )
    )


# -- with a catalog ----------------------------------------------------------------------------------------


def test_a_dataframe_is_masked_by_the_catalog_and_stays_a_dataframe(
    catalog_path: Path, keyring: LocalKeyring
) -> None:
    frame = customers_frame()
    masked = mask_table(frame, catalog=catalog_path, dataset="customers", variables=VARS, keyring=keyring)
    assert isinstance(masked, pd.DataFrame)
    assert list(masked.columns) == list(frame.columns) and len(masked) == len(frame)
    assert masked["email"].str.startswith("pseu_").all()
    assert set(masked["full_name"]) == {"<PERSON>"}
    assert {d.year for d in masked["birth_date"]} == {1980, 1981, 1982}
    assert {(d.month, d.day) for d in masked["birth_date"]} == {(1, 1)}
    # pii: none is left alone, and so is every column the catalog does not declare as PII.
    assert masked["account_id"].tolist() == frame["account_id"].tolist()
    assert masked["created_at"].tolist() == frame["created_at"].tolist()
    assert frame["email"].tolist()[0] == EMAILS[0]  # the input is not modified


def test_catalog_columns_the_table_does_not_hold_are_skipped(
    catalog_path: Path, keyring: LocalKeyring
) -> None:
    table = customers_table().select(["account_id", "email"])
    masked = mask_table(table, catalog=catalog_path, dataset="customers", variables=VARS, keyring=keyring)
    assert masked.column_names == ["account_id", "email"]
    assert all(v.startswith("pseu_") for v in masked.column("email").to_pylist())


def test_scan_with_a_catalog_counts_pii_none_as_declared(
    catalog_path: Path, pattern_engine: PIIEngine
) -> None:
    table = customers_table().append_column("contact", pa.array(EMAILS * 10))
    scan = scan_table(table, catalog=catalog_path, dataset="customers", variables=VARS, engine=pattern_engine)
    assert isinstance(scan, TableScan) and scan.rows == 30
    assert scan.findings["account_id"].entity == "UUID"  # found, but reviewed: not undeclared
    assert scan.undeclared == ["contact"]
    assert scan.pii_columns()["email"] == "EMAIL_ADDRESS"
    report = scan.as_json()
    assert report["undeclared"] == ["contact"] and report["columns"]["contact"]["entity"] == "EMAIL_ADDRESS"
    assert "example.com" not in json.dumps(report)


def test_free_text_of_a_catalog_dataset_is_masked_in_place(
    pattern_engine: PIIEngine, keyring: LocalKeyring
) -> None:
    example = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
    tickets = pa.table(
        {
            "ticket_id": ["T1", "T2"],
            "customer_id": ["C0001", "C0002"],
            "body": [f"Please write to {EMAILS[0]} about my order", "No contact details here"],
        }
    )
    masked = mask_table(
        tickets,
        catalog=example,
        dataset="support_tickets",
        variables=VARS,
        engine=pattern_engine,
        keyring=keyring,
    )
    assert masked.column("body").to_pylist() == [
        "Please write to <EMAIL_ADDRESS> about my order",
        "No contact details here",
    ]
    assert masked.column("customer_id") == tickets.column("customer_id")


# -- with column rules --------------------------------------------------------------------------------


def test_an_arrow_table_is_masked_by_rules_and_keeps_its_types(keyring: LocalKeyring) -> None:
    table = customers_table()
    rules = {
        "email": "pseudonymize",
        "full_name": {"strategy": "partial", "keep_last": 2},
        "birth_date": {"strategy": "generalize", "to": "year"},
        "created_at": "drop",
    }
    masked = mask_table(table, columns=rules, keyring=keyring)
    assert isinstance(masked, pa.Table)
    assert masked.schema == table.schema.remove(table.schema.get_field_index("created_at"))
    assert masked.column("full_name").to_pylist()[:2] == ["**********in", "*******ne"]
    assert masked.column("birth_date").to_pylist()[0] == dt.date(1980, 1, 1)
    assert masked.column("account_id") == table.column("account_id")


def test_a_record_batch_comes_back_as_a_record_batch(keyring: LocalKeyring) -> None:
    batch = customers_table().to_batches()[0]
    masked = mask_table(batch, columns={"email": "redact"}, keyring=keyring)
    assert isinstance(masked, pa.RecordBatch) and masked.num_rows == batch.num_rows
    assert masked.column("email").null_count == batch.num_rows
    empty = mask_table(batch.slice(0, 0), columns={"email": "redact"}, keyring=keyring)
    assert isinstance(empty, pa.RecordBatch) and empty.num_rows == 0


# -- with nothing -------------------------------------------------------------------------------------


def test_without_catalog_or_rules_what_the_scan_finds_is_masked(
    keyring: LocalKeyring, pattern_engine: PIIEngine
) -> None:
    frame = customers_frame()
    masked = mask_table(frame, engine=pattern_engine, keyring=keyring)
    assert isinstance(masked, pd.DataFrame)
    assert masked["email"].str.startswith("pseu_").all()
    assert masked["created_at"].tolist() == frame["created_at"].tolist()


def test_uuid_join_keys_are_pseudonymized_so_joins_survive(
    keyring: LocalKeyring, pattern_engine: PIIEngine
) -> None:
    accounts = pa.table({"account_id": ACCOUNTS * 10, "email": EMAILS * 10})
    orders = pa.table({"account_id": [ACCOUNTS[i % 3] for i in range(2, 32)], "amount": list(range(30))})
    masked_accounts = mask_table(accounts, engine=pattern_engine, keyring=keyring)
    masked_orders = mask_table(orders, engine=pattern_engine, keyring=keyring)
    keys = masked_accounts.column("account_id").to_pylist()
    assert "<UUID>" not in keys and not set(keys) & set(ACCOUNTS)
    assert len(set(keys)) == 3  # same value → same pseudonym, different values → different ones
    assert set(keys) == set(masked_orders.column("account_id").to_pylist())
    joined = masked_orders.join(masked_accounts.group_by("account_id").aggregate([]), "account_id")
    assert joined.num_rows == orders.num_rows


def test_a_table_without_pii_comes_back_unchanged(keyring: LocalKeyring, pattern_engine: PIIEngine) -> None:
    table = pa.table({"amount": [1, 2, 3], "sku": ["a-1", "b-2", "c-3"]})
    assert mask_table(table, engine=pattern_engine, keyring=keyring) == table


# -- same pseudonyms as the operators -------------------------------------------------------------------


def test_pseudonyms_are_those_of_the_dataset_masking_path(
    catalog_path: Path, tmp_path: Path, keyring: LocalKeyring
) -> None:
    """``PIIMaskOperator`` masks with ``plan_from_catalog`` and ``mask_dataset``: a task gets its tokens."""
    table = customers_table()
    (tmp_path / "lake" / "customers").mkdir(parents=True)
    pq.write_table(table, tmp_path / "lake" / "customers" / "part-0.parquet")
    catalog = load_catalog(catalog_path, {"lake": str(tmp_path / "lake")})
    spec = catalog.dataset("customers")
    masker = Masker(plan_from_catalog(spec, catalog.subjects.pseudonym_key), keyring)
    out = tmp_path / "masked"
    mask_dataset(Location.parse(spec.uri), Location.parse(str(out)), masker, fmt="parquet")
    on_disk = pq.read_table(out / "part-0.parquet")
    in_task = mask_table(table, catalog=catalog, dataset="customers", keyring=keyring)
    assert in_task.column("email").to_pylist() == on_disk.column("email").to_pylist()
    # The catalog keys pseudonyms with subjects.pseudonym_key; rules without a catalog use the default key.
    by_rule = mask_table(table, columns={"email": "pseudonymize"}, keyring=keyring)
    assert by_rule.column("email").to_pylist() != on_disk.column("email").to_pylist()
    keyed = mask_table(
        table, columns={"email": {"strategy": "pseudonymize", "key": "shop-pseudonyms"}}, keyring=keyring
    )
    assert keyed.column("email").to_pylist() == on_disk.column("email").to_pylist()


# -- audit ----------------------------------------------------------------------------------------------


def test_audit_entry_records_the_masking_without_raw_values(
    catalog_path: Path, tmp_path: Path, keyring: LocalKeyring, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"sqlite:///{tmp_path / 'audit.db'}"
    caplog.set_level(logging.DEBUG)
    frame = customers_frame()
    masked = mask_table(
        frame, catalog=catalog_path, dataset="customers", variables=VARS, keyring=keyring, audit_log=uri
    )
    with AuditLog.open(uri) as log:
        [entry] = list(log.entries())
        raw = b"".join(e.body for e in log.store.entries())
    assert entry.action == "pii.mask" and entry.data["outcome"] == "success"
    assert entry.data["dataset"] == "customers" and entry.data["rows"] == 30
    assert entry.data["columns"] == ["birth_date", "email", "full_name"]
    assert entry.data["details"]["masked_per_entity"] == {"DATE_TIME": 30, "EMAIL_ADDRESS": 30, "PERSON": 30}
    assert "dataset" not in entry.data["outputs"][0]  # in memory: unnamed unless output_name is given
    assert len(entry.data["inputs"][0]["sha256"]) == 64
    assert entry.data["inputs"][0]["sha256"] != entry.data["outputs"][0]["sha256"]
    for value in [*EMAILS, "Alice Martin", "1980-06-15", *masked["email"].tolist()[:1]]:
        assert value.encode() not in raw
        assert value not in caplog.text


def test_audit_true_records_in_the_configured_log(
    tmp_path: Path, keyring: LocalKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'configured.db'}"
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", uri)
    mask_table(customers_table(), columns={"email": "redact"}, keyring=keyring, name="crm_export")
    assert not (tmp_path / "configured.db").exists()  # nothing recorded unless asked
    rules = {"email": "redact"}
    mask_table(
        customers_table(), columns=rules, keyring=keyring, audit=True, name="crm", output_name="crm_out"
    )
    with AuditLog.open(uri) as log:
        [entry] = list(log.entries())
    assert entry.data["dataset"] == "crm" and entry.data["details"]["strategies"] == rules
    assert entry.data["details"]["masked_per_entity"] == {"PII": 30}
    assert entry.data["inputs"][0]["dataset"] == "crm" and entry.data["outputs"][0]["dataset"] == "crm_out"
    assert entry.data["actor"]["kind"] in ("cli", "airflow")


def test_an_open_audit_log_is_recorded_in_and_left_open(tmp_path: Path, keyring: LocalKeyring) -> None:
    with AuditLog.open(f"sqlite:///{tmp_path / 'open.db'}") as log:
        for _ in range(2):
            mask_table(customers_table(3), columns={"email": "redact"}, keyring=keyring, audit_log=log)
        assert [e.action for e in log.entries()] == ["pii.mask", "pii.mask"]


# -- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"columns": {"e_mail": "redact"}},
            r"column rule\(s\) for e_mail: no such column in the table \(it has",
        ),
        ({"columns": {"email": "hash"}}, r"column 'email': unknown masking strategy 'hash'"),
        (
            {"columns": {"email": {"strategy": "partial", "keep": 2}}},
            r"unknown option\(s\) keep for strategy",
        ),
        ({"columns": {"email": {"keep_last": 2}}}, r"column 'email': a rule is a strategy name or a mapping"),
        ({"columns": {}}, r"columns= names no column to mask"),
        ({"columns": {"email": "redact"}, "dataset": "customers"}, r"either columns= rules or a catalog"),
        ({"catalog": "catalog.yaml"}, r"catalog= needs dataset="),
        ({"columns": {"full_name": "encrypt"}, "mode": "ner"}, None),
        ({"mode": "regex"}, r"unknown mode 'regex'"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(
    kwargs: dict[str, object], message: str | None, keyring: LocalKeyring
) -> None:
    table = customers_table(3)
    if message is None:  # a valid call, as a control: the parametrized errors are not incidental
        assert mask_table(table, keyring=keyring, **kwargs).num_rows == 3  # type: ignore[arg-type]
        return
    with pytest.raises(PIIError, match=message) as error:
        mask_table(table, keyring=keyring, **kwargs)  # type: ignore[arg-type]
    assert "example" not in str(error.value)


def test_unknown_dataset_and_unsupported_data_are_refused(catalog_path: Path, keyring: LocalKeyring) -> None:
    with pytest.raises(PIIError, match=r"unknown dataset 'clients' \(known: customers\)"):
        mask_table(
            customers_table(), catalog=catalog_path, dataset="clients", variables=VARS, keyring=keyring
        )
    with pytest.raises(PIIError, match=r"expected a pandas DataFrame, a pyarrow Table .* got a list"):
        mask_table([{"email": EMAILS[0]}], columns={"email": "redact"}, keyring=keyring)
    with pytest.raises(PIIError, match=r"generalize of column 'email'") as error:
        mask_table(
            customers_table(), columns={"email": {"strategy": "generalize", "to": "year"}}, keyring=keyring
        )
    assert "example" not in str(error.value)

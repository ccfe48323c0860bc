"""Reads of catalog datasets for a purpose: allowed ones read (decrypted where needed), refused ones raise
before anything is read, and both are audit entries without data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from builders import catalog_for, open_log

from airflow_aisec.audit import KNOWN_ACTIONS, AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.exceptions import PurposeError
from airflow_aisec.governance import ACTION, check_purpose, decide_purpose, read_dataset


@pytest.fixture
def catalog(sample_lake_dir: Path) -> Catalog:
    return catalog_for(sample_lake_dir)


@pytest.fixture
def ring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json")


@pytest.fixture
def log(tmp_path: Path, ring: LocalKeyring) -> Iterator[AuditLog]:
    with open_log(tmp_path, ring) as audit:
        yield audit


def _read(catalog: Catalog, ring: LocalKeyring, log: AuditLog, name: str, purpose: str | None) -> pa.Table:
    batches = read_dataset(
        name, purpose, catalog=catalog, keys=KeySource(catalog, ring), audit=log, task="reports.weekly"
    )
    return pa.Table.from_batches(list(batches))


def _checks(log: AuditLog) -> list[dict[str, Any]]:
    return [e.data for e in log.entries() if e.action == ACTION]


def test_purpose_check_is_a_known_audit_action() -> None:
    assert ACTION in KNOWN_ACTIONS


def test_an_allowed_read_reads_every_row_and_is_recorded(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog
) -> None:
    table = _read(catalog, ring, log, "customers", "billing")
    assert table.num_rows == 120 and "email" in table.column_names
    [entry] = _checks(log)
    assert entry["dataset"] == "customers" and entry["outcome"] == "success"
    assert entry["details"] == {
        "purpose": "billing",
        "decision": "allowed",
        "allowed_purposes": ["billing", "support"],
        "reason": "listed by the dataset",
        "task": "reports.weekly",
    }
    text = json.dumps(entry)
    assert not any(email in text for email in table.column("email").to_pylist())


def test_a_refused_read_raises_naming_dataset_purpose_and_task_and_reads_nothing(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog
) -> None:
    with pytest.raises(PurposeError) as refused:
        read_dataset("customers", "marketing.advertising", catalog=catalog, keys=KeySource(catalog, ring),
                     audit=log, task="reports.weekly")  # fmt: skip
    message = str(refused.value)
    assert message.startswith("task reports.weekly: reading dataset 'customers' for purpose ")
    assert "'marketing.advertising' is refused" in message
    assert message.endswith("(the dataset's purposes: billing, support)")
    [entry] = _checks(log)
    assert entry["outcome"] == "failure" and entry["details"]["decision"] == "refused"
    assert entry["details"]["purpose"] == "marketing.advertising"


def test_a_purpose_below_an_allowed_one_is_allowed(sample_lake_dir: Path, tmp_path: Path) -> None:
    catalog = catalog_for(
        sample_lake_dir, tmp_path, lambda d: d["datasets"]["orders"].update(purposes=["essential.service"])
    )
    decision = decide_purpose(catalog, "orders", "billing")
    assert decision.allowed and decision.reason == "below 'essential.service'"
    assert not decide_purpose(catalog, "orders", "essential").allowed


def test_a_read_without_a_purpose_is_allowed_and_recorded_as_null(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW__AISEC__REQUIRE_PURPOSE", raising=False)
    assert _read(catalog, ring, log, "orders", None).num_rows > 0
    [entry] = _checks(log)
    assert entry["outcome"] == "success" and entry["details"]["purpose"] is None


def test_require_purpose_refuses_a_read_without_one(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__REQUIRE_PURPOSE", "True")
    with pytest.raises(PurposeError, match="without a purpose is refused: no purpose declared, and"):
        _read(catalog, ring, log, "orders", None)
    assert [e["outcome"] for e in _checks(log)] == ["failure"]


def test_an_unknown_purpose_is_refused_with_a_suggestion(catalog: Catalog) -> None:
    with pytest.raises(PurposeError, match=r"unknown purpose: .*\(did you mean 'billing'\?\)"):
        check_purpose(catalog, "orders", "biling", task="t")


def test_a_value_that_is_no_purpose_name_is_never_shown(
    catalog: Catalog, ring: LocalKeyring, log: AuditLog
) -> None:
    secret = "ann.lee@example.com"
    with pytest.raises(PurposeError) as refused:
        _read(catalog, ring, log, "orders", secret)
    assert secret not in str(refused.value) and "<not a purpose name>" in str(refused.value)
    assert secret not in json.dumps(_checks(log))


def test_a_dataset_without_purposes_serves_none(sample_lake_dir: Path, tmp_path: Path) -> None:
    catalog = catalog_for(sample_lake_dir, tmp_path, lambda d: d["datasets"]["orders"].pop("purposes"))
    decision = decide_purpose(catalog, "orders", "billing")
    assert not decision.allowed and decision.reason == "the dataset declares no purposes"


def test_an_unknown_dataset_is_named_with_the_known_ones(catalog: Catalog) -> None:
    with pytest.raises(PurposeError, match="unknown dataset 'ordres'"):
        check_purpose(catalog, "ordres", "billing")


def test_an_encrypted_dataset_is_read_decrypted_for_an_allowed_purpose(
    sample_lake_dir: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    import shutil

    from airflow_aisec.crypto.datasets import encrypt_files
    from airflow_aisec.io import Location

    lake = tmp_path / "lake"
    shutil.copytree(sample_lake_dir, lake)
    catalog = catalog_for(lake)
    keys = KeySource(catalog, ring)
    customers = Location.parse(str(lake / "customers"))
    encrypt_files(customers, customers, "parquet", keys.provider("pii-columns"), "pii-columns",
                  columns=["email", "phone", "full_name"])  # fmt: skip
    plain = _read(catalog_for(sample_lake_dir), ring, log, "customers", "support")
    decrypted = _read(catalog, ring, log, "customers", "support")
    assert sorted(decrypted.column("email").to_pylist()) == sorted(plain.column("email").to_pylist())

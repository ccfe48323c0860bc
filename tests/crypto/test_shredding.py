"""Per-subject column keys: shredding one subject's key makes only their values undecryptable, anywhere."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from builders import EXAMPLE, catalog_for

from airflow_aisec.catalog import load_catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.pseudonyms import Pseudonymizer
from airflow_aisec.crypto.shredding import SubjectSealer, open_batch, seal_batch, subject_column
from airflow_aisec.crypto.subjects import subject_key_name
from airflow_aisec.exceptions import KeyringError


@pytest.fixture
def sealer(tmp_path: Path) -> SubjectSealer:
    ring = LocalKeyring(tmp_path / "keys.json")
    return SubjectSealer(ring, Pseudonymizer(ring.ensure("aisec-pseudonyms").material))


def batch() -> pa.RecordBatch:
    return pa.record_batch(
        {
            "customer_id": ["C0001", "C0002", "C0001", None],
            "email": ["a@example.com", "b@example.com", None, "orphan@example.com"],
        }
    )


def test_sealed_values_open_again_and_name_only_pseudonyms(sealer: SubjectSealer) -> None:
    sealed = seal_batch(batch(), ["email"], "customer_id", sealer)
    values = sealed.column("email").to_pylist()
    assert values[0].startswith("subj:v1:") and values[2] is None and values[3] == "orphan@example.com"
    assert "C0001" not in str(values) and "a@example.com" not in str(values)
    assert values[0] != seal_batch(batch(), ["email"], "customer_id", sealer).column("email").to_pylist()[0]
    assert (
        open_batch(sealed, ["email"], sealer).column("email").to_pylist()
        == batch().column("email").to_pylist()
    )


def test_shredding_one_subject_leaves_everyone_else_readable(sealer: SubjectSealer, tmp_path: Path) -> None:
    sealed = seal_batch(batch(), ["email"], "customer_id", sealer)
    pseudonymize = Pseudonymizer(sealer.keyring.get("aisec-pseudonyms").material)
    assert sealer.keyring.destroy(subject_key_name(pseudonymize, "C0001"))
    fresh = SubjectSealer(LocalKeyring(tmp_path / "keys.json"), pseudonymize)  # e.g. a later run, a backup
    opened = open_batch(sealed, ["email"], fresh).column("email").to_pylist()
    assert opened == [None, "b@example.com", None, "orphan@example.com"]
    with pytest.raises(KeyringError, match="shredded"):
        seal_batch(batch(), ["email"], "customer_id", fresh)


def test_tampered_sealed_value_is_an_error_without_the_value(sealer: SubjectSealer) -> None:
    sealed = seal_batch(batch(), ["email"], "customer_id", sealer).column("email").to_pylist()
    token = sealed[1]
    broken = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    with pytest.raises(KeyringError, match="does not open") as raised:
        sealer.open(pa.array([broken]), "email")
    assert "b@example.com" not in str(raised.value)
    with pytest.raises(KeyringError):
        sealer.open(pa.array([token]), "phone")  # the column is bound: values cannot be moved


def test_subject_column_follows_identities_and_references(tmp_path: Path) -> None:
    catalog = load_catalog(EXAMPLE, {"lake": str(tmp_path)})
    assert subject_column(catalog, catalog.datasets["customers"]) == "customer_id"
    assert subject_column(catalog, catalog.datasets["orders"]) == "customer_id"
    variant = catalog_for(tmp_path, tmp_path, lambda data: data["datasets"]["orders"].pop("references"))
    assert subject_column(variant, variant.datasets["orders"]) is None

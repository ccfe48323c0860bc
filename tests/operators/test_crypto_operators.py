"""``EncryptDatasetOperator``, ``DecryptDatasetOperator`` and ``RotateDatasetKeysOperator`` executed directly
on a lake of the test's own, with keys of the local keyring."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from task_runs import AuditReader, TaskRun

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import AisecError, CatalogError, EncryptionError
from airflow_aisec.operators.crypto import (
    DecryptDatasetOperator,
    EncryptDatasetOperator,
    RotateDatasetKeysOperator,
)


def test_encrypt_then_decrypt_round_trips_and_records_both(
    lake: Path, tmp_path: Path, run: TaskRun, audit: AuditReader
) -> None:
    original = pq.read_table(lake / "customers")

    encrypted = EncryptDatasetOperator(task_id="encrypt", dataset="customers").execute(run.context("encrypt"))
    decrypted = DecryptDatasetOperator(
        task_id="decrypt", dataset="customers", output_uri=str(tmp_path / "plain")
    ).execute(run.context("decrypt"))

    assert len(encrypted["files"]) == len(list((lake / "customers").glob("*.parquet"))) > 0
    with pytest.raises(OSError):
        pq.read_table(sorted((lake / "customers").glob("*.parquet"))[0])  # the footer is encrypted
    assert len(decrypted["files"]) == len(encrypted["files"])
    assert pq.read_table(tmp_path / "plain").equals(original)
    (sealed,) = audit.entries("dataset.encrypt")
    (opened,) = audit.entries("dataset.decrypt")
    assert sealed.data["dataset"] == "customers" and sealed.data["details"]["key"] == "pii-columns"
    assert len(sealed.data["outputs"]) == len(encrypted["files"])
    assert opened.data["actor"]["task_id"] == "decrypt"


def test_encrypt_marks_the_encrypted_pii_columns_masked_in_lineage(run: TaskRun) -> None:
    operator = EncryptDatasetOperator(task_id="encrypt", dataset="customers")

    operator.execute(run.context("encrypt"))

    sealed = {c.column: c.strategy for c in operator.lineage.outputs[0].classification if c.masked}
    plain = [c for c in operator.lineage.inputs[0].classification if c.masked]
    assert sealed == {"email": "encrypt", "phone": "encrypt", "full_name": "encrypt"} and plain == []


def test_rotation_rewraps_every_file_and_retires_the_old_version(
    run: TaskRun, ring: LocalKeyring, audit: AuditReader
) -> None:
    EncryptDatasetOperator(task_id="encrypt", dataset="customers").execute(run.context("encrypt"))

    rotated = RotateDatasetKeysOperator(
        task_id="rotate", dataset="customers", retire_old_versions=True
    ).execute(run.context("rotate"))

    assert rotated["version"] == 2 and rotated["retired"] == [1] and rotated["files"]
    assert [v.state for v in ring.versions("pii-columns")] == ["destroyed", "active"]
    entries = audit.entries("key.rotate")
    assert len(entries) == len(rotated["files"]) + 1  # one per file, then the rotation itself
    assert entries[-1].data["details"] == {"key": "pii-columns", "version": 2, "retired": [1]}


def test_a_dataset_without_an_encryption_block_needs_a_key(run: TaskRun, audit: AuditReader) -> None:
    with pytest.raises(
        EncryptionError, match="dataset orders has no encryption block in the catalog; pass key="
    ):
        EncryptDatasetOperator(task_id="encrypt", dataset="orders").execute(run.context("encrypt"))
    assert audit.entries() == []


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"dataset": "customer"}, AisecError, "customer"),
        ({"dataset": "customers", "catalog": "/nonexistent/c.yaml"}, CatalogError, "cannot read catalog"),
    ],
)
def test_encrypt_refuses_an_unknown_dataset_or_catalog(
    run: TaskRun, arguments: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        EncryptDatasetOperator(task_id="encrypt", **arguments).execute(run.context("encrypt"))


def test_an_in_place_envelope_encryption_replaces_the_plaintext_and_says_so(
    lake: Path, tmp_path: Path, run: TaskRun, audit: AuditReader
) -> None:
    tickets = lake / "support_tickets"
    plain = {p.name: p.read_bytes() for p in tickets.glob("*.jsonl")}

    done = EncryptDatasetOperator(task_id="encrypt", dataset="support_tickets", key="pii-columns").execute(
        run.context("encrypt")
    )

    assert sorted(p.name for p in tickets.iterdir()) == sorted(f"{name}.aisec" for name in plain)
    assert done["files"] == [(tickets / f"{name}.aisec").as_uri() for name in sorted(plain)]
    (entry,) = audit.entries("dataset.encrypt")
    assert [i["sha256"] for i in entry.data["inputs"]] == [
        hashlib.sha256(plain[n]).hexdigest() for n in sorted(plain)
    ]
    assert [o["sha256"] for o in entry.data["outputs"]] == [
        hashlib.sha256((tickets / f"{n}.aisec").read_bytes()).hexdigest() for n in sorted(plain)
    ]
    assert entry.data["details"]["plaintext_removed"] == [(tickets / n).as_uri() for n in sorted(plain)]
    DecryptDatasetOperator(
        task_id="decrypt", dataset="support_tickets", key="pii-columns", output_uri=str(tmp_path / "plain")
    ).execute(run.context("decrypt"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "plain").glob("*.jsonl")} == plain

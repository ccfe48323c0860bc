"""Encrypting datasets end to end: CLI, operators, rotation, per-subject shredding, transparent reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from builders import EXAMPLE, catalog_file, lake_copy
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.cli.main import app
from airflow_aisec.crypto.datasets import reader_for
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.inventory import inventory_dataset
from airflow_aisec.operators.crypto import (
    DecryptDatasetOperator,
    EncryptDatasetOperator,
    RotateDatasetKeysOperator,
)

runner = CliRunner()


@pytest.fixture
def lake(tmp_path: Path, sample_lake_dir: Path) -> Path:
    return lake_copy(sample_lake_dir, tmp_path)


@pytest.fixture
def shredding_catalog(tmp_path: Path) -> Path:
    def shred_email(data: dict[str, Any]) -> None:
        data["datasets"]["customers"]["encryption"]["per_subject_columns"] = ["email"]

    return catalog_file(tmp_path, shred_email)


def cli(tmp_path: Path, *args: str) -> str:
    result = runner.invoke(
        app, ["--log", f"sqlite:///{tmp_path / 'a.db'}", "--keyring", str(tmp_path / "k.json"), *args]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_encrypts_catalog_columns_and_plain_readers_fail(lake: Path, tmp_path: Path) -> None:
    catalog = ["--catalog", str(EXAMPLE), "--dataset", "customers", "--var", f"lake={lake}"]
    out = json.loads(
        cli(tmp_path, "encrypt", str(lake / "customers"), str(tmp_path / "enc"), *catalog, "--json")
    )
    assert {f["method"] for f in out["files"]} == {"parquet-modular"}
    first = sorted((tmp_path / "enc").glob("*.parquet"))[0]
    with pytest.raises(OSError):
        pq.read_table(first)
    cli(tmp_path, "decrypt", str(tmp_path / "enc"), str(tmp_path / "dec"), *catalog)
    assert pq.read_table(tmp_path / "dec").equals(pq.read_table(lake / "customers"))
    with AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}", keyring=str(tmp_path / "k.json")) as log:
        actions = [e.action for e in log.entries()]
        assert log.verify().ok
    assert actions == ["dataset.encrypt", "dataset.decrypt"]


def test_cli_envelope_encrypts_jsonl_and_model_files(lake: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(bytes(range(256)) * 1000)
    cli(tmp_path, "encrypt", str(lake / "support_tickets"), str(tmp_path / "t"), "--key", "pii-columns")
    cli(tmp_path, "decrypt", str(tmp_path / "t"), str(tmp_path / "t_plain"))
    for original in (lake / "support_tickets").glob("*.jsonl"):
        assert (tmp_path / "t_plain" / original.name).read_bytes() == original.read_bytes()
    cli(
        tmp_path,
        "encrypt",
        str(model),
        str(tmp_path / "model.bin.aisec"),
        "--key",
        "models",
        "--format",
        "bin",
    )
    cli(tmp_path, "decrypt", str(tmp_path / "model.bin.aisec"), str(tmp_path / "model.out"))
    assert (tmp_path / "model.out").read_bytes() == model.read_bytes()


def test_operators_encrypt_rotate_retire_and_decrypt(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISEC_KEYRING", str(tmp_path / "k.json"))
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'a.db'}")
    common = {"dataset": "customers", "catalog": str(EXAMPLE), "variables": {"lake": str(lake)}}
    EncryptDatasetOperator(task_id="e", **common).execute(context={})  # type: ignore[arg-type]
    digests = {p.name: p.read_bytes() for p in (lake / "customers").glob("*.parquet")}
    rotated = RotateDatasetKeysOperator(task_id="r", retire_old_versions=True, **common).execute(context={})  # type: ignore[arg-type]
    assert rotated["version"] == 2 and rotated["retired"] == [1]
    assert {
        p.name: p.read_bytes() for p in (lake / "customers").glob("*.parquet")
    } == digests  # data untouched
    DecryptDatasetOperator(task_id="d", output_uri=str(tmp_path / "plain"), **common).execute(context={})  # type: ignore[arg-type]
    assert pq.read_table(tmp_path / "plain").num_rows == 120


def test_inventory_reads_an_encrypted_dataset_transparently(lake: Path, tmp_path: Path) -> None:
    cli(tmp_path, "encrypt", str(lake / "customers"), str(lake / "customers"),
        "--catalog", str(EXAMPLE), "--dataset", "customers", "--var", f"lake={lake}")  # fmt: skip
    catalog = load_catalog(EXAMPLE, {"lake": str(lake)})
    spec = catalog.datasets["customers"]
    assert inventory_dataset(spec).problems  # a plain reader cannot read it
    result = inventory_dataset(spec, reader=reader_for(KeySource(catalog, tmp_path / "k.json"), spec))
    assert (result.rows, result.problems, result.drift) == (120, [], False)


def test_shredding_a_subject_erases_their_values_from_every_copy(
    lake: Path, tmp_path: Path, shredding_catalog: Path
) -> None:
    catalog = ["--catalog", str(shredding_catalog), "--dataset", "customers", "--var", f"lake={lake}"]
    cli(tmp_path, "encrypt", str(lake / "customers"), str(tmp_path / "enc"), *catalog)
    backup = tmp_path / "backup"
    shutil.copytree(tmp_path / "enc", backup)  # a copy nobody can rewrite later
    original = pq.read_table(lake / "customers").to_pylist()
    victim = original[0]["customer_id"]
    out = cli(tmp_path, "keys", "shred", "--subject-id", victim)
    assert victim not in out
    cli(tmp_path, "decrypt", str(backup), str(tmp_path / "restored"), *catalog)
    restored = {r["customer_id"]: r for r in pq.read_table(tmp_path / "restored").to_pylist()}
    assert restored[victim]["email"] is None
    assert restored[victim]["full_name"] == original[0]["full_name"]  # not a per-subject column
    others = [r for r in original[1:] if r["email"] is not None]
    assert all(restored[r["customer_id"]]["email"] == r["email"] for r in others)
    cli(tmp_path, "keys", "shred", "--subject-id", victim)  # idempotent
    with AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}", keyring=str(tmp_path / "k.json")) as log:
        shreds = [e.data for e in log.entries() if e.action == "key.shred"]
    assert victim not in json.dumps(shreds) and len(shreds) == 2

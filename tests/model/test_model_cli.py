"""`aisec keys create --kind ec-p256`, `aisec model sign|verify|public-key`, models in audit lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_audit import entries
from typer.testing import CliRunner

from airflow_aisec.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
runner = CliRunner()


@pytest.fixture
def flags(tmp_path: Path) -> list[str]:
    return ["--log", f"sqlite:///{tmp_path / 'audit.db'}", "--keyring", str(tmp_path / "ring.json")]


def invoke(*args: str, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout, result.stderr


def test_sign_verify_and_lineage_from_the_command_line(
    flags: list[str], model: Path, sample_lake_dir: Path, tmp_path: Path
) -> None:
    out, _ = invoke(*flags, "keys", "create", "model-signing", "--kind", "ec-p256")
    assert "created ec-p256 key 'model-signing'" in out
    catalog = ["--catalog", str(EXAMPLE), "--var", f"lake={sample_lake_dir}"]
    out, _ = invoke(
        *flags, "model", "sign", str(model), "--key", "model-signing", "--input", "customers", "--input",
        "orders", *catalog, "--json",
    )  # fmt: skip
    signed = json.loads(out)
    assert signed["node"] == "model://fraud-model"
    assert signed["inputs"] == ["customers", "orders"]
    assert Path(signed["signature"]) == model.with_name("fraud-model.sig")

    out, _ = invoke(*flags, "model", "verify", str(model), "--key", "model-signing")
    assert "verified" in out

    lineage, _ = invoke(*flags, "audit", "lineage", "model://fraud-model")
    assert "customers -> model://fraud-model  (model.sign #" in lineage
    assert "orders -> model://fraud-model  (model.sign #" in lineage
    assert "model.verify #" in lineage  # an operation on the model
    by_path, _ = invoke(*flags, "audit", "lineage", str(model))
    assert by_path == lineage
    downstream, _ = invoke(*flags, "audit", "lineage", "customers")
    assert "customers -> model://fraud-model" in downstream

    [sign_entry] = entries(flags[1], "model.sign", flags[3])
    details = sign_entry["details"]
    assert details["key"] == "local:model-signing@v1"  # type: ignore[index]
    assert set(details["files"]) == {"config.json", "tokenizer/vocab.txt", "weights.bin"}  # type: ignore[index]
    assert len(details["bundle_sha256"]) == 64  # type: ignore[index]


def test_a_tampered_model_exits_one_naming_the_files(flags: list[str], model: Path) -> None:
    invoke(*flags, "keys", "create", "model-signing", "--kind", "ec-p384")
    invoke(*flags, "model", "sign", str(model), "--key", "model-signing")
    (model / "weights.bin").write_bytes(b"changed")
    (model / "extra.bin").write_bytes(b"new")
    _, err = invoke(*flags, "model", "verify", str(model), "--key", "model-signing", code=1)
    assert "1 file(s) changed: weights.bin" in err
    assert "1 file(s) added: extra.bin" in err
    [entry] = entries(flags[1], "model.verify", flags[3])
    assert entry["outcome"] == "failure"
    assert entry["details"]["added"] == ["extra.bin"]  # type: ignore[index]


def test_the_exported_public_key_verifies(flags: list[str], model: Path, tmp_path: Path) -> None:
    invoke(*flags, "keys", "create", "model-signing", "--kind", "ec-p256")
    signature = tmp_path / "bundles" / "model.sig"
    invoke(*flags, "model", "sign", str(model), "--key", "model-signing", "--signature", str(signature))
    pem, _ = invoke(*flags, "model", "public-key", "--key", "model-signing")
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "signer.pub").write_text(pem)
    args = ["model", "verify", str(model), "--signature", str(signature), "--public-key"]
    invoke(*flags, *args, str(tmp_path / "signer.pub"))
    _, err = invoke(
        *flags, "model", "verify", str(model), "--public-key", str(tmp_path / "signer.pub"), code=1
    )
    assert "unsigned: no signature file" in err


def test_an_unknown_training_dataset_is_refused_before_signing(
    flags: list[str], model: Path, sample_lake_dir: Path
) -> None:
    invoke(*flags, "keys", "create", "model-signing", "--kind", "ec-p256")
    catalog = ["--catalog", str(EXAMPLE), "--var", f"lake={sample_lake_dir}"]
    args = ["model", "sign", str(model), "--key", "model-signing", "--input", "custmers", *catalog]
    _, err = invoke(*flags, *args, code=2)
    assert "training input(s) not in the catalog: custmers" in err
    assert not model.with_name("fraud-model.sig").exists()


def test_no_private_key_material_in_any_output(flags: list[str], model: Path, tmp_path: Path) -> None:
    invoke(*flags, "keys", "create", "model-signing", "--kind", "ec-p256")
    outputs = [
        invoke(*flags, "model", "sign", str(model), "--key", "model-signing", "--json"),
        invoke(*flags, "model", "verify", str(model), "--key", "model-signing", "--json"),
        invoke(*flags, "keys", "list", "--json"),
        invoke(*flags, "audit", "show", "--json"),
    ]
    ring = json.loads((tmp_path / "ring.json").read_text())
    material = ring["keys"]["model-signing"]["versions"][0]["material"]
    text = json.dumps(outputs) + model.with_name("fraud-model.sig").read_text()
    assert material not in text
    assert material[20:60] not in text

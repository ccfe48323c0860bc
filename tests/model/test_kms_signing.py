"""Model signatures by AWS KMS asymmetric keys (ECC_NIST_P256, SIGN_VERIFY), on moto's server over HTTP."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from airflow_aisec.cli.main import app
from airflow_aisec.exceptions import KeyringError
from airflow_aisec.model import sign_model, signing_key, verify_model, verifying_keys
from airflow_aisec.model.keys import KmsSigningKeys

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def kms(moto_endpoint: str) -> Any:
    """A factory of boto3 KMS clients on the moto server."""
    import boto3

    def client() -> Any:
        return boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-east-1")

    return client


@pytest.fixture
def alias(kms: Any) -> str:
    """A fresh KMS signing key, by its alias."""
    name = f"alias/model-signing-{uuid.uuid4().hex[:8]}"
    KmsSigningKeys(kms, {name: name}).create_signing_key(name)
    return name


def test_a_kms_signed_model_verifies_and_tampering_is_named(model: Path, kms: Any, alias: str) -> None:
    signer = signing_key(f"aws-kms:{alias}", kms_client_factory=kms)
    signed = sign_model(model, signer)
    assert signed.key_id == f"aws-kms:{alias}"
    keys = verifying_keys(f"aws-kms:{alias}", kms_client_factory=kms)
    assert verify_model(model, keys).verified
    (model / "config.json").write_text("{}")
    result = verify_model(model, keys)
    assert (result.verified, result.changed) == (False, ("config.json",))


def test_the_kms_public_key_verifies_offline(model: Path, kms: Any, alias: str, tmp_path: Path) -> None:
    from airflow_aisec.model import public_key_pem

    sign_model(model, signing_key(f"aws-kms:{alias}", kms_client_factory=kms))
    pem = tmp_path / "kms.pub"
    pem.write_text(public_key_pem(f"aws-kms:{alias}", kms_client_factory=kms))
    assert verify_model(model, verifying_keys(public_key=pem)).verified


def test_a_symmetric_kms_key_cannot_sign(model: Path, kms: Any) -> None:
    key_id = kms().create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    with pytest.raises(KeyringError, match=key_id):
        sign_model(model, signing_key(f"aws-kms:{key_id}", kms_client_factory=kms))
    assert not model.with_name("fraud-model.sig").exists()


def test_keys_create_makes_a_kms_signing_key_the_cli_signs_with(
    model: Path,
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_keys: tuple[str, str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_endpoint)
    flags = ["--log", f"sqlite:///{tmp_path / 'audit.db'}", "--keyring", str(tmp_path / "ring.json")]
    name = f"models-{uuid.uuid4().hex[:8]}"
    outputs = []
    for args in (
        ["keys", "create", name, "--provider", "aws-kms", "--kind", "ec-p256"],
        ["model", "sign", str(model), "--key", f"aws-kms:alias/{name}"],
        ["model", "verify", str(model), "--key", f"aws-kms:alias/{name}"],
    ):
        result = runner.invoke(app, [*flags, *args])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert f"created KMS signing key '{name}'" in outputs[0]
    assert "verified" in outputs[2]
    assert aws_keys[1] not in "".join(outputs)


def test_a_missing_kms_key_says_how_to_create_a_signing_key(model: Path, kms: Any) -> None:
    with pytest.raises(KeyringError, match="aisec keys create nowhere --provider aws-kms --kind ec-p256"):
        sign_model(model, signing_key("aws-kms:alias/nowhere", kms_client_factory=kms))

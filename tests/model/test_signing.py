"""Signing and verifying model artifacts with keyring keys: what verifies, and every tampering named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from model_audit import entries

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import KeyringError, ModelSignatureError
from airflow_aisec.model import (
    sign_model,
    signing_key,
    verified_model_path,
    verify_model,
    verifying_keys,
)


def _sign(model: Path, ring: LocalKeyring, **kwargs: object) -> Path:
    result = sign_model(model, signing_key("model-signing", keyring=ring), **kwargs)  # type: ignore[arg-type]
    return Path(result.signature)


def _verify(model: Path, ring: LocalKeyring, key: str = "model-signing", **kwargs: object):  # type: ignore[no-untyped-def]
    return verify_model(model, verifying_keys(key, keyring=ring), **kwargs)  # type: ignore[arg-type]


def test_a_signed_folder_verifies_and_its_bundle_lists_every_file(model: Path, ring: LocalKeyring) -> None:
    signature = _sign(model, ring)
    assert signature == model.with_name("fraud-model.sig")
    result = _verify(model, ring)
    assert result.verified, result.message()
    assert result.key_id == "local:model-signing@v1"
    bundle = json.loads(signature.read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


def test_a_single_file_model_verifies_and_names_its_file(tmp_path: Path, ring: LocalKeyring) -> None:
    weights = tmp_path / "model.onnx"
    weights.write_bytes(b"\x00onnx" * 100)
    signed = sign_model(weights, signing_key("model-signing", keyring=ring))
    assert list(signed.files) == ["model.onnx"]
    assert _verify(weights, ring).verified
    weights.write_bytes(b"\x00onnx" * 101)
    assert _verify(weights, ring).changed == ("model.onnx",)


def test_a_changed_byte_is_named(model: Path, ring: LocalKeyring) -> None:
    _sign(model, ring)
    data = bytearray((model / "weights.bin").read_bytes())
    data[1000] ^= 0x01
    (model / "weights.bin").write_bytes(bytes(data))
    result = _verify(model, ring)
    assert not result.verified
    assert (result.changed, result.missing, result.added) == (("weights.bin",), (), ())
    assert "1 file(s) changed: weights.bin" in result.message()


def test_a_removed_file_is_named(model: Path, ring: LocalKeyring) -> None:
    _sign(model, ring)
    (model / "tokenizer" / "vocab.txt").unlink()
    result = _verify(model, ring)
    assert (result.verified, result.missing) == (False, ("tokenizer/vocab.txt",))
    assert "missing: tokenizer/vocab.txt" in result.message()


def test_an_added_file_is_named(model: Path, ring: LocalKeyring) -> None:
    _sign(model, ring)
    (model / "backdoor.py").write_text("import os\n")
    result = _verify(model, ring)
    assert (result.verified, result.added) == (False, ("backdoor.py",))
    assert "added: backdoor.py" in result.message()


def test_an_altered_signature_file_is_refused(model: Path, ring: LocalKeyring) -> None:
    signature = _sign(model, ring)
    bundle = json.loads(signature.read_text())
    import base64

    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    (model / "weights.bin").write_bytes(b"poisoned")
    # The attacker rewrites the signed digest of the file they changed: the signature no longer matches.
    for resource in statement["predicate"]["resources"]:
        if resource["name"] == "weights.bin":
            import hashlib

            resource["digest"] = hashlib.sha256(b"poisoned").hexdigest()
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    signature.write_text(json.dumps(bundle))
    result = _verify(model, ring)
    assert not result.verified
    assert "does not verify with key local:model-signing@v1" in result.reason


def test_a_corrupt_signature_file_is_refused(model: Path, ring: LocalKeyring) -> None:
    signature = _sign(model, ring)
    signature.write_text(signature.read_text()[:-40])
    result = _verify(model, ring)
    assert not result.verified
    assert "is not a model signature bundle" in result.reason


def test_a_signature_by_another_key_is_refused(model: Path, ring: LocalKeyring) -> None:
    ring.create("someone-else", "ec-p384")
    sign_model(model, signing_key("someone-else", keyring=ring))
    result = _verify(model, ring)
    assert not result.verified
    assert "signed by another key" in result.reason
    assert "local:model-signing@v1" in result.reason


def test_a_model_signed_before_a_key_rotation_still_verifies(model: Path, ring: LocalKeyring) -> None:
    _sign(model, ring)
    ring.rotate("model-signing")
    result = _verify(model, ring)
    assert result.verified
    assert result.key_id == "local:model-signing@v1"


def test_a_public_key_file_verifies_without_the_keyring(
    model: Path, ring: LocalKeyring, tmp_path: Path
) -> None:
    _sign(model, ring)
    pem = tmp_path / "model-signing.pub"
    pem.write_text(ring.get("model-signing").public_key_pem())
    result = verify_model(model, verifying_keys(public_key=pem))
    assert result.verified
    assert result.key_id == "file:model-signing.pub"


def test_a_signature_inside_the_model_folder_is_left_out_of_what_is_signed(
    model: Path, ring: LocalKeyring
) -> None:
    signature = _sign(model, ring, signature_path=model / "model.sig")
    assert signature.parent == model
    assert _verify(model, ring, signature_path=signature).verified


def test_a_moved_model_still_verifies(model: Path, ring: LocalKeyring, tmp_path: Path) -> None:
    signature = _sign(model, ring)
    moved = shutil.copytree(model, tmp_path / "elsewhere" / "copy")
    assert _verify(moved, ring, signature_path=signature).verified


def test_signing_needs_an_elliptic_curve_key(model: Path, ring: LocalKeyring) -> None:
    ring.create("data-key")
    with pytest.raises(KeyringError, match="need an elliptic-curve key"):
        signing_key("data-key", keyring=ring)
    assert not model.with_name("fraud-model.sig").exists()


def test_the_guard_returns_a_verified_path(model: Path, ring: LocalKeyring, log_path: str) -> None:
    _sign(model, ring)
    assert verified_model_path(model, key="model-signing", keyring=ring) == model
    [entry] = entries(log_path, "model.verify")
    assert entry["outcome"] == "success"


def test_the_guard_refuses_an_unsigned_model(model: Path, ring: LocalKeyring, log_path: str) -> None:
    with pytest.raises(ModelSignatureError, match="unsigned: no signature file"):
        verified_model_path(model, key="model-signing", keyring=ring)
    [entry] = entries(log_path, "model.verify")
    assert entry["outcome"] == "failure"


def test_the_guard_refuses_a_changed_model_naming_the_file(
    model: Path, ring: LocalKeyring, log_path: str
) -> None:
    _sign(model, ring)
    (model / "config.json").write_text('{"layers": 5}\n')
    with pytest.raises(ModelSignatureError, match=r"1 file\(s\) changed: config.json"):
        verified_model_path(model, key="model-signing", keyring=ring)
    [entry] = entries(log_path, "model.verify")
    assert entry["details"]["changed"] == ["config.json"]  # type: ignore[index]


def test_a_failed_signing_leaves_no_half_written_signature(model: Path, ring: LocalKeyring) -> None:
    signature = _sign(model, ring)
    before = signature.read_bytes()
    (model / "link").symlink_to(model / "config.json")  # symlinks are refused when hashing
    with pytest.raises(ModelSignatureError, match="cannot hash model"):
        _sign(model, ring)
    assert signature.read_bytes() == before
    assert not list(signature.parent.glob(".fraud-model.sig.tmp-*"))


def test_a_signature_stripped_of_its_key_hint_is_refused(model: Path, ring: LocalKeyring) -> None:
    signature = _sign(model, ring)
    bundle = json.loads(signature.read_text())
    bundle["verificationMaterial"]["publicKey"].pop("hint")
    signature.write_text(json.dumps(bundle))
    result = _verify(model, ring)
    assert not result.verified
    assert "names no key" in result.reason


@pytest.mark.parametrize("added", [".gitattributes", ".git/config", ".github/workflows/x.yml"])
def test_a_git_file_added_at_the_model_root_is_named_too(model: Path, ring: LocalKeyring, added: str) -> None:
    _sign(model, ring)
    (model / added).parent.mkdir(parents=True, exist_ok=True)
    (model / added).write_text("changed after signing\n")
    result = _verify(model, ring)
    assert (result.verified, result.added) == (False, (added,))


def test_a_folder_with_no_file_is_not_signed(tmp_path: Path, ring: LocalKeyring) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSignatureError, match="no file to sign"):
        _sign(tmp_path / "empty", ring)
    assert not (tmp_path / "empty.sig").exists()


def test_a_signature_named_with_dots_inside_the_folder_is_left_out_of_what_is_signed(
    model: Path, ring: LocalKeyring
) -> None:
    roundabout = model / ".." / model.name / "model.sig"
    signature = _sign(model, ring, signature_path=roundabout)
    assert _verify(model, ring, signature_path=signature).verified

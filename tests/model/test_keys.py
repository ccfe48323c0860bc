"""Elliptic-curve signing keys in the local keyring (kinds ec-p256, ec-p384) and how they are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import KeyringError, ModelSignatureError
from airflow_aisec.model import public_key_pem, signing_key, verifying_keys


@pytest.mark.parametrize(("kind", "curve"), [("ec-p256", "secp256r1"), ("ec-p384", "secp384r1")])
def test_the_keyring_makes_elliptic_curve_keys_of_each_kind(tmp_path: Path, kind: str, curve: str) -> None:
    ring = LocalKeyring(tmp_path / "ring.json")
    version = ring.create("signer", kind)  # type: ignore[arg-type]
    private = version.ec_signing_key()
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.curve.name == curve
    assert version.public_key_pem().startswith("-----BEGIN PUBLIC KEY-----")
    assert ring.rotate("signer").ec_signing_key().private_numbers() != private.private_numbers()


def test_a_signing_key_never_shows_its_private_half(ring: LocalKeyring) -> None:
    key = signing_key("model-signing", keyring=ring)
    material = ring.get("model-signing").material.hex()
    assert repr(key) == "LocalSigningKey('local:model-signing@v1')"
    assert material not in repr(key) + repr(ring.get("model-signing")) + repr(key.verifying_key())
    assert "PRIVATE" not in public_key_pem("model-signing", keyring=ring)


def test_a_key_whose_versions_are_all_destroyed_verifies_nothing(ring: LocalKeyring) -> None:
    ring.destroy("model-signing")
    with pytest.raises(KeyringError, match="no version left to verify with"):
        verifying_keys("model-signing", keyring=ring)


def test_verifying_needs_exactly_one_of_a_key_or_a_public_key(ring: LocalKeyring, tmp_path: Path) -> None:
    with pytest.raises(ModelSignatureError, match="either a key reference or a public key file"):
        verifying_keys()
    with pytest.raises(ModelSignatureError, match="either a key reference or a public key file"):
        verifying_keys("model-signing", public_key=tmp_path / "x.pub", keyring=ring)


def test_a_public_key_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    ring = LocalKeyring(tmp_path / "ring.json")
    pem = tmp_path / "ed25519.pub"
    pem.write_text(ring.create("audit", "ed25519").public_key_pem())
    with pytest.raises(KeyringError, match="not a P-256 or P-384 elliptic-curve public key"):
        verifying_keys(public_key=pem)

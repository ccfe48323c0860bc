"""Publishing a signed model to a serving folder: a verified copy per release, served through one link."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import ModelSignatureError
from airflow_aisec.model import sign_model, signing_key, verifying_keys
from airflow_aisec.model.publish import publish_model


def test_a_published_model_is_a_verified_copy_served_through_current(
    model: Path, ring: LocalKeyring, tmp_path: Path
) -> None:
    signed = sign_model(model, signing_key("model-signing", keyring=ring))
    keys = verifying_keys("model-signing", keyring=ring)
    release = publish_model(model, tmp_path / "serving", keys)
    assert release.verification.verified and release.verification.name == "fraud-model"
    assert release.path.name == signed.manifest_sha256[:16]
    assert (tmp_path / "serving" / "current").resolve() == release.path
    assert (release.path / "fraud-model" / "weights.bin").read_bytes() == (model / "weights.bin").read_bytes()
    assert (release.path / "fraud-model.sig").is_file()
    again = publish_model(model, tmp_path / "serving", keys)
    assert again.path == release.path
    assert [p.name for p in (tmp_path / "serving" / "releases").iterdir()] == [release.path.name]


def test_a_changed_model_is_refused_and_the_served_release_stays(
    model: Path, ring: LocalKeyring, tmp_path: Path
) -> None:
    sign_model(model, signing_key("model-signing", keyring=ring))
    keys = verifying_keys("model-signing", keyring=ring)
    served = publish_model(model, tmp_path / "serving", keys).path
    (model / "weights.bin").write_bytes(b"swapped after signing")
    with pytest.raises(ModelSignatureError, match=r"1 file\(s\) changed: weights\.bin"):
        publish_model(model, tmp_path / "serving", keys)
    assert (tmp_path / "serving" / "current").resolve() == served
    assert len(list((tmp_path / "serving" / "releases").iterdir())) == 1

"""The local keyring: 0600, refuses unsafe permissions, atomic and versioned, never shows key material."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import KeyringError


def test_keyring_file_is_created_owner_only(tmp_path: Path) -> None:
    ring = LocalKeyring(tmp_path / "ring.json")
    ring.create("pii-columns")
    assert stat.S_IMODE((tmp_path / "ring.json").stat().st_mode) == 0o600
    assert "Use a KMS in production" in json.loads((tmp_path / "ring.json").read_text())["warning"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_keyring_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    ring = LocalKeyring(tmp_path / "ring.json")
    ring.create("k")
    os.chmod(tmp_path / "ring.json", mode)
    with pytest.raises(KeyringError, match="readable by group or others") as raised:
        ring.get("k")
    assert "chmod 600" in str(raised.value)


def test_rotation_keeps_old_versions_usable(tmp_path: Path) -> None:
    ring = LocalKeyring(tmp_path / "ring.json")
    first = ring.create("k")
    second = ring.rotate("k")
    assert (first.version, second.version) == (1, 2)
    assert ring.get("k").version == 2
    assert ring.get("k", version=1).material == first.material != second.material


def test_destroy_erases_material_and_is_idempotent(tmp_path: Path) -> None:
    ring = LocalKeyring(tmp_path / "ring.json")
    key = ring.create("subject-42")
    assert ring.destroy("subject-42") is True
    assert ring.destroy("subject-42") is False
    with pytest.raises(KeyringError, match="no active version"):
        ring.get("subject-42")
    with pytest.raises(KeyringError, match="was destroyed"):
        ring.get("subject-42", version=1)
    assert base64.b64encode(key.material).decode() not in (tmp_path / "ring.json").read_text()


def test_signing_keys_are_ed25519(tmp_path: Path) -> None:
    ring = LocalKeyring(tmp_path / "ring.json")
    key = ring.ensure("audit", "ed25519")
    assert "BEGIN PUBLIC KEY" in key.public_key_pem()
    assert ring.ensure("audit", "ed25519").material == key.material
    with pytest.raises(KeyringError, match="exists as a ed25519 key"):
        ring.ensure("audit", "symmetric")


def test_corrupt_keyring_is_a_clear_error_without_content(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    path.write_text('{"format": "aisec-keyring", "keys": {"k": {"material": "c2VjcmV0')
    os.chmod(path, 0o600)
    with pytest.raises(KeyringError, match="unreadable or corrupt") as raised:
        LocalKeyring(path).names()
    assert "c2VjcmV0" not in str(raised.value)


def test_a_failed_write_leaves_the_keyring_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = LocalKeyring(tmp_path / "ring.json")
    ring.create("k")
    before = (tmp_path / "ring.json").read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ring.create("other")
    assert (tmp_path / "ring.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


def test_key_material_never_appears_in_repr_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ring = LocalKeyring(tmp_path / "ring.json")
    key = ring.create("k")
    logging.getLogger("test").info("using %r from %r", key, ring)
    secret = base64.b64encode(key.material).decode()
    assert secret not in caplog.text and key.material.hex() not in caplog.text
    assert secret not in repr(key)

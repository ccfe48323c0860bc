"""``aisec keys``: create, list, rotate, export-public and shred on the local keyring, recorded in the log."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from builders import keys_cli
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.subjects import subject_key, subject_key_name
from airflow_aisec.exceptions import KeyringError

SUBJECT = "alice.martin@example.com"


class Aisec:
    """Runs ``aisec --keyring K --log L keys ...`` in-process on a test's own keyring and audit log."""

    def __init__(self, tmp_path: Path) -> None:
        self.keyring = tmp_path / "ring.json"
        self.log = f"sqlite:///{tmp_path / 'audit.db'}"
        self.runner = CliRunner()
        self.app = keys_cli()

    def __call__(self, *args: str, code: int = 0) -> Any:
        result = self.runner.invoke(
            self.app, ["--keyring", str(self.keyring), "--log", self.log, "keys", *args]
        )
        assert result.exit_code == code, result.output
        return result

    def materials(self) -> list[str]:
        """Every piece of key material in the keyring file (base64, as stored)."""
        data = json.loads(self.keyring.read_text())
        return [v["material"] for k in data["keys"].values() for v in k["versions"] if v["material"]]

    def entries(self, action: str) -> list[dict[str, Any]]:
        with AuditLog.open(self.log, keyring=str(self.keyring)) as log:
            return [e.data for e in log.entries() if e.action == action]


@pytest.fixture
def aisec(tmp_path: Path) -> Aisec:
    return Aisec(tmp_path)


def test_create_list_shows_the_banner_and_never_material(aisec: Aisec) -> None:
    assert "created symmetric key 'pii-columns'" in aisec("create", "pii-columns").output
    assert "already exists" in aisec("create", "pii-columns").output
    aisec("create", "model-signing", "--kind", "ed25519")
    aisec("create", "model-signing", "--kind", "symmetric", code=2)  # exists as another kind

    text = aisec("list").output
    listed = json.loads(aisec("list", "--json").output)

    assert "LOCAL KEYRING — NOT FOR PRODUCTION (use a KMS)" in text
    assert "pii-columns  symmetric  active version: 1" in text and "model-signing  ed25519" in text
    assert listed["warning"] == "LOCAL KEYRING — NOT FOR PRODUCTION (use a KMS)"
    assert listed["production_ready"] is False
    by_name = {k["name"]: k for k in listed["keys"]}
    assert by_name["pii-columns"]["versions"][0].keys() == {"version", "state", "created"}
    materials = aisec.materials()
    assert len(materials) >= 4  # ours plus the audit log's signing and pseudonym keys
    for material in materials:
        assert material not in text and material not in json.dumps(listed)
    assert len(aisec.entries("key.create")) == 2


def test_rotate_adds_an_active_version_and_is_audited(aisec: Aisec) -> None:
    aisec("create", "pii-columns")

    assert "version 2 is active" in aisec("rotate", "pii-columns").output
    aisec("rotate", "pii-columns")

    versions = json.loads(aisec("list", "--json").output)["keys"]
    pii = next(k for k in versions if k["name"] == "pii-columns")
    assert pii["active_version"] == 3 and [v["state"] for v in pii["versions"]] == ["active"] * 3
    rotations = aisec.entries("key.rotate")
    assert [e["details"]["version"] for e in rotations] == [2, 3]
    assert all(e["details"]["key"] == "pii-columns" for e in rotations)
    assert "not in keyring" in aisec("rotate", "missing", code=2).output


def test_export_public_pem_and_note(aisec: Aisec) -> None:
    aisec("create", "model-signing", "--kind", "ed25519")

    pem = aisec("export-public", "model-signing").output
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    load_pem_public_key(pem.encode())
    assert "PRIVATE" not in pem

    note = aisec("export-public", "aisec-audit-signing", "--format", "note").output.strip()
    with AuditLog.open(aisec.log, keyring=str(aisec.keyring)) as log:
        assert note == log.verifier_key()
    aisec("create", "pii-columns")
    assert "not a signing key" in aisec("export-public", "pii-columns", code=2).output
    assert "verifier key" in aisec("export-public", "model-signing", "--format", "note", code=2).output


def test_shred_a_key_and_a_version_is_idempotent(aisec: Aisec) -> None:
    aisec("create", "pii-columns")
    aisec("rotate", "pii-columns")

    assert "version 1 destroyed" in aisec("shred", "pii-columns", "--version", "1").output
    assert "version 1 already destroyed" in aisec("shred", "pii-columns", "--version", "1").output
    assert "key 'pii-columns' destroyed" in aisec("shred", "pii-columns").output
    assert "already destroyed" in aisec("shred", "pii-columns").output

    ring = LocalKeyring(aisec.keyring)
    assert all(v.state == "destroyed" and not v.material for v in ring.versions("pii-columns"))
    outcomes = [(e["details"]["version"], e["outcome"]) for e in aisec.entries("key.shred")]
    assert outcomes == [(1, "success"), (1, "noop"), (None, "success"), (None, "noop")]
    assert "not in keyring" in aisec("shred", "missing", code=2).output
    assert "refusing to shred" in aisec("shred", "aisec-audit-signing", code=2).output


def test_shred_a_subject_key_records_only_the_pseudonym(aisec: Aisec) -> None:
    ring = LocalKeyring(aisec.keyring)
    with AuditLog.open(aisec.log, keyring=ring) as log:
        name = subject_key_name(log, SUBJECT)
        pseudonym = log.pseudonym(SUBJECT)
    key = subject_key(ring, name)  # what the encryption code does for this subject's data
    assert name == "subject/" + pseudonym.removeprefix("hmac-sha256:") and key.version == 1

    first = aisec("shred", "--subject-id", SUBJECT)
    second = aisec("shred", "--subject-id", SUBJECT)

    assert "destroyed" in first.output and "already destroyed" in second.output
    assert SUBJECT not in first.output + second.output
    shreds = aisec.entries("key.shred")
    assert [e["subject"] for e in shreds] == [pseudonym, pseudonym]
    assert [e["outcome"] for e in shreds] == ["success", "noop"]
    with AuditLog.open(aisec.log, keyring=ring) as log:
        bodies = b"".join(row.body for row in log.store.entries(0, None))
    assert SUBJECT.encode() not in bodies and b"alice" not in bodies
    with pytest.raises(KeyringError, match="was shredded"):
        subject_key(ring, name)  # never silently re-created


def test_shred_a_subject_without_a_key_is_a_noop(aisec: Aisec) -> None:
    result = aisec("shred", "--subject-id", "bob@example.com")

    assert "nothing to shred" in result.output and "bob" not in result.output
    assert "subject/" in result.output
    assert [e["outcome"] for e in aisec.entries("key.shred")] == ["noop"]
    aisec("shred", code=2)
    aisec("shred", "k", "--subject-id", "bob@example.com", code=2)


def test_a_group_readable_keyring_is_refused(aisec: Aisec) -> None:
    aisec("create", "pii-columns")
    os.chmod(aisec.keyring, 0o640)

    for command in (["list"], ["rotate", "pii-columns"], ["shred", "pii-columns"], ["create", "x"]):
        result = aisec(*command, code=2)
        assert "readable by group or others" in result.output
        assert all(m not in result.output for m in aisec.materials())


def test_keyring_path_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = tmp_path / "env-ring.json"
    monkeypatch.setenv("AISEC_KEYRING", str(ring))

    result = CliRunner().invoke(
        keys_cli(), ["--log", f"sqlite:///{tmp_path / 'a.db'}", "keys", "create", "k"]
    )

    assert result.exit_code == 0, result.output
    assert "k" in LocalKeyring(ring).names()

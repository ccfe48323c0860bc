"""Attacks on the audit log's evidence: each test performs the attacker's steps for real, then shows that the
result is refused or detected, never signed.

The attacker has write access to the audit database (drops the append-only triggers, rewrites rows,
deletes checkpoints), not to the keyring host nor to the trusted-checkpoint location.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from airflow_aisec.audit import AuditLog, Failure
from airflow_aisec.audit.merkle import leaf_hash
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import AuditLogError

PG_ADMIN = os.environ.get("AISEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AISEC = str(Path(sys.executable).parent / "aisec")


@pytest.fixture(autouse=True)
def own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No trusted checkpoint of another test's log; no Airflow task context left behind by dag.test()."""
    monkeypatch.setenv("AIRFLOW__AISEC__TRUSTED_CHECKPOINT", str(tmp_path / "no-trusted-checkpoint.txt"))
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CTX_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def keyring(tmp_path: Path) -> Path:
    """The signer's keyring (its checkpoint record is written beside it)."""
    return tmp_path / "signer" / "keyring.json"


@pytest.fixture
def written(log_uri: str, keyring: Path) -> str:
    """A log of five entries, checkpointed when closed."""
    with AuditLog.open(log_uri, keyring=str(keyring)) as log:
        for i in range(5):
            log.append("retention.delete", dataset="orders", rows=i)
    return log_uri


class Attacker:
    """Someone with write access to the audit database, who first drops the append-only triggers."""

    def __init__(self, uri: str) -> None:
        if uri.startswith("sqlite:///"):
            self.conn: object = sqlite3.connect(uri[len("sqlite:///") :], isolation_level=None)
            for (name,) in self._run("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
                self._run(f"DROP TRIGGER {name}")
            self.mark = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(uri, autocommit=True)
            self.mark = "%s"
            for table in ("aisec_entries", "aisec_checkpoints", "aisec_meta"):
                self._run(f"ALTER TABLE {table} DISABLE TRIGGER USER")

    def _run(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        cur = self.conn.execute(sql.replace("?", getattr(self, "mark", "?")), params)  # type: ignore[attr-defined]
        return list(cur.fetchall()) if cur.description else []

    def rewrite_from(self, index: int, change: dict[str, object]) -> None:
        """Change entry ``index`` and recompute its leaf hash and every later back-link and hash."""
        rows = self._run("SELECT idx, body FROM aisec_entries WHERE idx >= ? ORDER BY idx", index - 1)
        prev: bytes | None = None
        for idx, raw in rows:
            body = json.loads(bytes(raw))  # type: ignore[arg-type]
            if idx == index - 1:
                prev = leaf_hash(bytes(raw))  # type: ignore[arg-type]
                continue
            if idx == index:
                body.update(change)
            body["prev"] = prev.hex() if prev else None
            data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            prev = leaf_hash(data)
            self._run("UPDATE aisec_entries SET body = ?, leaf_hash = ? WHERE idx = ?", data, prev, idx)

    def delete_checkpoints(self, where: str = "") -> None:
        self._run(f"DELETE FROM aisec_checkpoints {where}")

    def checkpoints(self) -> int:
        return int(self._run("SELECT count(*) FROM aisec_checkpoints")[0][0])  # type: ignore[arg-type]

    def close(self) -> None:
        self.conn.close()  # type: ignore[attr-defined]


def attack(uri: str, *steps: str, rewrite: int = 2) -> None:
    """Rewrite entry ``rewrite`` (and every later back-link), then run the SQL ``steps``."""
    attacker = Attacker(uri)
    try:
        attacker.rewrite_from(rewrite, {"rows": 999})
        for step in steps:
            attacker._run(step)
    finally:
        attacker.close()


def checkpoint_rows(uri: str) -> int:
    attacker = Attacker(uri)
    try:
        return attacker.checkpoints()
    finally:
        attacker.close()


def auditor_copy(keyring: Path, tmp_path: Path) -> Path:
    """The keyring copied to an auditor's machine, without the signer's checkpoint record."""
    copy = tmp_path / "auditor" / "keyring.json"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(keyring.read_bytes())
    copy.chmod(0o600)
    return copy


def aisec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AISEC, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


# -- checkpoints deleted, history rewritten ---------------------------------------------------------------


def test_deleted_checkpoints_fail_verification(written: str, keyring: Path, tmp_path: Path) -> None:
    trusted = tmp_path / "worm" / "trusted.txt"
    trusted.parent.mkdir()
    with AuditLog.open(written, keyring=str(keyring), create=False) as log:
        latest = log.latest_checkpoint()
    assert latest is not None
    trusted.write_text(latest[1], encoding="utf-8")

    attack(written, "DELETE FROM aisec_checkpoints")

    # An auditor with only a copy of the keyring: a non-empty log without any checkpoint has its own code.
    auditor = auditor_copy(keyring, tmp_path)
    result = aisec("audit", "verify", "--log", written, "--keyring", str(auditor), "--json")
    assert result.returncode == Failure.UNCHECKPOINTED == 16, result.stderr
    assert [f["failure"] for f in json.loads(result.stdout)["findings"]] == ["uncheckpointed"]
    # The trusted checkpoint of [aisec] trusted_checkpoint is used without being named on the command.
    configured = {"AIRFLOW__AISEC__TRUSTED_CHECKPOINT": str(trusted)}
    result = aisec("audit", "verify", "--log", written, "--keyring", str(auditor), env=configured)
    assert result.returncode == Failure.FORKED, result.stderr
    # The signer's own record of what it signed tells as well.
    result = aisec("audit", "verify", "--log", written, "--keyring", str(keyring))
    assert result.returncode == Failure.FORKED, result.stderr
    # Verifying signed nothing: the forged history still has no checkpoint.
    assert checkpoint_rows(written) == 0


def test_rewritten_history_is_never_re_signed(written: str, keyring: Path, tmp_path: Path) -> None:
    attack(written, "DELETE FROM aisec_checkpoints")
    # The next task appends and closes: the log refuses to sign what it found.
    log = AuditLog.open(written, keyring=str(keyring))
    log.append("pii.scan")
    with pytest.raises(AuditLogError, match=r"no signed checkpoint, but the checkpoint record .* size 5"):
        log.close()
    # Nor does a writer on another host (a copy of the keyring without the record): the log was not
    # created there, so it will not bless entries nobody vouches for.
    other = AuditLog.open(written, keyring=str(auditor_copy(keyring, tmp_path)))
    with pytest.raises(AuditLogError, match=r"holds 6 entries but no signed checkpoint.*--adopt"):
        other.close()
    assert checkpoint_rows(written) == 0


def test_partly_deleted_checkpoints_are_never_re_signed(
    log_uri: str, keyring: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring), checkpoint_every=10) as log:
        for i in range(30):
            log.append("retention.delete", dataset="orders", rows=i)
    trusted = tmp_path / "trusted.txt"
    with AuditLog.open(log_uri, keyring=str(keyring), create=False) as log:
        trusted.write_text(log.latest_checkpoint()[1], encoding="utf-8")  # type: ignore[index]
    attack(log_uri, "DELETE FROM aisec_checkpoints WHERE size > 10", rewrite=15)

    log = AuditLog.open(log_uri, keyring=str(keyring))
    log.append("pii.scan")
    with pytest.raises(AuditLogError, match=r"checkpoints up to size 10 only.*size 30"):
        log.close()
    # The trusted checkpoint alone (another host's keyring copy) also stops it.
    monkeypatch.setenv("AIRFLOW__AISEC__TRUSTED_CHECKPOINT", str(trusted))
    other = AuditLog.open(log_uri, keyring=str(auditor_copy(keyring, tmp_path)))
    with pytest.raises(AuditLogError, match=r"the trusted checkpoint .* size 30"):
        other.close()
    assert checkpoint_rows(log_uri) == 1


def test_entries_rewritten_after_the_last_record_are_never_signed(
    log_uri: str, keyring: Path, tmp_path: Path
) -> None:
    # Another host signed up to 30 while this host's record stops at 10; the attacker keeps every
    # checkpoint row and rewrites entries from 12 on: this host checks that the database's newest
    # checkpoint extends its own record, over the entries as they are now, before extending it.
    with AuditLog.open(log_uri, keyring=str(keyring), checkpoint_every=10) as log:
        for i in range(10):
            log.append("retention.delete", rows=i)
    elsewhere = auditor_copy(keyring, tmp_path)
    with AuditLog.open(log_uri, keyring=str(elsewhere), checkpoint_every=10) as log:
        for i in range(20):
            log.append("retention.delete", rows=i)
    attack(log_uri, rewrite=12)
    log = AuditLog.open(log_uri, keyring=str(keyring))
    log.append("pii.scan")
    with pytest.raises(AuditLogError, match=r"entries before 30 differ .* newest checkpoint in the database"):
        log.close()
    assert checkpoint_rows(log_uri) == 3


def test_a_log_without_checkpoints_is_only_adopted_explicitly(
    written: str, keyring: Path, tmp_path: Path
) -> None:
    # Entries nobody signed (e.g. written by a process with another keyring that crashed): refused until
    # an operator who checked them adopts the log.
    attack(written, "DELETE FROM aisec_checkpoints")
    auditor = str(auditor_copy(keyring, tmp_path))
    refused = aisec("audit", "checkpoint", "--log", written, "--keyring", auditor)
    assert refused.returncode == 2 and "--adopt" in refused.stderr, refused.stderr
    adopted = aisec("audit", "checkpoint", "--adopt", "--log", written, "--keyring", auditor)
    assert adopted.returncode == 0, adopted.stderr
    assert checkpoint_rows(written) == 1


# -- aisec audit <command> --log ---------------------------------------------------------------------------


def test_audit_commands_take_log_and_keyring_after_the_command(written: str, keyring: Path) -> None:
    after = aisec("audit", "verify", "--log", written, "--keyring", str(keyring))
    before = aisec("--log", written, "--keyring", str(keyring), "audit", "verify")
    assert after.returncode == before.returncode == 0, after.stderr + before.stderr
    assert after.stdout == before.stdout and "5 entries" in after.stdout
    shown = aisec("audit", "show", "--json", "--log", written, "--keyring", str(keyring))
    assert shown.returncode == 0 and len(json.loads(shown.stdout)) == 5


# -- verification never creates state ----------------------------------------------------------------------


def _empty_home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__AISEC__", "AISEC_"))}
    env.update(AIRFLOW_HOME=str(home / "airflow"), HOME=str(home))
    return home, env


def test_verification_never_creates_a_log_or_a_keyring(tmp_path: Path) -> None:
    home, env = _empty_home(tmp_path)
    certificate = tmp_path / "certificate.json"
    certificate.write_text(
        json.dumps({"certificate": {"format": "aisec-dsr-certificate"}, "signature": "x"}),
        encoding="utf-8",
    )
    commands = [
        ["audit", "verify"],
        ["audit", "show"],
        ["audit", "prove", "0"],
        ["audit", "public-key"],
        ["audit", "lineage", "customers"],
        ["audit", "export"],
        ["dsr", "verify-certificate", str(certificate)],
        ["dsr", "requests"],
    ]
    for command in commands:
        result = subprocess.run([AISEC, *command], capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "aisec_audit.db does not exist" in result.stderr, (command, result.stderr)
        assert "signature" not in result.stderr
    assert [p for p in home.rglob("*")] == [], "verification created files"


def test_a_missing_keyring_is_its_own_error_not_a_bad_signature(written: str, tmp_path: Path) -> None:
    _, env = _empty_home(tmp_path)
    missing = tmp_path / "nowhere" / "keyring.json"
    for command in (["audit", "verify"], ["audit", "show"]):
        result = subprocess.run(
            [AISEC, *command, "--log", written, "--keyring", str(missing)],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert f"keyring {missing} does not exist" in result.stderr
        assert "signature" not in result.stderr
    assert not missing.parent.exists()


def test_read_only_open_never_creates_or_signs(written: str, keyring: Path, tmp_path: Path) -> None:
    before = checkpoint_rows(written)
    with pytest.raises(AuditLogError, match="does not exist"):
        AuditLog.open(f"sqlite:///{tmp_path / 'absent.db'}", keyring=str(keyring), create=False)
    assert not (tmp_path / "absent.db").exists()
    with AuditLog.open(written, keyring=str(keyring)) as log:
        log.checkpoint_every = 0
        log.append("pii.scan")
        log._signer = None  # leave the sixth entry unsigned
    with AuditLog.open(written, keyring=str(keyring), create=False) as log:
        with pytest.raises(AuditLogError, match="not covered by a signed checkpoint"):
            log.prove(5)
        with pytest.raises(AuditLogError, match="read-only"):
            log.checkpoint()
    assert checkpoint_rows(written) == before


# -- a keyring that did not sign the log -------------------------------------------------------------------


def test_a_new_keyring_beside_an_existing_log_is_refused_clearly(written: str, tmp_path: Path) -> None:
    new = tmp_path / "new" / "keyring.json"
    result = aisec("--log", written, "--keyring", str(new), "keys", "create", "reports-key")
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"keyring {new} and audit log" in message and "do not belong together" in message
    assert "AISEC_KEYRING" in message and "new audit log" in message
    assert not new.exists()  # no second signing key was made
    # A keyring with a signing key of its own, pointed at the log: refused before it changes anything.
    other = tmp_path / "other" / "keyring.json"
    LocalKeyring(other).create("aisec-audit-signing", "ed25519")
    result = aisec("--log", written, "--keyring", str(other), "keys", "create", "reports-key")
    assert result.returncode == 2 and "do not belong together" in result.stderr
    assert LocalKeyring(other).names() == ["aisec-audit-signing"]


# -- PostgreSQL passwords ----------------------------------------------------------------------------------

PASSWORD = "p@ss/w:rd%"
FRAGMENTS = ("p@ss", "ss/w", "w:rd", "rd%", "p%40ss", "%2Fw", "w%3Ard", "rd%25")


@pytest.mark.integration
def test_postgres_password_is_encoded_and_never_shown(
    tmp_path: Path, keyring: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    from airflow_aisec.hooks.audit import AuditLogHook

    role, database = f"aisec_pw_{uuid.uuid4().hex[:8]}", f"aisec_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        admin.execute(f"CREATE DATABASE {database} OWNER {role}")
    try:
        connection = {
            "conn_type": "aisec_audit", "login": role, "password": PASSWORD, "host": "127.0.0.1",
            "port": 5432, "schema": database,
        }  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_AISEC_PW_TEST", json.dumps(connection))
        caplog.set_level(logging.DEBUG)
        with AuditLogHook("aisec_pw_test").get_log(keyring=str(keyring)) as log:
            log.append("pii.scan")
            shown = repr(log) + log.store.uri
        assert f"{role}:***@127.0.0.1" in shown
        # A database that does not exist: the error names the log without any part of the password.
        monkeypatch.setenv("AIRFLOW_CONN_AISEC_PW_TEST", json.dumps({**connection, "schema": "nope"}))
        with pytest.raises(AuditLogError) as error:
            AuditLogHook("aisec_pw_test").get_log(keyring=str(keyring))
        texts = [shown, str(error.value), caplog.text]
        assert "nope" in str(error.value)
        for text in texts:
            assert not any(fragment in text for fragment in FRAGMENTS), text
        # A URI written by hand without encoding is still redacted whole.
        raw = f"postgresql://{role}:{PASSWORD}@127.0.0.1:5432/nope"
        with pytest.raises(AuditLogError) as error:
            AuditLog.open(raw, keyring=str(keyring))
        assert not any(fragment in str(error.value) for fragment in FRAGMENTS), str(error.value)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {role}")


# -- one source for the pseudonym key ----------------------------------------------------------------------


def test_a_renamed_pseudonym_key_gives_one_pseudonym_per_subject(
    lake: Path, ring: LocalKeyring, tmp_path: Path
) -> None:
    import pyarrow as pa
    from dsr_support import SUBJECT, catalog_for, run
    from typer.testing import CliRunner

    from airflow_aisec.cli.main import app
    from airflow_aisec.dsr import make_request
    from airflow_aisec.pii.mask import Masker, plan_from_catalog
    from airflow_aisec.pii.strategies import pseudonym

    def rename(data: dict[str, object]) -> None:
        data["subjects"]["pseudonym_key"] = "other-key"  # type: ignore[index]
        keys = data["keys"]  # type: ignore[index]
        keys["other-key"] = keys.pop("aisec-pseudonyms")  # type: ignore[index,union-attr]
        data["datasets"]["customers"]["columns"]["email"]["mask"] = {"strategy": "pseudonymize"}  # type: ignore[index]

    catalog = catalog_for(lake, tmp_path, rename)
    uri = f"sqlite:///{tmp_path / 'audit.db'}"
    with AuditLog.open(uri, keyring=ring, pseudonym_key=catalog.subjects.pseudonym_key) as log:
        request = make_request(catalog, "erasure", "customer_id", SUBJECT.customer_id, request_id="e-19")
        run(catalog, request, ring, log, tmp_path)
    vars_ = ["--var", f"lake={lake}"]
    shred = CliRunner().invoke(
        app,
        ["--log", uri, "--keyring", str(ring.path), "keys", "shred", "--subject-id", SUBJECT.customer_id,
         "--catalog", str(tmp_path / "catalog.yaml"), *vars_],
    )  # fmt: skip
    assert shred.exit_code == 0, shred.output
    with AuditLog.open(uri, keyring=ring, create=False) as log:
        entries = [e.data for e in log.entries()]
    dsr = {e["subject"] for e in entries if e["action"].startswith("dsr.") and e.get("subject")}
    shredded = {e["subject"] for e in entries if e["action"] == "key.shred"}
    assert len(dsr) == 1 and shredded == dsr, (dsr, shredded)

    # Masking keys its pseudonymized columns with the same catalog key, and never makes the default one.
    plans = plan_from_catalog(catalog.dataset("customers"), catalog.subjects.pseudonym_key)
    masker = Masker([p for p in plans if p.column == "email"], ring)
    batch = masker.mask_batch(pa.record_batch({"email": [SUBJECT.email]}))
    assert batch.column(0).to_pylist() == [pseudonym(SUBJECT.email, ring.get("other-key"))]
    assert "aisec-pseudonyms" not in ring.names()
    # And the audit log is searched for that subject under the same key.
    shown = CliRunner().invoke(
        app,
        ["audit", "show", "--subject-id", SUBJECT.customer_id, "--catalog", str(tmp_path / "catalog.yaml"),
         *vars_, "--log", uri, "--keyring", str(ring.path), "--json"],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert {e["subject"] for e in json.loads(shown.stdout)} == dsr

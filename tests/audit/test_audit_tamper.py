"""Every attack on the log is caught by verify, even after the append-only triggers are dropped."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_aisec.audit import AuditLog, Checkpoint, Failure, Signer
from airflow_aisec.audit.checkpoint import sign_checkpoint
from airflow_aisec.audit.merkle import leaf_hash
from airflow_aisec.crypto.keyring import LocalKeyring


class Attacker:
    """Someone with write access to the database, who first drops the append-only triggers."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        if uri.startswith("sqlite:///"):
            self.conn = sqlite3.connect(uri[len("sqlite:///") :], isolation_level=None)
            for (name,) in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            ).fetchall():
                self.conn.execute(f"DROP TRIGGER {name}")
            self.mark = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(uri, autocommit=True)
            for table in ("aisec_entries", "aisec_checkpoints", "aisec_tiles", "aisec_terms"):
                self.conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            self.mark = "%s"

    def run(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        cur = self.conn.execute(sql.replace("?", self.mark), params)
        return list(cur.fetchall()) if cur.description else []

    def body(self, index: int) -> dict[str, object]:
        return json.loads(bytes(self.run("SELECT body FROM aisec_entries WHERE idx = ?", index)[0][0]))

    def rewrite(self, index: int, change: dict[str, object], fix_hash: bool) -> None:
        body = json.dumps({**self.body(index), **change}, sort_keys=True, separators=(",", ":")).encode()
        if fix_hash:
            self.run(
                "UPDATE aisec_entries SET body = ?, leaf_hash = ? WHERE idx = ?", body, leaf_hash(body), index
            )
        else:
            self.run("UPDATE aisec_entries SET body = ? WHERE idx = ?", body, index)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def filled(log_uri: str, keyring_path: Path) -> str:
    with AuditLog.open(log_uri, keyring=str(keyring_path), checkpoint_every=10) as log:
        for i in range(30):
            log.append("retention.delete", dataset="orders", rows=i)
    return log_uri


def verify(uri: str, keyring: Path, trusted: list[str] | None = None):  # type: ignore[no-untyped-def]
    with AuditLog.open(uri, keyring=str(keyring), create=False) as log:
        return log.verify(trusted or [])


def tamper(uri: str, action) -> None:  # type: ignore[no-untyped-def]
    attacker = Attacker(uri)
    try:
        action(attacker)
    finally:
        attacker.close()


def test_untouched_log_verifies(filled: str, keyring_path: Path) -> None:
    report = verify(filled, keyring_path)
    assert report.ok and report.size == 30 and report.checkpoints == 3


@pytest.mark.parametrize("fix_hash", [False, True], ids=["stale-hash", "recomputed-hash"])
def test_modified_entry_is_named(filled: str, keyring_path: Path, fix_hash: bool) -> None:
    tamper(filled, lambda a: a.rewrite(5, {"rows": 999}, fix_hash))
    report = verify(filled, keyring_path)
    assert report.exit_code == Failure.MODIFIED
    assert any(f.index == 5 for f in report.findings), report.findings


def test_modified_last_entry_is_caught_by_its_checkpoint(filled: str, keyring_path: Path) -> None:
    tamper(filled, lambda a: a.rewrite(29, {"rows": 0}, True))
    report = verify(filled, keyring_path)
    assert report.exit_code == Failure.MODIFIED
    assert "entries 20-29 differ" in str(report.findings[0])


def test_deleted_entry_is_named(filled: str, keyring_path: Path) -> None:
    tamper(filled, lambda a: a.run("DELETE FROM aisec_entries WHERE idx = 7"))
    report = verify(filled, keyring_path)
    assert report.exit_code == Failure.DELETED
    assert report.findings[0].index == 7 and "entry 7 is missing" in report.findings[0].message


def test_reordered_entries_are_named(filled: str, keyring_path: Path) -> None:
    def swap(a: Attacker) -> None:
        a.run("UPDATE aisec_entries SET idx = -1 WHERE idx = 3")
        a.run("UPDATE aisec_entries SET idx = 3 WHERE idx = 4")
        a.run("UPDATE aisec_entries SET idx = 4 WHERE idx = -1")

    tamper(filled, swap)
    report = verify(filled, keyring_path)
    assert report.exit_code == Failure.REORDERED
    assert report.findings[0].index == 3


def test_truncated_tail_is_caught_by_a_trusted_checkpoint(filled: str, keyring_path: Path) -> None:
    with AuditLog.open(filled, keyring=str(keyring_path)) as log:
        latest = log.latest_checkpoint()
    assert latest is not None and latest[0].size == 30
    trusted = latest[1]

    def truncate(a: Attacker) -> None:
        a.run("DELETE FROM aisec_entries WHERE idx >= 22")
        a.run("DELETE FROM aisec_checkpoints WHERE size > 22")

    tamper(filled, truncate)
    # An auditor's copy of the keyring, without the signer's checkpoint record: nothing inside the
    # database can tell...
    auditor = keyring_path.parent.parent / "auditor" / "keyring.json"
    auditor.parent.mkdir()
    auditor.write_bytes(keyring_path.read_bytes())
    auditor.chmod(0o600)
    assert verify(filled, auditor).ok
    report = verify(filled, auditor, [trusted])  # ...but the copy kept elsewhere can
    assert report.exit_code == Failure.TRUNCATED
    assert report.findings[0].index == 22
    # and so can the signer's own record of the checkpoints it signed, kept beside its keyring
    assert verify(filled, keyring_path).exit_code == Failure.TRUNCATED


def test_truncated_tail_is_caught_by_a_remaining_checkpoint(filled: str, keyring_path: Path) -> None:
    tamper(filled, lambda a: a.run("DELETE FROM aisec_entries WHERE idx >= 25"))
    report = verify(filled, keyring_path)
    assert report.exit_code == Failure.TRUNCATED


def test_forked_history_is_caught(filled: str, keyring_path: Path) -> None:
    ring = LocalKeyring(keyring_path)
    with AuditLog.open(filled, keyring=str(keyring_path)) as log:
        origin = log.origin
    signer = Signer(origin, ring.get("aisec-audit-signing").signing_key())
    # Someone holding the signing key signs a second, different history of the same size.
    other = sign_checkpoint(Checkpoint(origin, 20, bytes(32)), signer)
    tamper(
        filled,
        lambda a: a.run(
            "INSERT INTO aisec_checkpoints (size, root, note, compact_range) VALUES (?, ?, ?, ?)",
            20,
            bytes(32),
            other,
            "[]",
        ),
    )
    report = verify(filled, keyring_path)
    assert report.exit_code in (Failure.FORKED, Failure.MODIFIED)
    assert any(f.failure == Failure.FORKED and f.index == 19 for f in report.findings), report.findings


def test_trusted_checkpoint_of_another_history_is_a_fork(filled: str, keyring_path: Path) -> None:
    ring = LocalKeyring(keyring_path)
    with AuditLog.open(filled, keyring=str(keyring_path)) as log:
        origin = log.origin
    signer = Signer(origin, ring.get("aisec-audit-signing").signing_key())
    report = verify(filled, keyring_path, [sign_checkpoint(Checkpoint(origin, 12, bytes(32)), signer)])
    assert report.exit_code == Failure.FORKED


def test_forged_checkpoint_signature_is_caught(filled: str, keyring_path: Path) -> None:
    def forge(a: Attacker) -> None:
        (note,) = a.run("SELECT note FROM aisec_checkpoints WHERE size = 10")[0]
        a.run("UPDATE aisec_checkpoints SET note = ? WHERE size = 10", str(note).replace("\n10\n", "\n11\n"))

    tamper(filled, forge)
    report = verify(filled, keyring_path)
    assert report.exit_code == Failure.BAD_SIGNATURE


def test_log_refuses_to_sign_over_a_tampered_history(filled: str, keyring_path: Path) -> None:
    with AuditLog.open(filled, keyring=str(keyring_path)) as log:
        for _ in range(5):
            log.append("pii.scan")
        tamper(filled, lambda a: a.rewrite(32, {"rows": 1}, True))
        with pytest.raises(Exception, match="refusing to sign: entry 33 does not follow"):
            log.checkpoint()
        log._signer = None  # do not try again on close


def test_log_refuses_to_extend_a_checkpoint_whose_range_was_altered(filled: str, keyring_path: Path) -> None:
    tamper(filled, lambda a: a.run("UPDATE aisec_checkpoints SET compact_range = ? WHERE size = 30", "[]"))
    with AuditLog.open(filled, keyring=str(keyring_path)) as log:
        log.append("pii.scan")
        with pytest.raises(Exception, match="refusing to sign"):
            log.checkpoint()
        log._signer = None


def test_cli_verify_exit_codes(filled: str, keyring_path: Path, tmp_path: Path) -> None:
    exe = str(Path(sys.executable).parent / "aisec")
    base = [exe, "--log", filled, "--keyring", str(keyring_path), "audit", "verify"]
    ok = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "audit log verified: 30 entries" in ok.stdout
    tamper(filled, lambda a: a.run("DELETE FROM aisec_entries WHERE idx = 2"))
    bad = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 11
    assert json.loads(bad.stdout)["findings"][0]["index"] == 2

"""The audit log on both backends: append, idempotency, checkpoints, proofs and pseudonyms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_aisec.audit import AuditLog, verify_inclusion
from airflow_aisec.audit.checkpoint import Verifier
from airflow_aisec.audit.merkle import verify_inclusion_hash
from airflow_aisec.exceptions import AuditLogError


def open_log(uri: str, keyring: Path, **kwargs) -> AuditLog:  # type: ignore[no-untyped-def]
    return AuditLog.open(uri, keyring=str(keyring), **kwargs)


def test_entries_are_canonical_json_with_contiguous_indices(log_uri: str, keyring_path: Path) -> None:
    with open_log(log_uri, keyring_path) as log:
        first = log.append("pii.mask", dataset="customers", columns=["email"], rows=10)
        second = log.append("dataset.encrypt", dataset="customers", outputs=[{"uri": "x", "sha256": "ab"}])
        assert (first, second) == (0, 1)
        rows = list(log.store.entries())
    body = rows[1].body
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    data = json.loads(body)
    assert data["index"] == 1 and data["prev"] == rows[0].leaf_hash.hex()
    assert data["action"] == "dataset.encrypt" and data["outcome"] == "success"
    assert data["actor"]["kind"] == "cli" and data["actor"]["user"]


def test_subject_is_stored_only_as_keyed_pseudonym(log_uri: str, keyring_path: Path) -> None:
    with open_log(log_uri, keyring_path) as log:
        log.append("dsr.erasure", subject="jane.doe@example.com", dataset="customers")
        pseudonym = log.pseudonym("jane.doe@example.com")
        raw = b"".join(e.body for e in log.store.entries())
    assert b"jane.doe" not in raw
    assert pseudonym.encode() in raw
    with open_log(log_uri, keyring_path) as again:
        assert again.pseudonym("jane.doe@example.com") == pseudonym


def test_retried_task_does_not_duplicate_entries(log_uri: str, keyring_path: Path) -> None:
    with open_log(log_uri, keyring_path) as log:
        key = "dag/run/task/pii.mask/customers"
        assert log.append("pii.mask", idempotency_key=key, rows=1) == 0
        log.append("pii.scan")
        assert log.append("pii.mask", idempotency_key=key, rows=1) == 0
        assert log.size() == 2


def test_batched_appends_get_contiguous_indices(log_uri: str, keyring_path: Path) -> None:
    with open_log(log_uri, keyring_path) as log:
        log.append("pii.scan")
        indices = log.append_many([{"action": "pii.scan", "rows": i} for i in range(50)])
        assert indices == list(range(1, 51))
        log.checkpoint()  # a log without any signed checkpoint does not verify
        assert log.verify().ok


def test_checkpoints_are_signed_every_n_entries_and_on_close(log_uri: str, keyring_path: Path) -> None:
    log = open_log(log_uri, keyring_path, checkpoint_every=10)
    for _ in range(25):
        log.append("pii.scan")
    assert [c.size for c in log.store.checkpoints()] == [10, 20]
    vkey = log.verifier_key()
    log.close()
    with open_log(log_uri, keyring_path) as again:
        rows = again.store.checkpoints()
        assert [c.size for c in rows] == [10, 20, 25]
        assert again.checkpoint() is None  # nothing new since the last one
        checkpoint = Verifier.from_key(vkey).verify(rows[-1].note)
    assert checkpoint.size == 25 and checkpoint.origin.startswith("airflow-aisec.audit/")


def test_inclusion_proof_verifies_against_the_signed_checkpoint(log_uri: str, keyring_path: Path) -> None:
    with open_log(log_uri, keyring_path) as log:
        for i in range(37):
            log.append("pii.scan", rows=i)
        proof = log.prove(21)
        vkey = log.verifier_key()
    checkpoint = Verifier.from_key(vkey).verify(proof["checkpoint"])
    import base64

    entry = base64.b64decode(proof["entry"])
    hashes = [bytes.fromhex(h) for h in proof["proof"]]
    assert verify_inclusion(entry, 21, checkpoint.size, hashes, checkpoint.root)
    assert len(hashes) <= (checkpoint.size - 1).bit_length()
    assert not verify_inclusion_hash(bytes(32), 21, checkpoint.size, hashes, checkpoint.root)


def test_invalid_entries_are_rejected_before_writing(log_uri: str, keyring_path: Path) -> None:
    with open_log(log_uri, keyring_path) as log:
        with pytest.raises(AuditLogError, match="invalid audit action"):
            log.append("Delete Everything")
        with pytest.raises(AuditLogError, match="unknown audit entry field"):
            log.append("pii.scan", password="hunter2")
        with pytest.raises(AuditLogError, match="invalid outcome"):
            log.append("pii.scan", outcome="maybe")
        with pytest.raises(AuditLogError, match="not plain JSON"):
            log.append("pii.scan", rows=float("nan"))
        assert log.size() == 0


def test_database_rejects_update_and_delete(log_uri: str, keyring_path: Path) -> None:
    with open_log(log_uri, keyring_path) as log:
        log.append("pii.scan")
        log.checkpoint()
    for statement in (
        "UPDATE aisec_entries SET body = body",
        "DELETE FROM aisec_entries",
        "UPDATE aisec_checkpoints SET size = 0",
        "DELETE FROM aisec_checkpoints",
    ):
        with pytest.raises(Exception, match="append-only"):
            _execute(log_uri, statement)


def _execute(uri: str, statement: str) -> None:
    if uri.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(uri[len("sqlite:///") :]) as conn:
            conn.executescript(statement)
    else:
        import psycopg

        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(statement)


def test_unsupported_uri_is_a_clear_error(keyring_path: Path) -> None:
    with pytest.raises(AuditLogError, match="unsupported audit log URI 'mysql://u:\\*\\*\\*@h/db'"):
        AuditLog.open("mysql://u:secret@h/db", keyring=str(keyring_path))


@pytest.mark.integration
def test_an_airflow_connection_id_names_a_postgres_log(
    log_uri: str, keyring_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not log_uri.startswith("postgresql://"):
        pytest.skip("the connection-id form is for PostgreSQL")
    from airflow_aisec.hooks.audit import AuditLogHook

    monkeypatch.setenv("AIRFLOW_CONN_AISEC_AUDIT_PG", log_uri)
    with AuditLogHook("aisec_audit_pg").get_log(keyring=str(keyring_path)) as log:
        log.append("pii.scan")
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        assert log.size() == 1 and log.verify().ok


def test_the_core_opens_uris_only(keyring_path: Path) -> None:
    # Resolving a connection id needs Airflow: the hook and the CLI do it, the core names the problem.
    with pytest.raises(AuditLogError, match=r"'aisec_audit_pg' is not a URI.*AuditLogHook"):
        AuditLog.open("aisec_audit_pg", keyring=str(keyring_path))

"""Certificates: any change to one, or to the log behind it, is caught; no raw identifier is ever written."""

from __future__ import annotations

import copy
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from dsr_support import SUBJECT, audit_text, catalog_for, run

from airflow_aisec.audit import AuditLog
from airflow_aisec.audit.merkle import leaf_hash
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import DsrContext, begin, make_request, verify_certificate
from airflow_aisec.dsr.certificate import dumps, load


@pytest.fixture
def erased(lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog) -> dict[str, Any]:
    """The certificate of an erasure of the subject."""
    catalog = catalog_for(lake)
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-cert")
    document = run(catalog, request, ring, log, tmp_path)
    report = verify_certificate(document, log)
    assert report.ok, report.problems  # the untouched certificate verifies: every failure below is the edit
    return document


def _problems(document: dict[str, Any], log: AuditLog | None, keys: tuple[str, ...] = ()) -> list[str]:
    report = verify_certificate(document, log, keys)
    assert not report.ok
    return report.problems


def test_a_changed_row_count_breaks_the_signature(erased: dict[str, Any], log: AuditLog) -> None:
    forged = copy.deepcopy(erased)
    forged["certificate"]["datasets"][0]["rows_affected"] += 1
    assert _problems(forged, log) == ["the certificate's signature does not verify with the audit log's key"]
    forged = copy.deepcopy(erased)
    forged["certificate"]["status"] = "completed"  # hiding the legal hold
    assert "signature does not verify" in _problems(forged, log)[0]


@pytest.mark.parametrize("field", ["leaf_hash", "index"])
def test_a_changed_audit_entry_breaks_its_inclusion_proof(
    erased: dict[str, Any], log: AuditLog, field: str
) -> None:
    forged = copy.deepcopy(erased)
    entries = forged["certificate"]["audit"]["entries"]
    victim = entries[2]
    if field == "leaf_hash":
        victim["leaf_hash"] = leaf_hash(b'{"forged": true}').hex()
    else:
        victim["index"] = entries[3]["index"]
    problems = _problems(forged, log)
    assert f"inclusion proof(s) of entries {victim['index']} do not verify" in problems
    # Without the live log (verifier key only) the proof still fails.
    assert f"inclusion proof(s) of entries {victim['index']} do not verify" in _problems(
        forged, None, (log.verifier_key(),)
    )


def test_a_certificate_does_not_verify_against_another_log(
    erased: dict[str, Any], tmp_path: Path, ring: LocalKeyring
) -> None:
    other_ring = LocalKeyring(tmp_path / "other-ring.json")
    with AuditLog.open(f"sqlite:///{tmp_path / 'other.db'}", keyring=other_ring) as other:
        other.append("dsr.erasure", outcome="noop", details={"request_id": "erase-cert"})
        problems = _problems(erased, other)
    assert "the certificate's signature does not verify with the audit log's key" in problems
    assert "the checkpoint in the certificate is not signed by the audit log's key" in problems
    # Same keys, another database: signed by a trusted key, but that log never held these entries.
    with AuditLog.open(f"sqlite:///{tmp_path / 'same-keys.db'}", keyring=ring) as same_keys:
        same_keys.append("dsr.erasure", outcome="noop", details={"request_id": "erase-cert"})
        assert _problems(erased, same_keys)


def test_an_altered_audit_log_no_longer_matches_the_certificate(
    erased: dict[str, Any], log: AuditLog, tmp_path: Path
) -> None:
    index = next(e["index"] for e in erased["certificate"]["audit"]["entries"] if e["outcome"] == "success")
    attacker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        for (name,) in attacker.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            attacker.execute(f"DROP TRIGGER {name}")
        (raw,) = attacker.execute("SELECT body FROM aisec_entries WHERE idx = ?", (index,)).fetchone()
        body = json.loads(bytes(raw))
        body["rows"] = int(body.get("rows") or 0) + 1
        new = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        attacker.execute(
            "UPDATE aisec_entries SET body = ?, leaf_hash = ? WHERE idx = ?", (new, leaf_hash(new), index)
        )
    finally:
        attacker.close()
    assert "the audit log no longer matches the certificate's checkpoint (altered?)" in _problems(erased, log)


def test_the_certificate_file_round_trips(erased: dict[str, Any], log: AuditLog) -> None:
    assert verify_certificate(load(dumps(erased)), log).ok
    assert verify_certificate(erased, None, (log.verifier_key(),)).ok


# --- no raw identifier anywhere ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["erasure", "rectification", "access"])
def test_no_raw_identifier_in_logs_audit_certificate_or_resolution(
    lake: Path,
    tmp_path: Path,
    ring: LocalKeyring,
    log: AuditLog,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    catalog = catalog_for(lake)
    new_phone = "+1 617-555-0042"
    options: dict[str, Any] = {
        "erasure": {},
        "rectification": {"changes": {"phone": new_phone}},
        "access": {"export_key": "pii-columns"},
    }[kind]
    if kind == "access":
        ring.ensure("pii-columns", "symmetric")
    request = make_request(
        catalog, kind, "email", SUBJECT.email, request_id=f"{kind}-quiet",
        reason=f"requested by {SUBJECT.email.upper()} by phone", **options,
    )  # fmt: skip
    begun = begin(DsrContext(catalog, request, keyring=ring, audit=log))
    assert begun.resolution.found
    resolution = json.dumps(begun.resolution.public(), ensure_ascii=False)
    context = DsrContext(catalog, request, keyring=ring, audit=log)
    public = json.dumps(begun.public(context), ensure_ascii=False)

    document = run(catalog, request, ring, log, tmp_path)

    assert verify_certificate(document, log).ok
    state = "".join(p.read_text() for p in (tmp_path / "state").glob("*"))
    written = {
        "logs": caplog.text + "".join(str(r.args) for r in caplog.records),
        "audit log": audit_text(log),
        "certificate": dumps(document),
        "resolution": resolution,
        "public form": public,
        "reprs": repr(request) + repr(begun.resolution.identifiers) + repr(begun.resolution),
        "sealed state": state,
    }
    secrets = [SUBJECT.email, SUBJECT.customer_id, SUBJECT.phone, SUBJECT.full_name, new_phone]
    leaked = {where: [s for s in secrets if s.lower() in text.lower()] for where, text in written.items()}
    assert not any(leaked.values()), leaked
    assert "requested by [redacted] by phone" in written["certificate"]  # the reason, scrubbed


def test_the_reason_is_scrubbed_of_every_identifier_of_the_subject(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    reason = f"customer {SUBJECT.customer_id} called from {SUBJECT.phone} (ticket 4711)"
    request = make_request(
        catalog, "erasure", "email", SUBJECT.email, request_id="erase-reason", reason=reason
    )
    document = run(catalog, request, ring, log, tmp_path)
    certificate = dumps(document)
    stored = audit_text(log)
    assert "ticket 4711" in certificate and "ticket 4711" in stored  # the reason itself is kept
    for raw in (SUBJECT.customer_id, SUBJECT.phone, SUBJECT.email):
        assert raw not in certificate and raw not in stored
    assert verify_certificate(document, log).ok

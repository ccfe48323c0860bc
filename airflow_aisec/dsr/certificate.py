"""Signed certificates of data-subject requests, and their verification against the audit log.

A certificate is JSON: ``{"certificate": {...}, "signature": "— <origin> <base64>\\n"}``. The signature is a
signed-note signature (the same Ed25519 key and format as the audit log's checkpoints) over the canonical JSON
of ``certificate`` followed by a newline, so anyone holding the log's public verifier key
(``aisec audit public-key``) can check it.

The certificate lists the request (subject as pseudonym), its outcome, every dataset with the files
rewritten or deleted (digests before and after), rows affected, legal holds, the re-read verification, the
per-subject keys shredded, and every audit entry of the request with an inclusion proof against a signed
checkpoint. ``verify_certificate`` checks the signature, each proof, that the checkpoint is signed by the
log, and that the live log still holds those very entries under that root.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit.checkpoint import Checkpoint, Verifier
from airflow_aisec.audit.entry import canonical_json
from airflow_aisec.audit.merkle import MerkleTree, leaf_hash, verify_inclusion_hash
from airflow_aisec.exceptions import AisecError, DsrError

if TYPE_CHECKING:
    from airflow_aisec.audit.log import AuditLog

FORMAT = "aisec-dsr-certificate"


def proofs(audit: AuditLog, indices: Sequence[int]) -> dict[str, Any]:
    """A signed checkpoint covering ``indices`` and an inclusion proof of each entry against it."""
    audit.checkpoint()
    latest = audit.latest_checkpoint()
    if latest is None:
        raise DsrError("the audit log has no signed checkpoint to prove the request's entries against")
    checkpoint, note = latest
    hashes = [leaf_hash(row.body) for row in audit.store.entries(0, checkpoint.size)]
    tree = MerkleTree.from_leaf_hashes(hashes)
    entries = []
    for index in sorted(set(indices)):
        if index >= checkpoint.size:
            raise DsrError(f"audit entry {index} is not covered by the latest checkpoint")
        body = json.loads(audit.store.entry(index).body)  # type: ignore[union-attr]  # index < size
        entries.append(
            {
                "index": index,
                "action": body.get("action"),
                "outcome": body.get("outcome"),
                "dataset": body.get("dataset"),
                "leaf_hash": hashes[index].hex(),
                "proof": [h.hex() for h in tree.inclusion_proof(index, checkpoint.size)],
            }
        )
    return {
        "origin": audit.origin,
        "verifier_key": audit.verifier_key(),
        "checkpoint": note,
        "size": checkpoint.size,
        "root": checkpoint.root.hex(),
        "entries": entries,
    }


def sign(certificate: Mapping[str, Any], audit: AuditLog) -> dict[str, Any]:
    """``{"certificate": ..., "signature": ...}`` signed with the audit log's signing key."""
    return {"certificate": dict(certificate), "signature": audit.sign_text(_text(certificate))}


def _text(certificate: Mapping[str, Any]) -> bytes:
    return canonical_json(certificate) + b"\n"


def dumps(document: Mapping[str, Any]) -> str:
    """The certificate file's text (pretty JSON; the signature covers the canonical form, not this one)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclasses.dataclass
class CertificateReport:
    """What ``verify_certificate`` found: ``ok`` when every check passed; ``problems`` says what failed."""

    request_id: str | None = None
    status: str | None = None
    checks: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.problems and bool(self.checks)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**dataclasses.asdict(self), "ok": self.ok}


def load(text: str) -> dict[str, Any]:
    """Parse a certificate file; ``DsrError`` when it is not one."""
    try:
        document = json.loads(text)
    except ValueError:
        raise DsrError("not a certificate: the file is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("certificate"), dict):
        raise DsrError("not a certificate: no `certificate` object")
    if document["certificate"].get("format") != FORMAT or not isinstance(document.get("signature"), str):
        raise DsrError(f"not a certificate: expected format {FORMAT!r} and a signature")
    return document


def verify_certificate(
    document: Mapping[str, Any], audit: AuditLog | None, verifier_keys: Sequence[str] = ()
) -> CertificateReport:
    """Check a certificate: signature, checkpoint, inclusion proofs and (with ``audit``) the live log."""
    certificate = document["certificate"]
    report = CertificateReport(certificate.get("request", {}).get("request_id"), certificate.get("status"))
    verifiers = _verifiers(audit, verifier_keys, report)
    if not verifiers:
        report.problems.append("no verifier key: give the audit log or --verifier-key")
        return report
    note = _text(certificate).decode("utf-8") + "\n" + str(document["signature"])
    if _opens(verifiers, note) is None:
        report.problems.append("the certificate's signature does not verify with the audit log's key")
    else:
        report.checks.append("signature verifies with the audit log's key")
    evidence = certificate.get("audit") or {}
    checkpoint = _checkpoint(verifiers, evidence, report)
    if checkpoint is None:
        return report
    _check_proofs(checkpoint, evidence.get("entries", []), report)
    if audit is not None:
        _check_live_log(audit, checkpoint, evidence.get("entries", []), certificate, report)
    return report


def _verifiers(audit: AuditLog | None, keys: Sequence[str], report: CertificateReport) -> list[Verifier]:
    verifiers = list(audit.verifiers) if audit is not None else []
    for key in keys:
        try:
            verifiers.append(Verifier.from_key(key))
        except AisecError as exc:
            report.problems.append(f"--verifier-key: {exc}")
    return verifiers


def _opens(verifiers: Sequence[Verifier], note: str) -> bytes | None:
    for verifier in verifiers:
        try:
            return verifier.open(note)
        except ValueError:
            continue
    return None


def _checkpoint(
    verifiers: Sequence[Verifier], evidence: Mapping[str, Any], report: CertificateReport
) -> Checkpoint | None:
    text = _opens(verifiers, str(evidence.get("checkpoint", "")))
    if text is None:
        report.problems.append("the checkpoint in the certificate is not signed by the audit log's key")
        return None
    checkpoint = Checkpoint.parse(text)
    if checkpoint.origin != evidence.get("origin") or checkpoint.size != evidence.get("size"):
        report.problems.append("the checkpoint does not match the certificate's origin and size")
        return None
    report.checks.append(f"checkpoint of size {checkpoint.size} is signed by the audit log")
    return checkpoint


def _check_proofs(
    checkpoint: Checkpoint, entries: Sequence[Mapping[str, Any]], report: CertificateReport
) -> None:
    if not entries:
        report.problems.append("the certificate lists no audit entries")
        return
    bad = []
    for entry in entries:
        try:
            ok = verify_inclusion_hash(
                bytes.fromhex(entry["leaf_hash"]), int(entry["index"]), checkpoint.size,
                [bytes.fromhex(h) for h in entry["proof"]], checkpoint.root,
            )  # fmt: skip
        except (KeyError, ValueError, TypeError):
            ok = False
        if not ok:
            bad.append(str(entry.get("index")))
    if bad:
        report.problems.append(f"inclusion proof(s) of entries {', '.join(bad)} do not verify")
    else:
        report.checks.append(f"{len(entries)} audit entries are included under the signed root")


def _check_live_log(
    audit: AuditLog,
    checkpoint: Checkpoint,
    entries: Sequence[Mapping[str, Any]],
    certificate: Mapping[str, Any],
    report: CertificateReport,
) -> None:
    if audit.origin != checkpoint.origin:
        report.problems.append("the certificate was issued by another audit log (origin differs)")
        return
    hashes = [leaf_hash(row.body) for row in audit.store.entries(0, checkpoint.size)]
    if len(hashes) != checkpoint.size or MerkleTree.from_leaf_hashes(hashes).root() != checkpoint.root:
        report.problems.append("the audit log no longer matches the certificate's checkpoint (altered?)")
        return
    request = certificate.get("request", {})
    for entry in entries:
        row = audit.store.entry(int(entry["index"]))
        if row is None or leaf_hash(row.body) != bytes.fromhex(entry["leaf_hash"]):
            report.problems.append(f"audit entry {entry['index']} differs from the certificate")
            continue
        data = json.loads(row.body)
        if (data.get("details") or {}).get("request_id") != request.get("request_id") or data.get(
            "subject"
        ) != request.get("subject"):
            report.problems.append(f"audit entry {entry['index']} belongs to another request")
    if not any(p.startswith("audit entry") for p in report.problems):
        report.checks.append("the live audit log holds these entries under the same root")

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

Per dataset, ``verification`` says where the re-read looked (files and rows read, by the verification and
before it by the request), so "nothing found" reads "nothing found in N files, M rows". ``coverage`` names
the copies of the subject's data outside the catalog that the audit log's lineage knows of, and
``mentions_searched`` the kinds of mention free text was searched for. ``rescan_certificate`` is the
auditor's independent check: it re-reads the lake from the catalog, trusting neither the subject index nor
the request's state, and confirms the subject remains nowhere the certificate says it was erased.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit.checkpoint import Checkpoint, Verifier
from airflow_aisec.audit.entry import canonical_json
from airflow_aisec.audit.merkle import MerkleTree, leaf_hash, verify_inclusion_hash
from airflow_aisec.dsr.request import is_pseudonym
from airflow_aisec.exceptions import AisecError, DsrError

if TYPE_CHECKING:
    from airflow_aisec.audit.log import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.dsr.identifiers import Identifiers
    from airflow_aisec.dsr.resolve import Resolution
    from airflow_aisec.dsr.scan import Scanner
    from airflow_aisec.io import S3Options

FORMAT = "aisec-dsr-certificate"


def proofs(audit: AuditLog, indices: Sequence[int]) -> dict[str, Any]:
    """A signed checkpoint covering ``indices`` and an inclusion proof of each entry against it."""
    audit.checkpoint()
    latest = audit.latest_checkpoint()
    if latest is None:
        raise DsrError("the audit log has no signed checkpoint to prove the request's entries against")
    checkpoint, note = latest
    entries = []
    for index in sorted(set(indices)):
        if index >= checkpoint.size:
            raise DsrError(f"audit entry {index} is not covered by the latest checkpoint")
        row = audit.store.entry(index)
        assert row is not None  # index < size
        body = json.loads(row.body)
        entries.append(
            {
                "index": index,
                "action": body.get("action"),
                "outcome": body.get("outcome"),
                "dataset": body.get("dataset"),
                "leaf_hash": leaf_hash(row.body).hex(),
                "proof": [h.hex() for h in audit.inclusion_proof(index, checkpoint.size)],
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
        document = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise DsrError("not a certificate: the file is not JSON") from None
    return check_shape(document)


def _not_json(constant: str) -> Any:
    raise ValueError("NaN and infinities are not JSON")


_MAX_INDEX = (1 << 63) - 1  # audit entry indices are SQL BIGINTs
_HASH = re.compile(r"[0-9a-f]{64}")  # SHA-256, hex


def check_shape(document: Any) -> dict[str, Any]:
    """``document`` if it has the shape of a certificate wherever verification reads it, else ``DsrError``.

    Messages name the field, never its value (a crafted file is not echoed).
    """
    if not isinstance(document, dict) or not isinstance(document.get("certificate"), dict):
        raise DsrError("not a certificate: no `certificate` object")
    certificate = document["certificate"]
    if certificate.get("format") != FORMAT or not isinstance(document.get("signature"), str):
        raise DsrError(f"not a certificate: expected format {FORMAT!r} and a signature")
    _expect(certificate, "request", dict, "certificate.request")
    _expect(certificate, "audit", dict, "certificate.audit")
    _expect(certificate, "datasets", list, "certificate.datasets")
    for i, dataset in enumerate(certificate.get("datasets") or []):
        if not isinstance(dataset, dict):
            raise DsrError(f"not a certificate: `certificate.datasets[{i}]` is not an object")
    audit = certificate.get("audit") or {}
    _expect(audit, "checkpoint", str, "certificate.audit.checkpoint")
    _expect(audit, "entries", list, "certificate.audit.entries")
    for i, entry in enumerate(audit.get("entries") or []):
        where = f"certificate.audit.entries[{i}]"
        if not isinstance(entry, dict):
            raise DsrError(f"not a certificate: `{where}` is not an object")
        index = entry.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= _MAX_INDEX:
            raise DsrError(f"not a certificate: `{where}.index` is not an audit entry index")
        proof = entry.get("proof")
        if not _is_hash(entry.get("leaf_hash")) or not isinstance(proof, list):
            raise DsrError(f"not a certificate: `{where}` needs a leaf_hash and a proof")
        if not all(_is_hash(h) for h in proof):
            raise DsrError(f"not a certificate: `{where}.proof` is not a list of hashes")
    return document


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and _HASH.fullmatch(value) is not None


_KINDS: dict[type, str] = {dict: "an object", list: "a list", str: "a text"}


def _expect(parent: Mapping[str, Any], key: str, kind: type, where: str) -> None:
    if parent.get(key) is not None and not isinstance(parent[key], kind):
        raise DsrError(f"not a certificate: `{where}` is not {_KINDS[kind]}")


def verify_certificate(
    document: Mapping[str, Any], audit: AuditLog | None, verifier_keys: Sequence[str] = ()
) -> CertificateReport:
    """Check a certificate: signature, checkpoint, inclusion proofs and (with ``audit``) the live log.

    ``DsrError`` when ``document`` does not have the shape of a certificate (see ``check_shape``).
    """
    check_shape(document)
    certificate = document["certificate"]
    request = certificate.get("request") or {}
    report = CertificateReport(request.get("request_id"), certificate.get("status"))
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
    entries = evidence.get("entries") or []
    _check_proofs(checkpoint, entries, report)
    if audit is not None:
        _check_live_log(audit, checkpoint, entries, certificate, report)
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
    request = certificate.get("request") or {}
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


# --- what the certificate says about coverage and mentions ----------------------------------------------


def coverage(catalog: Catalog, audit: AuditLog, holding: Sequence[str]) -> dict[str, Any]:
    """Copies of the subject's data outside the catalog: datasets the audit log's lineage shows written from
    the datasets that held the subject (``holding``), which no request reaches. ``complete`` is False when
    there are some; ``not_covered`` lists each with the recorded operations that wrote it."""
    from airflow_aisec.audit.lineage import LineageGraph
    from airflow_aisec.catalog.lake import uncovered

    found = uncovered(catalog, LineageGraph.from_entries(audit.entries()), holding) if holding else {}
    return {
        "complete": not found,
        "checked_from": sorted(holding),
        "not_covered": [{"dataset": node, "written_by": labels} for node, labels in found.items()],
    }


def mention_kinds(catalog: Catalog, resolution: Resolution) -> list[str]:
    """Which kinds of mention free text was searched for: the identity types, and the entity types of the
    subject's own values (e-mail, phone, name, ...) learnt from their rows."""
    from airflow_aisec.dsr.identifiers import MENTION_ENTITIES

    kinds = {f"identity:{kind}" for kind, values in resolution.identifiers.identities.items() if values}
    for name, match in resolution.datasets.items():
        if match.rows:
            dataset = catalog.datasets[name]
            kinds |= {spec.pii for spec in dataset.columns.values() if spec.pii in MENTION_ENTITIES}
    return sorted(k for k in kinds if k)


# --- an auditor's own look at the lake ----------------------------------------------------------------------


@dataclasses.dataclass
class RescanReport:
    """What ``rescan_certificate`` found, per dataset of the catalog; ``ok`` when nothing contradicts the
    certificate."""

    request_id: str | None = None
    datasets: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the subject is found nowhere the certificate says it was erased from."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (dataset names and counts, no value)."""
        return {**dataclasses.asdict(self), "ok": self.ok}


def rescan_certificate(
    document: Mapping[str, Any],
    catalog: Catalog,
    identities: Sequence[tuple[str, str]],
    *,
    pseudonymize: Callable[[str], str],
    scanner: Scanner | None = None,
    s3: S3Options | None = None,
) -> RescanReport:
    """Re-read the lake, trusting neither the subject index, nor the request's state, nor the Parquet files'
    row-group statistics (an edited footer could hide rows from a filtered scan), and check an erasure
    certificate against it: the subject (named by ``identities``, the first being the certificate's) is
    found in no dataset the certificate says was erased, and only where it names a hold.

    ``DsrError`` when the certificate is not an erasure's, or the first identity is not its subject.
    """
    from airflow_aisec.dsr.resolve import Resolver
    from airflow_aisec.dsr.scan import Scanner

    certificate = document["certificate"]
    request = certificate.get("request") or {}
    _check_subject(request, identities, pseudonymize)
    kind, value = identities[0]
    # No index and no row-group statistics: every row of every file is read.
    every_row = Scanner(scanner.readers if scanner is not None else None, statistics=False)
    resolver = Resolver(catalog, scanner=every_row, s3=s3)
    resolution = resolver.resolve(kind, value, seed=_seed(catalog, identities))
    report = RescanReport(request.get("request_id"))
    certified = {d.get("dataset"): d for d in certificate.get("datasets") or []}
    for name, match in resolution.datasets.items():
        claimed = certified.get(name)
        held = bool(claimed and claimed.get("status") == "held")
        report.datasets.append(
            {
                "dataset": name,
                "certified_status": claimed.get("status") if claimed else None,
                "files_read": len(match.scanned),
                "rows_read": sum(int(v[1] or 0) for v in match.read.values()),
                "subject_rows": match.rows,
                "mentions": match.mentions,
                "held": held,
            }
        )
        remains = f"{match.rows} row(s) of the subject and {match.mentions} mention(s) remain"
        if (match.rows or match.mentions) and claimed is None:
            report.problems.append(f"dataset {name}: the certificate does not cover it, but {remains}")
        elif (match.rows or match.mentions) and not held and claimed is not None:
            report.problems.append(f"dataset {name}: certified {claimed.get('status')}, but {remains}")
    return report


def _check_subject(
    request: Mapping[str, Any], identities: Sequence[tuple[str, str]], pseudonymize: Callable[[str], str]
) -> None:
    """Refuse a rescan of anything but a carried-out erasure, or for anyone but its subject."""
    if request.get("type") != "erasure" or request.get("dry_run"):
        raise DsrError("a rescan checks the certificate of an erasure that was carried out (not a dry run)")
    if not identities:
        raise DsrError("a rescan needs the subject's identity")
    kind, value = identities[0]
    if kind != request.get("identity_type"):
        raise DsrError(f"the certificate names its subject by {request.get('identity_type')}, not {kind}")
    if is_pseudonym(value):
        raise DsrError("give the subject's identifier, not a pseudonym")
    if not hmac.compare_digest(str(pseudonymize(value)), str(request.get("subject") or "")):
        raise DsrError("the identity given is not the certificate's subject (its pseudonym differs)")


def _seed(catalog: Catalog, identities: Sequence[tuple[str, str]]) -> Identifiers:
    """The identities given beyond the first, and every one as a value of the identity columns that other
    datasets reference: the rows that linked those datasets to the subject may be gone (erased), e.g.
    ``orders.customer_id -> customers.customer_id`` after the customer's row was deleted."""
    from airflow_aisec.dsr.identifiers import Identifiers

    seed = Identifiers()
    for kind, value in identities[1:]:
        seed.add_identity(kind, [value])
    for dataset in catalog.datasets.values():
        for kind, column in dataset.identity.items():
            given = {v for k, v in identities if k == kind}
            if given:
                seed.linked.setdefault((dataset.name, column), set()).update(given)
    return seed

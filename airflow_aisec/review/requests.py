"""The data-subject-request pages: open and closed requests by deadline, one request's steps and certificate.

Requests are read back from the audit log (``airflow_aisec.dsr.tracking``); a request's certificate is the
file its ``complete`` step wrote (``<[aisec] dsr_exports>/certificates/<request id>.json``), verified here
against the live log as ``aisec dsr verify-certificate`` does.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit import EntryQuery
from airflow_aisec.dsr import tracking
from airflow_aisec.dsr.certificate import dumps, load, verify_certificate
from airflow_aisec.dsr.request import REQUEST_ID
from airflow_aisec.dsr.run import certificate_target
from airflow_aisec.exceptions import AisecError
from airflow_aisec.io.storage import Location, S3Options, open_input
from airflow_aisec.review.entries import EntryRow, entry_row, field_map

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog

# Overdue first, then the open ones by deadline, then the answered ones.
_RANK = {"overdue": 0, "open": 1, "failed": 1, "dry_run": 1}
_MAX_STEPS = 2000
_MAX_CERTIFICATE = 8 * 1024 * 1024


@dataclass(frozen=True)
class RequestRow:
    """One request: what, about whom (pseudonym), when it was received, when it is due."""

    request_id: str
    type: str | None
    subject: str | None
    received_at: str | None
    deadline: str | None
    days_left: int | None
    status: str
    pending: bool
    completed_at: str | None
    entry: int


def request_rows(log: AuditLog, now: dt.datetime | None = None) -> list[RequestRow]:
    """Every request, overdue first, then the open ones by deadline, then the closed ones, newest first.

    Only the ``dsr.*`` entries are read, found through the log's search terms (each checked against its own
    bytes): the page relies on the terms to list every request, which ``aisec audit verify --index`` proves;
    ``aisec dsr requests`` reads every entry instead."""
    found = reversed(log.newest(EntryQuery(action="dsr."), sys.maxsize))
    rows = [_row(request) for request in tracking.requests(log, now, found)]
    open_rows = sorted((r for r in rows if r.pending or r.status == "overdue"), key=_by_deadline)
    closed = sorted((r for r in rows if not (r.pending or r.status == "overdue")), key=_by_completion)
    return open_rows + closed


def _by_deadline(row: RequestRow) -> tuple[int, str, str]:
    return (_RANK.get(row.status, 1), row.deadline or "~", row.request_id)


def _by_completion(row: RequestRow) -> tuple[str, str]:
    return (_reverse(row.completed_at or row.received_at or ""), row.request_id)


def _reverse(text: str) -> str:
    """A key sorting ISO times newest first."""
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


def _row(found: dict[str, Any]) -> RequestRow:
    return RequestRow(
        request_id=str(found["request_id"]),
        type=found.get("type"),
        subject=found.get("subject"),
        received_at=_short(found.get("received_at")),
        deadline=_short(found.get("deadline")),
        days_left=found.get("days_left"),
        status=str(found.get("status")),
        pending=bool(found.get("pending")),
        completed_at=_short(found.get("completed_at")),
        entry=int(found["entry"]),
    )


def _short(value: object) -> str | None:
    return str(value)[:19].replace("T", " ") if value else None


@dataclass(frozen=True)
class Step:
    """One recorded step of a request: its stage (request, approval, dataset, complete) and entry."""

    stage: str
    row: EntryRow
    status: str | None


@dataclass(frozen=True)
class CertificateView:
    """A request's certificate file, its text and what verifying it against the log found."""

    location: str
    present: bool
    text: str | None = None
    status: str | None = None
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the certificate verified."""
        return self.present and bool(self.checks) and not self.problems


@dataclass(frozen=True)
class RequestDetail:
    """One request: its row, its steps (oldest first) and its certificate."""

    row: RequestRow
    steps: list[Step]
    certificate: CertificateView | None


def check_request_id(request_id: str) -> str:
    """``request_id`` when it has the shape of a request id; else ``ValueError`` (never quoting it)."""
    if not REQUEST_ID.match(request_id):
        raise ValueError("not a request id: 1 to 64 letters, digits, '.', '_' or '-'")
    return request_id


def request_detail(
    log: AuditLog, request_id: str, exports: str | None, s3: S3Options | None = None
) -> RequestDetail | None:
    """The request ``request_id`` with its steps and certificate, or None when the log has no such request."""
    check_request_id(request_id)
    row = next((r for r in request_rows(log) if r.request_id == request_id), None)
    if row is None:
        return None
    steps = [_step(e.index, e.data, entry_row(e)) for e in _entries(log, request_id)]
    certificate = read_certificate(log, request_id, exports, s3) if exports else None
    return RequestDetail(row, steps, certificate)


def _entries(log: AuditLog, request_id: str) -> list[Any]:
    return list(reversed(log.newest(EntryQuery(request_id=request_id), _MAX_STEPS)))


def _step(index: int, data: dict[str, Any], row: EntryRow) -> Step:
    details = field_map(data, "details")
    stage = str(details.get("stage") or ("dataset" if row.datasets else data.get("action")))
    return Step(stage, row, str(details["status"]) if details.get("status") else None)


def certificate_text(request_id: str, exports: str, s3: S3Options | None = None) -> str | None:
    """The certificate file's text, or None when the request has none (yet)."""
    location = Location.parse(certificate_target(exports, check_request_id(request_id), s3), s3)
    try:
        with open_input(location) as opened:
            data = opened.stream.read(_MAX_CERTIFICATE + 1)
    except AisecError:
        return None
    if len(data) > _MAX_CERTIFICATE:
        raise ValueError(f"certificate {location.uri} is larger than {_MAX_CERTIFICATE} bytes")
    return data.decode("utf-8", errors="replace")


def read_certificate(
    log: AuditLog, request_id: str, exports: str, s3: S3Options | None = None
) -> CertificateView:
    """The request's certificate and its verification against ``log`` (signature, proofs, live entries)."""
    where = certificate_target(exports, check_request_id(request_id), s3)
    text = certificate_text(request_id, exports, s3)
    if text is None:
        return CertificateView(where, present=False)
    try:
        document = load(text)
        report = verify_certificate(document, log)
    except AisecError as e:
        return CertificateView(where, True, text, problems=[str(e)])
    return CertificateView(where, True, dumps(document), report.status, report.checks, report.problems)

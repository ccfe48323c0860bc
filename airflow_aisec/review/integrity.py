"""The integrity page: the last recorded verification, the log's state now, and "verify now".

A verification is recorded as ``AuditVerifyOperator`` records it: an ``audit.verify`` entry with the
number of entries verified as ``rows`` and the root in ``details`` (``failure`` with the exit code when
something was found), then a signed checkpoint. "Verify now" verifies read-only first, against the trusted
checkpoint, and records only afterwards, so a failed verification never gets a checkpoint signed over it
by the record itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit import Checkpoint, EntryQuery
from airflow_aisec.exceptions import AisecError
from airflow_aisec.review.entries import actor_text, field_map

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog, VerifyReport

VERIFY_ACTION = "audit.verify"


@dataclass(frozen=True)
class Verification:
    """One recorded verification, read back from its ``audit.verify`` entry."""

    index: int
    time: str
    outcome: str
    size: int | None
    root: str | None
    checkpoints: int | None
    trusted_checkpoints: int | None
    exit_code: int | None
    actor: str


@dataclass(frozen=True)
class TrustedCheckpoint:
    """The trusted checkpoint kept outside the database, as far as this process can read it."""

    path: str
    present: bool
    size: int | None = None
    root: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class IntegrityView:
    """What the integrity page shows."""

    size: int
    checkpoint_size: int | None
    checkpoint_root: str | None
    trusted: TrustedCheckpoint | None
    last: Verification | None
    last_success: Verification | None


def verification(index: int, data: Mapping[str, Any]) -> Verification:
    """The verification an ``audit.verify`` entry records."""
    details, actor = field_map(data, "details"), field_map(data, "actor")
    return Verification(
        index=index,
        time=str(data.get("time", ""))[:19].replace("T", " "),
        outcome=str(data.get("outcome", "success")),
        size=_int(data.get("rows")),
        root=str(details["root"]) if details.get("root") else None,
        checkpoints=_int(details.get("checkpoints")),
        trusted_checkpoints=_int(details.get("trusted_checkpoints")),
        exit_code=_int(details.get("exit_code")),
        actor=actor_text(actor),
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def integrity_view(log: AuditLog, trusted_path: str | None) -> IntegrityView:
    """The log's size and newest checkpoint, the trusted checkpoint, the last verification and the last
    successful one (both from the log itself: nothing is verified by showing this page)."""
    latest = log.latest_checkpoint()
    recent = log.search(EntryQuery(action=VERIFY_ACTION), limit=20).entries
    last = verification(recent[0].index, recent[0].data) if recent else None
    successes = (verification(e.index, e.data) for e in recent if e.data.get("outcome") == "success")
    success = next(successes, None)
    if success is None and last is not None and last.outcome != "success":
        more = log.search(EntryQuery(action=VERIFY_ACTION, outcome="success"), limit=1).entries
        success = verification(more[0].index, more[0].data) if more else None
    return IntegrityView(
        size=log.size(),
        checkpoint_size=latest[0].size if latest else None,
        checkpoint_root=latest[0].root.hex() if latest else None,
        trusted=read_trusted(log, trusted_path),
        last=last,
        last_success=success,
    )


def read_trusted(log: AuditLog, path: str | None) -> TrustedCheckpoint | None:
    """The trusted checkpoint at ``path`` opened with the log's keys (None when none is configured)."""
    if not path:
        return None
    file = Path(path)
    if not file.is_file():
        return TrustedCheckpoint(str(file), present=False)
    try:
        note = file.read_text(encoding="utf-8")
    except OSError as e:
        return TrustedCheckpoint(str(file), present=True, problem=f"unreadable: {e.strerror}")
    for verifier in log.verifiers:
        try:
            checkpoint = Checkpoint.parse(verifier.open(note))
        except AisecError:
            continue
        return TrustedCheckpoint(str(file), True, checkpoint.size, checkpoint.root.hex())
    problem = "its signature does not verify with the log's key"
    return TrustedCheckpoint(str(file), present=True, problem=problem)


def trusted_notes(path: str | None) -> list[str]:
    """The trusted checkpoint's signed note, when the file exists (as ``aisec audit verify`` reads it)."""
    if not path or not Path(path).is_file():
        return []
    return [Path(path).read_text(encoding="utf-8")]


def record_verification(log: AuditLog, report: VerifyReport, trusted: Sequence[str]) -> int:
    """Record ``report`` as an ``audit.verify`` entry in ``log`` (opened for writing) and sign a checkpoint
    after a successful one; returns the entry's index."""
    details: dict[str, Any] = {"checkpoints": report.checkpoints, "trusted_checkpoints": len(trusted)}
    if report.ok:
        index = log.append(VERIFY_ACTION, rows=report.size, details={"root": report.root.hex(), **details})
        log.checkpoint()
        return index
    details["exit_code"] = report.exit_code
    return log.append(VERIFY_ACTION, outcome="failure", rows=report.size, details=details)

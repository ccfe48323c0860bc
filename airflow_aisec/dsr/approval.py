"""The approver's decision on a request, when a human approves it before anything changes (the DAGs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_aisec.dsr.state import Binding

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.dsr.approvers import Approvers, Decider
    from airflow_aisec.dsr.state import StateStore

DECISIONS = ("approved", "rejected", "none", "dry_run", "refused")


def needs_approval(request: Mapping[str, Any] | None) -> bool:
    """Whether a registered request (its public form) waits for an approver: every request but a dry run,
    which changes nothing; a request that cannot be read waits."""
    return (request or {}).get("dry_run") is not True


def record_decision(
    audit: AuditLog,
    request_type: str,
    request: Mapping[str, Any],
    *,
    run_id: str,
    decision: str,
    responded_by: str | None,
    decided_by: Decider | None = None,
    approvers: Approvers | None = None,
    attempt: int = 1,
) -> int:
    """Record ``decision`` (one of ``DECISIONS``; ``dry_run``: not asked, as a dry run changes nothing;
    ``refused``: answered by someone outside the privacy office, so not a decision) on the registered
    ``request`` once per run (a refusal once per attempt, so the office's later decision is still recorded);
    its index.

    ``request`` is the registration's public request (the subject as a pseudonym); ``responded_by`` names the
    approver as the approval tool knows them, ``decided_by`` gives their id and name and whether the office
    includes them, and ``approvers`` the office's user ids (None: the catalog declares no office).
    """
    request_id = request.get("request_id")
    key = f"dsr.{request_type}:{request_id}:approval:{run_id}"
    outcome = {"approved": "success", "dry_run": "success", "refused": "failure"}.get(decision, "skipped")
    return audit.append(
        f"dsr.{request_type}",
        idempotency_key=f"{key}:refused:{attempt}" if decision == "refused" else key,
        outcome=outcome,
        subject=request.get("subject"),  # already a pseudonym
        details={
            "request_id": request_id, "stage": "approval", "decision": decision, "responded_by": responded_by,
            "decided_by": decided_by.as_dict() if decided_by else None,
            "privacy_office": approvers.ids if approvers and approvers.declared else None,
        },
    )  # fmt: skip


def retire(store: StateStore, request_type: str, request: Mapping[str, Any]) -> None:
    """A request that will not be carried out: the identifiers sealed for this run (XCom) stop opening; only
    the state file, if any, keeps them for a rerun."""
    binding = Binding(request["request_id"], request_type, request["identity_type"], request["subject"])
    store.finish(binding, keep=True)

"""What a request's first task hands the others when the steps run as separate tasks (the DAGs).

``begin`` runs in the register task; its *registration* (XCom ``registration``) holds the request as
recorded, where the subject was found, a summary for the approver, and the subject's identifiers sealed by
the ``StateStore`` (never a raw identifier). The dataset and complete tasks open it again with
``resolution_of``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_aisec.dsr.contract import REGISTER_TASK
from airflow_aisec.dsr.resolve import DatasetMatch, Resolution
from airflow_aisec.dsr.state import Binding
from airflow_aisec.exceptions import DsrError

if TYPE_CHECKING:
    from airflow_aisec.dsr.context import DsrContext
    from airflow_aisec.dsr.run import Begun
    from airflow_aisec.dsr.state import StateStore


def registration(ctx: DsrContext, begun: Begun, state: StateStore) -> dict[str, Any]:
    """The registration of a begun request: safe for XCom and the approval form, identifiers sealed."""
    public = begun.public(ctx)
    return {
        "request": public["request"],
        "found": public["found"],
        "matches": dict(public["datasets"].items()),
        "summary": summary(public),
        "state": state.seal(begun.binding, begun.resolution.identifiers),
    }


def summary(public: Mapping[str, Any]) -> str:
    """A short Markdown summary for the approver: which datasets hold how many of the subject's rows."""
    request = public["request"]
    lines = [
        f"**{request['type']}** request `{request['request_id']}` (subject `{request['subject'][:24]}…`, "
        f"by {request['identity_type']}), due {request['deadline'][:10]}"
        + (" — dry run" if request["dry_run"] else ""),
        "",
    ]
    for name, match in public["datasets"].items():
        files = len(match["files"])
        lines.append(f"- {name}: {match['rows']} row(s), {match['mentions']} mention(s) in {files} file(s)")
    if not public["found"]:
        lines.append("- the subject was not found in any dataset")
    return "\n".join(lines)


def checked(registered: Any) -> dict[str, Any]:
    """``registered`` (what a later task received) when it is a registration; ``DsrError`` otherwise."""
    if not isinstance(registered, dict) or "state" not in registered:
        raise DsrError(f"the request was not registered (task {REGISTER_TASK!r} left no result)")
    return registered


def received_at(registered: Mapping[str, Any]) -> dt.datetime:
    """When the registered request was received (its deadline runs from then)."""
    return dt.datetime.fromisoformat(registered["request"]["received_at"])


def resolution_of(ctx: DsrContext, state: StateStore, registered: Mapping[str, Any]) -> Resolution:
    """The resolution the register task found, its identifiers unsealed for the request of ``ctx`` (a
    registration of another request does not open)."""
    ids = state.open(Binding.of(ctx), registered["state"])
    matches = {name: DatasetMatch.from_dict(m) for name, m in registered["matches"].items()}
    return Resolution(ctx.request.identity_type, ids, matches)

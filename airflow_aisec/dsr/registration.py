"""What a request's first task hands the others when the steps run as separate tasks (the DAGs).

``begin`` runs in the register task; its *registration* (XCom ``registration``) holds the request as
recorded, where the subject was found, a summary for the approver, and the subject's identifiers sealed by
the ``StateStore`` (never a raw identifier), and the plan that splits large datasets into parts (file URIs
per part, ``dsr.parts``). ``mapped`` is what the DAG maps the dataset task over: one small dict per part.
The dataset and complete tasks open the registration again with ``resolution_of`` and ``plan_of``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_aisec.dsr.contract import REGISTER_TASK
from airflow_aisec.dsr.parts import Plan, mapped_parts, part_count
from airflow_aisec.dsr.resolve import DatasetMatch, Resolution
from airflow_aisec.dsr.state import Binding
from airflow_aisec.exceptions import DsrError

if TYPE_CHECKING:
    from airflow_aisec.dsr.context import DsrContext
    from airflow_aisec.dsr.run import Begun
    from airflow_aisec.dsr.state import StateStore


def registration(
    ctx: DsrContext, begun: Begun, state: StateStore, parts: Plan | None = None
) -> dict[str, Any]:
    """The registration of a begun request: safe for XCom and the approval form, identifiers sealed;
    ``parts`` the plan of the datasets split into parts (``Begun.plan``)."""
    public = begun.public(ctx)
    plan = dict(parts or {})
    return {
        "request": public["request"],
        "found": public["found"],
        "matches": dict(public["datasets"].items()),
        "parts": plan,
        "summary": summary(public, plan),
        "state": state.seal(begun.binding, begun.resolution.identifiers),
    }


def mapped(registered: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the dataset task is mapped over: ``{"dataset", "part", "parts"}`` per part, datasets in order."""
    return mapped_parts(list(registered["matches"]), plan_of(registered))


def plan_of(registered: Mapping[str, Any]) -> Plan:
    """The registration's plan (none in a registration made before datasets were split: one part each).

    ``DsrError`` unless every part lists files of its dataset's registered match, and no file is in two parts
    (or twice in one): each file has exactly one part to change it and settle its open intents."""
    plan = registered.get("parts") or {}
    if not isinstance(plan, Mapping) or not all(
        isinstance(p, list) and all(isinstance(f, list) for f in p) for p in plan.values()
    ):
        raise DsrError(
            "the registration's parts are not lists of file URIs per part; register the request again"
        )
    checked = {str(name): [[str(uri) for uri in files] for files in p] for name, p in plan.items()}
    matches = registered.get("matches") or {}
    for name, parts in checked.items():
        _check_parts(name, parts, matches.get(name))
    return checked


def _check_parts(name: str, parts: list[list[str]], match: Mapping[str, Any] | None) -> None:
    if not isinstance(match, Mapping):
        raise DsrError(
            f"the registration splits dataset {name} into parts, but did not find the subject there; "
            "register the request again"
        )
    matched = {str(f.get("uri")) for f in match.get("files") or [] if isinstance(f, Mapping)}
    owner: dict[str, int] = {}
    for index, files in enumerate(parts):
        for uri in files:
            if uri not in matched:
                raise DsrError(
                    f"dataset {name}: part {index + 1}/{len(parts)} lists {uri}, which is not a file the "
                    "registration found the subject in; register the request again"
                )
            if uri in owner:
                where = f"part {owner[uri] + 1}/{len(parts)} and in part {index + 1}/{len(parts)}"
                raise DsrError(
                    f"dataset {name}: {uri} is in {where} (a file belongs to one part only); register the "
                    "request again"
                )
            owner[uri] = index


def summary(public: Mapping[str, Any], parts: Plan | None = None) -> str:
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
        split = part_count(parts or {}, name)
        lines.append(
            f"- {name}: {match['rows']} row(s), {match['mentions']} mention(s) in {files} file(s)"
            + (f", in {split} parts" if split > 1 else "")
        )
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

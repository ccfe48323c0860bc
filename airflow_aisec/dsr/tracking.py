"""Which requests are open and when they are due, read back from the audit log.

Every request is recorded when it is received (``stage: request``, with ``received_at`` and ``deadline``)
and when it completes (``stage: complete``, with its status); nothing else is needed to track the
statutory deadline: a request not yet answered (never completed, or only failed or dry runs) past its
deadline is ``overdue``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_aisec.audit.log import AuditLog, Entry

_ACTIONS = ("dsr.access", "dsr.erasure", "dsr.rectification")
# Statuses that do not answer the request: the deadline still runs.
_PENDING = ("open", "failed", "dry_run")


def requests(
    audit: AuditLog, now: dt.datetime | None = None, entries: Iterable[Entry] | None = None
) -> list[dict[str, Any]]:
    """One row per request: id, type, subject pseudonym, received, deadline, status, days left; from every
    entry of the log, or from ``entries`` (oldest first) when the caller found the request entries itself."""
    now = now or dt.datetime.now(dt.UTC)
    found: dict[str, dict[str, Any]] = {}
    for entry in audit.entries() if entries is None else entries:
        data = entry.data
        details = data.get("details") or {}
        if data.get("action") not in _ACTIONS or "request_id" not in details:
            continue
        rid = details["request_id"]
        if details.get("stage") == "request":
            found[rid] = {
                "request_id": rid,
                "type": details.get("type"),
                "subject": data.get("subject"),
                "received_at": details.get("received_at"),
                "deadline": details.get("deadline"),
                "status": "open",
                "completed_at": None,
                "entry": entry.index,
            }
        elif details.get("stage") == "complete" and rid in found:
            found[rid]["status"] = details.get("status")
            found[rid]["completed_at"] = data.get("time")
    for row in found.values():
        deadline = dt.datetime.fromisoformat(row["deadline"]) if row["deadline"] else None
        row["days_left"] = (deadline - now).days if deadline is not None else None
        row["pending"] = row["status"] in _PENDING
        if row["pending"] and deadline is not None and now > deadline:
            row["status"] = "overdue"
    return sorted(found.values(), key=lambda r: (r["deadline"] or "", r["request_id"]))

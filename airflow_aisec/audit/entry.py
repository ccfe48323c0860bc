"""Audit entries: canonical JSON bytes, who did it, and subject pseudonyms.

The bytes of an entry are what the Merkle tree commits to, so they must be reproducible: keys sorted,
no insignificant whitespace, UTF-8, no NaN. An entry never holds a raw subject identifier, only its keyed
HMAC pseudonym, and never key material or row values.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import socket
from collections.abc import Mapping
from typing import Any

from airflow_aisec.audit.flows import LINEAGE, lineage_terms
from airflow_aisec.exceptions import AuditLogError

ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
OUTCOMES = ("success", "failure", "skipped", "intent", "noop")
KNOWN_ACTIONS = (
    "pii.scan",
    "pii.mask",
    "dataset.encrypt",
    "dataset.decrypt",
    "dataset.write",
    "key.rotate",
    "key.shred",
    "retention.delete",
    "dsr.access",
    "dsr.erasure",
    "dsr.rectification",
    "dsr.index",
    "model.sign",
    "model.verify",
    "model.card",
    "policy.violation",
    "task.outcome",
    "catalog.validate",
    "dataset.inventory",
    "audit.verify",
    "purpose.check",
    "consent.filter",
    "consent.grant",
    "consent.withdraw",
    "bias.check",
    "drift.check",
    "anomaly.check",
)
# Fields an entry may carry besides those the log fills in (index, time, prev).
FIELDS = (
    "action",
    "actor",
    "dataset",
    "inputs",
    "outputs",
    "rows",
    "columns",
    "outcome",
    "subject",
    "details",
)


def canonical_json(value: Any) -> bytes:
    """Reproducible JSON bytes: sorted keys, compact separators, UTF-8, no NaN or infinity."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise AuditLogError(f"audit entry is not plain JSON data: {e}") from None
    return text.encode("utf-8")


def current_actor() -> dict[str, Any]:
    """Who is acting: the Airflow task running this code, else the CLI user and host."""
    dag_id = os.environ.get("AIRFLOW_CTX_DAG_ID")
    if dag_id:
        return {
            "kind": "airflow",
            "dag_id": dag_id,
            "run_id": os.environ.get("AIRFLOW_CTX_DAG_RUN_ID"),
            "task_id": os.environ.get("AIRFLOW_CTX_TASK_ID"),
            "try": _int(os.environ.get("AIRFLOW_CTX_TRY_NUMBER")),
        }
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"kind": "cli", "user": user, "host": socket.gethostname()}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def now() -> str:
    """The current UTC time, ISO-8601 with microseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def check_fields(action: str, fields: Mapping[str, Any]) -> None:
    """Reject malformed actions, unknown fields and unknown outcomes before anything is written."""
    if not ACTION.match(action):
        raise AuditLogError(f"invalid audit action {action!r}: use dotted lower-case names like 'pii.mask'")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise AuditLogError(f"unknown audit entry field(s): {', '.join(unknown)}")
    outcome = fields.get("outcome", "success")
    if outcome not in OUTCOMES:
        raise AuditLogError(f"invalid outcome {outcome!r} (expected one of {', '.join(OUTCOMES)})")


TERM_KINDS = ("subject", "request", "run", "dataset", "dag", "action", "outcome", LINEAGE)
"""What an entry is searchable by, from the usually most selective to the least."""
ADDED_KINDS = (LINEAGE,)
"""Kinds added after logs with search terms existed: a log holds them for every entry once its settings say
so (``terms.<kind>``), which the first writer to open it with this version does (``DerivedTables``)."""


def entry_terms(data: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (kind, value) search terms of an entry: its action (and each dotted prefix, ``dsr.``), outcome,
    every dataset it names (its own, its inputs' and outputs'), its DAG and run, its request id, and every
    subject pseudonym it carries (``subject`` and ``details.identities``), and its lineage
    (``flows.lineage_terms``)."""
    found: set[tuple[str, str]] = set()

    def add(kind: str, value: object) -> None:
        if isinstance(value, str) and value:
            found.add((kind, value))

    action = data.get("action")
    if isinstance(action, str):
        add("action", action)
        parts = action.split(".")
        for i in range(1, len(parts)):
            add("action", ".".join(parts[:i]) + ".")
    add("outcome", data.get("outcome"))
    add("dataset", data.get("dataset"))
    for side in ("inputs", "outputs"):
        for item in _dicts(data.get(side)):
            add("dataset", item.get("dataset"))
    actor = data.get("actor")
    if isinstance(actor, Mapping):
        add("dag", actor.get("dag_id"))
        add("run", actor.get("run_id"))
    add("subject", data.get("subject"))
    details = data.get("details")
    if isinstance(details, Mapping):
        add("request", details.get("request_id"))
        identities = details.get("identities")
        for identity in identities if isinstance(identities, list) else ():
            add("subject", identity)
    found |= lineage_terms(data, {value for kind, value in found if kind == "dataset"})
    return found


def _dicts(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []

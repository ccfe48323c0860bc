"""Airflow listener: the outcome of each task with Asset inlets or outlets goes into the audit log.

aisec's own operators record their steps themselves; this covers every other task that touches data the
catalog describes, so the lineage in the audit log has no holes. A listener must never fail a task, so
problems writing the entry are logged and swallowed.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)


def _refs(objects: Any) -> list[dict[str, str]]:
    found = []
    for obj in objects or []:
        uri, name = getattr(obj, "uri", None), getattr(obj, "name", None)
        if uri or name:
            found.append({k: str(v) for k, v in {"uri": uri, "dataset": name}.items() if v})
    return found


def record_task_outcome(task_instance: Any, outcome: str, error: object = None) -> int | None:
    """Append a ``task.outcome`` entry for a task with Asset inlets/outlets; return its index."""
    from airflow_aisec.hooks.audit import AuditLogHook
    from airflow_aisec.operators.base import AisecBaseOperator, task_actor

    task = getattr(task_instance, "task", None)
    if task is None or isinstance(task, AisecBaseOperator):
        return None
    inputs, outputs = _refs(getattr(task, "inlets", None)), _refs(getattr(task, "outlets", None))
    if not inputs and not outputs:
        return None
    actor = task_actor({"ti": task_instance})
    key = "/".join(str(actor.get(k)) for k in ("dag_id", "run_id", "task_id", "map_index", "try"))
    details: dict[str, Any] = {"operator": type(task).__name__}
    if error is not None:
        details["error"] = type(error).__name__ if isinstance(error, BaseException) else "error"
    with AuditLogHook().get_log(actor=actor) as audit:
        return audit.append(
            "task.outcome",
            inputs=inputs or None,
            outputs=outputs or None,
            outcome=outcome,
            details=details,
            idempotency_key=f"{key}/task.outcome",
        )


def _safely(task_instance: Any, outcome: str, error: object = None) -> None:
    try:
        record_task_outcome(task_instance, outcome, error)
    except Exception:
        log.warning("aisec: the task outcome could not be recorded in the audit log", exc_info=True)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    """Record a successful task."""
    _safely(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    """Record a failed task (the error's type only: its message could quote data)."""
    _safely(task_instance, "failure", error)

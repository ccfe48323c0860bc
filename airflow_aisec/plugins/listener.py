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


def _catalog_locations() -> dict[str, str]:
    """Catalog dataset → its location, so an Asset named after a dataset is recorded where the data is (the
    same name as the aisec operators give it); empty when the catalog cannot be read."""
    try:
        from airflow_aisec import config
        from airflow_aisec.catalog import load_catalog

        catalog = load_catalog(config.catalog_path(), config.catalog_vars())
    except Exception:
        log.debug("aisec: no catalog to name Assets by", exc_info=True)
        return {}
    return {name: dataset.uri for name, dataset in catalog.datasets.items()}


def _ref(obj: Any, locations: dict[str, str]) -> dict[str, str] | None:
    """An Asset as an entry's input or output: a catalog dataset by name, or the Asset's own URI."""
    from airflow_aisec.lineage import openlineage_name

    uri, name = getattr(obj, "uri", None), getattr(obj, "name", None)
    if name and name in locations:
        return {"uri": locations[name], "dataset": str(name), "location": locations[name]}
    if uri and "://" in str(uri):
        wanted = openlineage_name(str(uri))
        for dataset, where in locations.items():
            if openlineage_name(where) == wanted:
                return {"uri": str(uri), "dataset": dataset, "location": where}
    return {k: str(v) for k, v in {"uri": uri, "dataset": name}.items() if v} or None


def _refs(objects: Any, locations: dict[str, str] | None = None) -> list[dict[str, str]]:
    found = [_ref(obj, locations or {}) for obj in objects or []]
    return [ref for ref in found if ref]


def record_task_outcome(task_instance: Any, outcome: str, error: object = None) -> int | None:
    """Append a ``task.outcome`` entry for a task with Asset inlets/outlets; return its index."""
    from airflow_aisec.hooks.audit import AuditLogHook
    from airflow_aisec.operators.base import AisecBaseOperator, task_actor

    task = getattr(task_instance, "task", None)
    if task is None or isinstance(task, AisecBaseOperator):
        return None
    inlets, outlets = getattr(task, "inlets", None), getattr(task, "outlets", None)
    if not inlets and not outlets:
        return None
    locations = _catalog_locations()
    inputs, outputs = _refs(inlets, locations), _refs(outlets, locations)
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

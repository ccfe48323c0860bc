"""The base of every aisec operator: audited steps and OpenLineage facets through one shared helper."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_aisec.lineage import StepLineage

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.audit import AuditLog


def task_actor(context: Context | dict[str, Any]) -> dict[str, Any]:
    """The audit actor of the running task instance."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return {}
    return {
        "kind": "airflow",
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "try": getattr(ti, "try_number", None),
    }


class AisecBaseOperator(BaseOperator):
    """
    Records what the operator does in the audit log and reports lineage to OpenLineage.

    Subclasses call ``self.record(context, action, step=..., **fields)`` for each step and fill
    ``self.lineage``; entries carry the task instance as actor and an idempotency key, so a retried task does
    not duplicate what an earlier try already recorded. The log is checkpointed when the task ends.

    :param audit_conn_id: Airflow connection of the audit log; default ``[aisec] audit_log``.
    """

    def __init__(self, *, audit_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audit_conn_id = audit_conn_id
        self.lineage = StepLineage()
        self._audit: AuditLog | None = None

    @contextlib.contextmanager
    def audited(self, context: Context) -> Iterator[AuditLog]:
        """Keep the audit log open for the block and sign a checkpoint when it ends."""
        from airflow_aisec.hooks.audit import AuditLogHook

        self._audit = AuditLogHook(self.audit_conn_id).get_log(actor=task_actor(context))
        try:
            yield self._audit
        finally:
            audit, self._audit = self._audit, None
            audit.close()

    def record(self, context: Context, action: str, *, step: str = "", **fields: Any) -> int:
        """Append an entry for this task; the same step of the same task instance is recorded once."""
        if self._audit is None:
            with self.audited(context):
                return self.record(context, action, step=step, **fields)
        actor = task_actor(context)
        if not actor:  # run outside a task instance: nothing to deduplicate against
            return self._audit.append(action, **fields)
        key = "/".join(str(actor[part]) for part in ("dag_id", "run_id", "task_id", "map_index"))
        if fields.get("outcome") == "failure":
            step = f"{step}/try-{actor.get('try')}"  # every failed try is worth its own entry
        return self._audit.append(action, idempotency_key=f"{key}/{action}/{step}", **fields)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs, outputs and column lineage (masked columns flagged) of what the task did."""
        from airflow_aisec.operators.openlineage import operator_lineage

        return operator_lineage(self.lineage)

"""What the operators read of Airflow's task instance, without Airflow's database.

A ``TaskRun`` stands for one DAG run: each ``context(task_id)`` is the context of one of its task instances,
and they share one XCom. ``AuditReader`` reads back the audit log the operators wrote.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from airflow_aisec.audit import AuditLog, Entry


@dataclasses.dataclass
class TaskInstance:
    """A task instance of a ``TaskRun``: the fields the audit actor is made of, and XCom push and pull."""

    run: TaskRun
    task_id: str
    map_index: int = -1
    try_number: int = 1

    @property
    def dag_id(self) -> str:
        return self.run.dag_id

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def xcom_push(self, key: str, value: Any) -> None:
        self.run.xcom[(self.task_id, self.map_index, key)] = value

    def xcom_pull(self, task_ids: str | list[str], key: str = "return_value") -> Any:
        """One task's value for a task id, the values of every map index for a list of them (as Airflow)."""
        wanted = [task_ids] if isinstance(task_ids, str) else task_ids
        found = [v for (task, _, k), v in sorted(self.run.xcom.items()) if task in wanted and k == key]
        if isinstance(task_ids, str):
            return found[0] if found else None
        return found


@dataclasses.dataclass
class TaskRun:
    """One DAG run the tasks of a test belong to."""

    dag_id: str = "aisec_unit"
    run_id: str = "manual__unit-1"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    xcom: dict[tuple[str, int, str], Any] = dataclasses.field(default_factory=dict)

    def pull(self, task_ids: str | list[str], key: str = "return_value") -> Any:
        """What a later task of the run would pull from XCom."""
        return TaskInstance(self, "reader").xcom_pull(task_ids, key)

    def context(self, task_id: str, map_index: int = -1, try_number: int = 1, **extra: Any) -> Any:
        """The context ``execute`` gets for the task instance (task id, map index, try)."""
        ti = TaskInstance(self, task_id, map_index, try_number)
        return {"ti": ti, "task_instance": ti, "run_id": self.run_id, "params": self.params, **extra}


@dataclasses.dataclass
class AuditReader:
    """Reads back the audit log the operators of a test wrote."""

    uri: str

    def entries(self, action: str | None = None) -> list[Entry]:
        """Every entry, or those of ``action`` (none when nothing created the log)."""
        if not Path(self.uri.removeprefix("sqlite:///")).exists():
            return []
        with AuditLog.open(self.uri, create=False) as log:
            return [e for e in log.entries() if action is None or e.action == action]

    def keys(self, prefix: str = "") -> list[str]:
        """The idempotency keys starting with ``prefix``, oldest first."""
        with AuditLog.open(self.uri, create=False) as log:
            return [key for key, _ in log.keyed(prefix)]

"""What a policy finds: a ``Violation`` (file, DAG, task, rule, what to change), the rules' stable ids, and
the one text that lists every violation of a DAG in its import error."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

IMPORT_ERROR: Final = "AISEC-P000"
PURPOSE: Final = "AISEC-P001"
OWNER: Final = "AISEC-P002"
RAW_PII_OUTSIDE: Final = "AISEC-P003"
CATALOG: Final = "AISEC-P004"

RULES: Final[dict[str, str]] = {
    IMPORT_ERROR: "the DAG file imports without errors",
    PURPOSE: "a task with catalog Asset inlets declares a purpose each of those datasets allows",
    OWNER: "a DAG that touches personal data has an owner other than Airflow's default 'airflow'",
    RAW_PII_OUTSIDE: "a task that reads catalog personal data publishes it outside the catalog only masked "
    "or encrypted",
    CATALOG: "the catalog the policies judge by ([aisec] catalog) loads",
}


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken rule: where (file, DAG, task; None for the DAG as a whole), which rule, what to change.

    Messages name datasets, columns, Assets, tasks and settings, never a data value.
    """

    file: str
    dag_id: str
    task_id: str | None
    rule: str
    message: str

    def line(self) -> str:
        """The violation as one line of an import error: task id, rule id, what to change."""
        where = f"task {self.task_id}" if self.task_id else "DAG"
        return f"- {where}: {self.rule}: {self.message}"


def report(dag_id: str, violations: Sequence[Violation]) -> str:
    """The text of the one import error that lists every violation of a DAG."""
    count = f"{len(violations)} aisec policy violation{'' if len(violations) == 1 else 's'}"
    lines = [f"DAG {dag_id}: {count} ([aisec] policies = True; see docs/turn-on-policies.md):"]
    return "\n".join([*lines, *(v.line() for v in violations)])

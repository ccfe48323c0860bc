"""What the Airflow tests read back from a ``dag.test()`` run: task states and returned XComs."""

from __future__ import annotations

from typing import Any


def states(run: Any) -> dict[str, str]:
    """Task id → state of every task instance of the run."""
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def xcom(run: Any, task_id: str) -> Any:
    """The value ``task_id`` returned in the run (its ``return_value`` XCom), deserialized."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value")
            .one()
        )
        return XComModel.deserialize_value(row)

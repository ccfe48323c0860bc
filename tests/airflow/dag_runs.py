"""The Airflow tests' DAGs and what they read back from a ``dag.test()`` run: task states and XComs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def dag_from(path: Path, dag_id: str | None = None) -> Any:
    """The DAG ``dag_id`` (default: the file's name) defined in the DAG file ``path``."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path)).dags[dag_id or path.stem]


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


def xcoms(run: Any) -> list[tuple[str, str, Any]]:
    """Every XCom of the run as (task id, key, deserialized value)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        return [(r.task_id, r.key, XComModel.deserialize_value(r)) for r in rows]

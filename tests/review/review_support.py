"""Helpers of the view-model tests."""

from __future__ import annotations


def run_actor(dag_id: str, run_id: str, task_id: str = "t") -> dict[str, object]:
    return {"kind": "airflow", "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try": 1}

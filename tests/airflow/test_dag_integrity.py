"""Every DAG file in dags/ imports cleanly, fast, and declares an owner and tags."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


def test_there_are_example_dags() -> None:
    assert DAG_FILES, "dags/ holds no DAG file"


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert dagbag.dags


def test_every_dag_has_owner_and_tags(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        owners = {task.owner for task in dag.tasks}
        assert owners and "airflow" not in owners, f"{dag_id} has no owner ({owners})"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_each_dag_file_parses_in_under_two_seconds(path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    DagBag(dag_folder=str(DAGS / "__warm_up__"))  # imports Airflow itself once
    start = time.perf_counter()
    bag = DagBag(dag_folder=str(path))
    elapsed = time.perf_counter() - start
    assert bag.import_errors == {}
    assert elapsed < 2.0, f"{path.name} took {elapsed:.2f}s to parse"

"""Cluster policies: aisec's rules applied to every DAG as Airflow parses it (``[aisec] policies``), and to a
DAGs folder by a CI gate (``check_dags_folder``).

Airflow loads the policy hook (``plugin``) in every one of its processes, so importing this package is light:
it imports neither Airflow nor the catalog until ``check_dag`` or ``check_dags_folder`` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_aisec.policies.violations import (
    CATALOG,
    IMPORT_ERROR,
    OWNER,
    PURPOSE,
    RAW_PII_OUTSIDE,
    RULES,
    Violation,
    report,
)

__all__ = [
    "CATALOG",
    "IMPORT_ERROR",
    "OWNER",
    "PURPOSE",
    "RAW_PII_OUTSIDE",
    "RULES",
    "Violation",
    "check_dag",
    "check_dags_folder",
    "report",
]

if TYPE_CHECKING:
    from airflow_aisec.policies.folder import check_dags_folder
    from airflow_aisec.policies.rules import check_dag


def __getattr__(name: str) -> Any:
    if name == "check_dags_folder":
        from airflow_aisec.policies.folder import check_dags_folder

        return check_dags_folder
    if name == "check_dag":
        from airflow_aisec.policies.rules import check_dag

        return check_dag
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

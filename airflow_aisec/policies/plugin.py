"""aisec's cluster policy, registered through Airflow's ``airflow.policy`` entry point.

Off unless ``[aisec] policies`` is True. When on, every DAG is judged as the DagBag loads it, and a DAG that
breaks any rule raises one ``AirflowClusterPolicyViolation`` listing every violation of every task, which
Airflow shows as the file's import error (the DAG is not loaded).
"""

from __future__ import annotations

import contextvars
from typing import Any

from airflow.exceptions import AirflowClusterPolicyViolation
from airflow.policies import hookimpl

from airflow_aisec import config
from airflow_aisec.exceptions import ConfigError
from airflow_aisec.policies.violations import CATALOG, Violation, report

# Set while ``check_dags_folder`` parses a folder: it applies the rules itself, to every DAG, whatever the
# setting, and a DAG refused here would never reach it.
suspended: contextvars.ContextVar[bool] = contextvars.ContextVar("aisec_policies_suspended", default=False)


def policy_violations(dag: Any) -> list[Violation]:
    """Every violation of ``dag`` against ``[aisec] catalog``; a DAG that names no Asset or dataset is not
    judged (and needs no catalog)."""
    # Imported here: Airflow imports this module in every process it starts, policies on or off.
    from airflow_aisec.policies.catalog import CatalogProblem, policy_catalog
    from airflow_aisec.policies.rules import check_dag
    from airflow_aisec.policies.tasks import names_data

    if not any(names_data(task) for task in dag.tasks):
        return []
    try:
        catalog = policy_catalog()
    except CatalogProblem as e:
        return [Violation(str(dag.fileloc or ""), dag.dag_id, None, CATALOG, f"{e}: fix the catalog")]
    return check_dag(dag, catalog)


@hookimpl
def dag_policy(dag: Any) -> None:
    """Refuse a DAG that breaks any aisec policy, listing all its violations in one import error."""
    if suspended.get():
        return
    try:
        if not config.get_bool("policies"):
            return
    except ConfigError as e:
        raise AirflowClusterPolicyViolation(str(e)) from None
    violations = policy_violations(dag)
    if violations:
        raise AirflowClusterPolicyViolation(report(dag.dag_id, violations))

"""The rules, applied to one parsed DAG against the catalog; every violation of every task is returned.

- ``AISEC-P001``: a task whose Asset inlets include catalog datasets declares a purpose, and each of those
  datasets allows it (decided by ``governance.decide_purpose``, the decision every read takes at run time).
- ``AISEC-P002``: a DAG with a task that reads or writes a catalog dataset with PII columns has an owner:
  each such task's ``owner`` is neither ``airflow`` nor ``[operators] default_owner``.
- ``AISEC-P003``: a task that reads a catalog dataset with PII columns and publishes an Asset the catalog does
  not describe is one of aisec's masking or encrypting operators (``PIIMaskOperator``,
  ``EncryptDatasetOperator``); any other task would put raw personal data where requests and retention do
  not reach it.
"""

from __future__ import annotations

from typing import Any

from airflow_aisec.catalog import Catalog
from airflow_aisec.governance import decide_purpose
from airflow_aisec.policies.tasks import TaskData, is_a, names_data, task_data, task_purpose
from airflow_aisec.policies.violations import OWNER, PURPOSE, RAW_PII_OUTSIDE, Violation

AIRFLOW_DEFAULT_OWNER = "airflow"
# The operators whose output holds the data masked or encrypted, which may therefore leave the catalog.
PROTECTING = (
    "airflow_aisec.operators.pii.PIIMaskOperator",
    "airflow_aisec.operators.crypto.EncryptDatasetOperator",
)


def check_dag(dag: Any, catalog: Catalog) -> list[Violation]:
    """Every violation of ``dag``: the purpose and publishing rules task by task, then the owner rule."""
    found: list[Violation] = []
    touching: list[str] = []
    for task in dag.tasks:
        if not names_data(task):
            continue
        data = task_data(task, catalog)
        found += _purpose(dag, task, data, catalog)
        found += _raw_pii_outside(dag, task, data, catalog)
        if _personal(data.touches, catalog) and not _has_owner(task):
            touching.append(task.task_id)
    if touching:
        found.append(_owner(dag, touching))
    return found


def _violation(dag: Any, task_id: str | None, rule: str, message: str) -> Violation:
    return Violation(str(getattr(dag, "fileloc", "") or ""), dag.dag_id, task_id, rule, message)


def _purpose(dag: Any, task: Any, data: TaskData, catalog: Catalog) -> list[Violation]:
    if not data.inlet_datasets:
        return []
    purpose = task_purpose(task)
    if purpose is None:
        names = ", ".join(repr(d) for d in data.inlet_datasets)
        return [
            _violation(
                dag,
                task.task_id,
                PURPOSE,
                f"reads catalog dataset(s) {names} (Asset inlets) without declaring a purpose: set "
                "aisec_purpose in the DAG's default_args or params (or purpose= on an aisec operator) to a "
                "purpose each dataset allows",
            )
        ]
    found = []
    for name in data.inlet_datasets:
        decision = decide_purpose(catalog, name, purpose, require=True)
        if not decision.allowed:
            found.append(
                _violation(
                    dag,
                    task.task_id,
                    PURPOSE,
                    f"{decision.error()}: declare a purpose the dataset allows, or add this one (or one "
                    "above it) to the dataset's purposes in the catalog",
                )
            )
    return found


def _personal(datasets: tuple[str, ...], catalog: Catalog) -> list[str]:
    return [d for d in datasets if catalog.datasets[d].pii_columns]


def _raw_pii_outside(dag: Any, task: Any, data: TaskData, catalog: Catalog) -> list[Violation]:
    personal = _personal(data.reads, catalog)
    if not personal or not data.outside or any(is_a(task, name) for name in PROTECTING):
        return []
    read = ", ".join(f"{d!r} ({', '.join(sorted(catalog.datasets[d].pii_columns))})" for d in personal)
    assets = ", ".join(repr(a) for a in data.outside)
    return [
        _violation(
            dag,
            task.task_id,
            RAW_PII_OUTSIDE,
            f"reads personal data of catalog dataset(s) {read} and publishes Asset(s) {assets}, which the "
            "catalog does not describe, unmasked and unencrypted: mask it with PIIMaskOperator or encrypt it "
            "with EncryptDatasetOperator before publishing, or describe the output as a catalog dataset "
            "(with its PII columns) so requests and retention reach it",
        )
    ]


def _default_owners() -> set[str]:
    from airflow.configuration import conf

    return {AIRFLOW_DEFAULT_OWNER, str(conf.get("operators", "default_owner", fallback="") or "").lower()}


def _has_owner(task: Any) -> bool:
    owner = str(getattr(task, "owner", "") or "").strip().lower()
    return bool(owner) and owner not in _default_owners()


def _owner(dag: Any, tasks: list[str]) -> Violation:
    return _violation(
        dag,
        None,
        OWNER,
        f"touches personal data (tasks {', '.join(tasks)}) but has no owner (Airflow's default 'airflow'): "
        "set owner in the DAG's default_args to the team that answers for it",
    )

"""Daily governance check: the privacy catalog is valid and matches the data in the lake.

Runs on the configured catalog (``[aisec] catalog``) and its variables (``[aisec] catalog_vars``). A broken
catalog, a dataset location that is missing, empty or cannot be read, a copy of catalog data that the audit
log's lineage knows but the catalog does not list, or a column the catalog does not declare fails the run,
so retention and erasure DAGs never act on a catalog that no longer describes the data.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.catalog import CatalogValidateOperator, LakeInventoryOperator

with DAG(
    dag_id="aisec_catalog_check",
    description="Validate the privacy catalog and check that it matches the lake",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"owner": "privacy-office", "retries": 0},
    tags=["aisec", "governance"],
    doc_md=__doc__,
):
    # lineage: copies that DAGs wrote of catalog data (landing folders, say) must be in the catalog too.
    validate = CatalogValidateOperator(task_id="validate_catalog", lineage=True)
    inventory = LakeInventoryOperator(task_id="inventory_lake", fail_on_drift=True)
    validate >> inventory

"""A DAG scanning the support tickets for ``newsletter``, a purpose that needs consent: the scan reads only
the rows of customers who consented."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.pii import PIIScanOperator

with DAG(
    dag_id="aisec_test_consent_scan",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 0, "aisec_purpose": "newsletter"},
):
    PIIScanOperator(
        task_id="scan_tickets",
        dataset="support_tickets",
        mode="patterns",
        sample=20,
        fail_on_undeclared=False,
    )

"""Two DAGs scanning the support tickets, each with its purpose in ``default_args``: ``support``, which the
dataset serves, and ``marketing.advertising``, which it does not."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.pii import PIIScanOperator

for name, purpose in (("allowed", "support"), ("refused", "marketing.advertising")):
    with DAG(
        dag_id=f"aisec_test_purpose_{name}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        default_args={"retries": 0, "aisec_purpose": purpose},
    ):
        PIIScanOperator(
            task_id="scan_tickets",
            dataset="support_tickets",
            mode="patterns",
            sample=20,
            fail_on_undeclared=False,
        )

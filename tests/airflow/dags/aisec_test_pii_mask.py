"""Test DAGs: ``PIIMaskOperator`` on a catalog dataset, and on data no catalog describes (paths from conf)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.pii import PIIMaskOperator

_ARGS = {
    "schedule": None,
    "start_date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    "default_args": {"owner": "tests", "retries": 0},
    "tags": ["tests"],
}

with DAG("aisec_test_mask_customers", **_ARGS):  # type: ignore[arg-type]
    PIIMaskOperator(task_id="mask", dataset="customers", output_uri="{{ dag_run.conf['output'] }}")

with DAG("aisec_test_mask_without_catalog", **_ARGS):  # type: ignore[arg-type]
    PIIMaskOperator(
        task_id="mask_by_rules",
        input_uri="{{ dag_run.conf['input'] }}",
        output_uri="{{ dag_run.conf['by_rules'] }}",
        columns={"email": "pseudonymize", "score": {"strategy": "generalize", "bucket": 10}},
        output_name="leads_masked",
    )
    PIIMaskOperator(
        task_id="mask_what_the_scan_finds",
        input_uri="{{ dag_run.conf['input'] }}",
        output_uri="{{ dag_run.conf['by_scan'] }}",
        mode="patterns",
    )

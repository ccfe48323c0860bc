"""Test DAG: one dataset masked by a single task and fanned out by file (two files a group), side by side."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.fanout import mask_in_parallel
from airflow_aisec.operators.pii import PIIMaskOperator

with DAG(
    "aisec_test_fanout",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={"owner": "tests", "retries": 0},
    tags=["tests"],
):
    PIIMaskOperator(
        task_id="mask_single",
        dataset="support_tickets",
        mode="patterns",
        output_uri="{{ dag_run.conf['single'] }}",
    )
    mask_in_parallel(
        "mask_fanned",
        dataset="support_tickets",
        mode="patterns",
        output_uri="{{ dag_run.conf['fanned'] }}",
        max_files_per_task=2,
    )

"""Test DAG: mask a catalog dataset, then encrypt the masked copy; OpenLineage tags show where PII is."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.crypto import EncryptDatasetOperator
from airflow_aisec.operators.pii import PIIMaskOperator

with DAG(
    "aisec_test_pii_tags",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={"owner": "tests", "retries": 0},
    tags=["tests"],
):
    mask = PIIMaskOperator(
        task_id="mask", dataset="customers", mode="patterns", output_uri="{{ dag_run.conf['masked'] }}"
    )
    encrypt = EncryptDatasetOperator(
        task_id="encrypt",
        dataset="customers",
        input_uri="{{ dag_run.conf['masked'] }}",
        output_uri="{{ dag_run.conf['encrypted'] }}",
    )
    mask >> encrypt

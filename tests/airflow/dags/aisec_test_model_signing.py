"""Test DAG: ``SignModelOperator`` then ``VerifyModelOperator`` (model, key, catalog and lake from conf)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.model import SignModelOperator, VerifyModelOperator

with DAG(
    "aisec_test_model_signing",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={"owner": "tests", "retries": 0},
    tags=["tests"],
):
    sign = SignModelOperator(
        task_id="sign_model",
        model_path="{{ dag_run.conf['model'] }}",
        key="{{ dag_run.conf['key'] }}",
        inputs=["customers", "orders"],
        model_name="fraud-detector",
        catalog="{{ dag_run.conf['catalog'] }}",
        variables={"lake": "{{ dag_run.conf['lake'] }}"},
    )
    verify = VerifyModelOperator(
        task_id="verify_model",
        model_path="{{ dag_run.conf['model'] }}",
        key="{{ dag_run.conf['key'] }}",
    )
    sign >> verify

"""Test DAG: ``BiasCheckOperator`` failing, soft-failing and passing (catalog and lake from conf)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.fairness import BiasCheckOperator

CATALOG = {"catalog": "{{ dag_run.conf['catalog'] }}", "variables": {"lake": "{{ dag_run.conf['lake'] }}"}}

with DAG(
    "aisec_test_bias_check",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={"owner": "tests", "retries": 0},
    tags=["tests"],
):
    BiasCheckOperator(
        task_id="gender_strict", dataset="scores", prediction_column="approved", label_column="repaid",
        protected_attribute="gender", **CATALOG,
    )  # fmt: skip
    BiasCheckOperator(
        task_id="gender_soft", dataset="scores", prediction_column="approved", label_column="repaid",
        protected_attribute="gender", soft_fail=True, **CATALOG,
    )  # fmt: skip
    BiasCheckOperator(
        task_id="ethnicity", dataset="scores", prediction_column="approved", protected_attribute="ethnicity",
        **CATALOG,
    )  # fmt: skip

"""Test DAG: ``CatalogValidateOperator`` checking the catalog against the data (catalog, lake from conf)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.catalog import CatalogValidateOperator

with DAG(
    "aisec_test_check_data",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={"owner": "tests", "retries": 0},
    tags=["tests"],
):
    CatalogValidateOperator(
        task_id="validate_catalog",
        catalog="{{ dag_run.conf['catalog'] }}",
        variables={"lake": "{{ dag_run.conf['lake'] }}"},
        check_data=True,
    )

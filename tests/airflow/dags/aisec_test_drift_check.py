"""Test DAG: ``DriftCheckOperator`` failing, soft-failing and passing, ``InputAnomalyOperator`` passing
(the reference and current folders from conf)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.drift import DriftCheckOperator, InputAnomalyOperator

REF, DRIFTED, STEADY = (
    "{{ dag_run.conf['ref'] }}",
    "{{ dag_run.conf['drifted'] }}",
    "{{ dag_run.conf['steady'] }}",
)

with DAG(
    "aisec_test_drift_check",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={"owner": "tests", "retries": 0},
    tags=["tests"],
):
    DriftCheckOperator(task_id="drifted", reference=REF, current=DRIFTED, drift_share=0.4)
    DriftCheckOperator(
        task_id="drifted_soft", reference=REF, current=DRIFTED, drift_share=0.4, soft_fail=True
    )
    DriftCheckOperator(
        task_id="steady", reference=REF, current=STEADY, report_path="{{ dag_run.conf['report'] }}"
    )
    InputAnomalyOperator(task_id="inputs", reference=REF, current=STEADY)

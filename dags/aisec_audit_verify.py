"""Hourly check that the audit log is intact: nothing changed, removed, reordered or forked.

Verifies read-only, then keeps the last verified signed checkpoint in ``[aisec] trusted_checkpoint``
(default: beside the Airflow home, ``aisec_trusted_checkpoint.txt``), replaced only after a successful
verification. Put it on storage the audit database's writers cannot change (another host or a WORM bucket,
read-only for every other task), so a rewritten or truncated history fails the next run.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.audit import AuditVerifyOperator

with DAG(
    dag_id="aisec_audit_verify",
    description="Verify the tamper-evident audit log against its signed checkpoints",
    schedule="@hourly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "security-office", "retries": 0},
    tags=["aisec", "audit", "monitoring"],
    doc_md=__doc__,
):
    AuditVerifyOperator(task_id="verify_audit_log")

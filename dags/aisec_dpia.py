"""Weekly regeneration of the DPIA and the records of processing, with what changed since the last week.

Writes into ``[aisec] governance_reports`` (default: beside the Airflow home, ``aisec_governance``):
``dpia.md``, ``dpia.html``, ``dpia.pdf``, ``dpia-cnil.json`` (the CNIL PIA tool's import), ``ropa.csv`` and
``ropa.json``; ``changes.json`` lists the datasets, purposes and PII columns added or removed since the
previous run, which the task log and the XCom summarize by name. The audit log is only read.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.governance import GovernanceReportOperator

with DAG(
    dag_id="aisec_dpia",
    description="Regenerate the DPIA and the records of processing; show what changed",
    schedule="@weekly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "privacy-office", "retries": 0},
    tags=["aisec", "governance", "dpia"],
    doc_md=__doc__,
):
    GovernanceReportOperator(task_id="regenerate_dpia")

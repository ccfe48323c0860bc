"""Daily retention enforcement: purge rows older than each dataset's ``keep_for``, honouring legal holds.

Rules come from the privacy catalog (``retention: {column, keep_for}``), measured from the run's logical date.
Only files holding expired rows are rewritten; wholly expired files are deleted; held data is skipped and the
skip recorded with its reason. The work fans out by file (dynamic task mapping): a listing task plans every
dataset once, a mapped task applies each part of a dataset's files, and a combine task records one result
per dataset. Every deletion is in the audit log (``aisec audit show --action retention.delete``).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.fanout import retention_in_parallel

with DAG(
    dag_id="aisec_retention_enforcement",
    description="Purge expired rows and files by the catalog's retention rules",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "privacy-office", "retries": 0},
    tags=["aisec", "retention", "privacy"],
    doc_md=__doc__,
):
    # One mapped task per part of each dataset's files to change, spread over the executor's workers.
    retention_in_parallel("enforce_retention")

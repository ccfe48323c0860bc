"""Daily refresh of the subject index: data-subject requests then read only the files that may hold a subject.

For every file of every dataset with identity or reference columns, the index keeps Bloom filters of keyed
hashes of those columns' values (no identifier is stored). Files indexed at their current version are kept;
new and changed files are indexed; vanished ones dropped. A file the index does not cover is simply read by
requests, so a stale index never hides a subject.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.dsr.contract import INDEX_DAG_ID
from airflow_aisec.operators.dsr import DsrIndexOperator

with DAG(
    dag_id=INDEX_DAG_ID,
    description="Refresh the subject index that lets data-subject requests skip files",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "privacy-office", "retries": 1, "retry_delay": dt.timedelta(minutes=5)},
    tags=["aisec", "dsr", "privacy"],
    doc_md=__doc__,
):
    DsrIndexOperator(task_id="refresh_subject_index")

"""How a data team adds aisec to a pipeline it already has.

Raw support tickets land in a landing folder; ``PIIScanOperator`` checks them against the privacy catalog
and fails the run if they carry personal data the catalog does not declare (schema drift);
``PIIMaskOperator`` masks them by the catalog's rules; ``EncryptDatasetOperator`` encrypts the masked copy
for publishing, both fanned out by file (a group of files per mapped task); downstream DAGs consume it
through the Asset ``support_tickets_masked``. Every step appears in the audit log's lineage
(``aisec audit lineage support_tickets``).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, task

from airflow_aisec import config
from airflow_aisec.operators.fanout import encrypt_in_parallel, mask_in_parallel
from airflow_aisec.operators.pii import PIIScanOperator

EXPORTED_TICKETS = Asset(name="support_tickets")
RAW_TICKETS = Asset(name="support_tickets_landing")
MASKED_TICKETS = Asset(name="support_tickets_masked")
LANDING = "{{ aisec_var('lake') }}/landing/support_tickets"
MASKED = "{{ aisec_var('lake') }}/masked/support_tickets"
PUBLISHED = "{{ aisec_var('lake') }}/published/support_tickets"


def aisec_var(name: str) -> str:
    """A catalog variable (``[aisec] catalog_vars``), resolved when a task renders its templates."""
    return config.catalog_vars()[name]


with DAG(
    dag_id="aisec_privacy_pipeline",
    description="Land support tickets, check them for undeclared PII, mask them, publish the masked Asset",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    # Every step writes to a temporary object and replaces its output atomically, so a try lost with its
    # worker (a Celery worker killed, a pod evicted) is run again from the start on another worker. Every
    # task reads the tickets to answer customers' support requests, the purpose the tickets' datasets allow.
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=15),
        "aisec_purpose": "support",
    },
    tags=["aisec", "pii", "example"],
    user_defined_macros={"aisec_var": aisec_var},
    doc_md=__doc__,
):

    @task(inlets=[EXPORTED_TICKETS], outlets=[RAW_TICKETS])
    def land_raw_tickets(landing: str) -> int:
        """The team's existing ingestion step (here: copy the day's export into the landing folder)."""
        from airflow_aisec.catalog import load_catalog
        from airflow_aisec.io import Location, list_files, read_file, write_dataset_file

        source = load_catalog(config.catalog_path(), config.catalog_vars()).dataset("support_tickets")
        rows = 0
        for info in list_files(Location.parse(source.uri), source.format):
            batches = list(read_file(info, source.format))
            if batches:
                name = info.location.name
                result = write_dataset_file(
                    Location.parse(landing), "jsonl", batches, batches[0].schema, name=name, overwrite=True
                )
                rows += result.rows
        return rows

    # A scan that finds undeclared PII fails the same way on every try: no retries.
    scan = PIIScanOperator(
        task_id="scan_for_undeclared_pii", dataset="support_tickets", input_uri=LANDING, retries=0
    )
    # Masking and encryption fan out by file: the files are listed in groups, one mapped task per group
    # (spread over the executor's workers), and a last task commits the output and records the step.
    mask = mask_in_parallel(
        "mask_pii", dataset="support_tickets", input_uri=LANDING, output_uri=MASKED, max_files_per_task=8
    )
    # Masked data is still business data: it is published encrypted at rest (streamed AES-256-GCM
    # envelopes under the catalog key pii-columns); consumers decrypt with DecryptDatasetOperator.
    encrypt = encrypt_in_parallel(
        "encrypt_for_publishing",
        max_files_per_task=8,
        dataset="support_tickets",
        input_uri=MASKED,
        output_uri=PUBLISHED,
        key="pii-columns",
        outlets=[MASKED_TICKETS],
    )
    land_raw_tickets(LANDING) >> scan >> mask >> encrypt

"""Masking inside a task, for teams that shape their data in Python rather than with operators.

``extract_customers`` reads rows of the catalog's ``customers`` dataset (for billing, a purpose the catalog
allows it: the read is checked and recorded) into a pandas DataFrame, masks them with ``mask_table`` by the
catalog's rules and writes the extract; ``orders_report`` joins orders with customers into an Arrow table
that no catalog dataset describes and masks it by explicit column rules.
Pseudonyms come from the same keyring and key names as ``PIIMaskOperator``, so a customer has the same
token in these extracts as in datasets the operator masked, and joins between them still work. Each task
records a ``pii.mask`` audit entry (counts and digests, no values) and returns counts and paths only: rows,
masked or not, never travel through XCom.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from airflow_aisec import config

LAKE = "{{ aisec_var('lake') }}"
# Why these tasks read customers and orders (a purpose both datasets allow in the catalog).
PURPOSE = "billing"
# How many rows each run extracts (the team's own selection would go here).
ROWS = 100
# Rules for the joined report: the columns a reader needs, masked; no catalog dataset describes it.
REPORT_RULES: dict[str, Any] = {
    "customer_id": "pseudonymize",
    "email": "pseudonymize",
    "full_name": "drop",
    "shipping_address": {"strategy": "generalize", "prefix": 4},
}


def aisec_var(name: str) -> str:
    """A catalog variable (``[aisec] catalog_vars``), resolved when a task renders its templates."""
    return config.catalog_vars()[name]


def _batches(name: str, columns: list[str] | None) -> Any:
    """The batches of a catalog dataset read for ``PURPOSE``: checked against the dataset's purposes and
    recorded (``purpose.check``), decrypted where the catalog says its files are encrypted."""
    from airflow_aisec.governance import read_dataset
    from airflow_aisec.hooks.kms import key_source

    catalog = load_catalog()
    return read_dataset(name, PURPOSE, catalog=catalog, columns=columns, keys=key_source(catalog))


def load_catalog() -> Any:
    """The configured catalog (``[aisec] catalog`` with ``[aisec] catalog_vars``)."""
    from airflow_aisec.catalog import load_catalog as load

    return load(config.catalog_path(), config.catalog_vars())


def _read(name: str, columns: list[str] | None = None) -> Any:
    """The first ``ROWS`` rows of a catalog dataset, as an Arrow table (streamed: the rest is not read)."""
    import pyarrow as pa

    batches, rows = [], 0
    for batch in _batches(name, columns):
        batches.append(batch)
        rows += batch.num_rows
        if rows >= ROWS:
            break
    if not batches:
        raise ValueError(f"dataset {name}: no rows")
    return pa.Table.from_batches(batches).slice(0, ROWS)


def _write(table: Any, folder: str, name: str) -> str:
    """Write ``table`` as one Parquet file in ``folder``, atomically; its URI."""
    from airflow_aisec.io import Location, write_dataset_file

    return write_dataset_file(Location.parse(folder), "parquet", table, name=name, overwrite=True).uri


with DAG(
    dag_id="aisec_taskflow_masking",
    description="Mask rows inside TaskFlow tasks with mask_table: by the catalog, and by column rules",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"owner": "data-platform", "retries": 0},
    tags=["aisec", "pii", "example"],
    user_defined_macros={"aisec_var": aisec_var},
    doc_md=__doc__,
):

    @task
    def extract_customers(lake: str) -> dict[str, Any]:
        """Customers rows masked by the catalog's rules (DataFrame in, DataFrame out)."""
        import pyarrow as pa

        from airflow_aisec.pii import mask_table

        frame = _read("customers").to_pandas()
        masked = mask_table(frame, dataset="customers", audit=True)
        uri = _write(
            pa.Table.from_pandas(masked, preserve_index=False),
            f"{lake}/analytics/customers",
            "customers.parquet",
        )
        return {"rows": len(masked), "columns": list(masked.columns), "uri": uri}

    @task
    def orders_report(lake: str) -> dict[str, Any]:
        """Orders joined with their customers, masked by explicit rules (Arrow table in, Arrow table out)."""
        from airflow_aisec.pii import mask_table

        orders = _read("orders", ["order_id", "customer_id", "shipping_address", "amount"])
        customers = _read("customers", ["customer_id", "full_name", "email"])
        joined = orders.join(customers, "customer_id")
        masked = mask_table(joined, columns=REPORT_RULES, audit=True)
        uri = _write(masked, f"{lake}/analytics/orders_report", "orders_report.parquet")
        return {"rows": masked.num_rows, "columns": masked.column_names, "uri": uri}

    extract_customers(LAKE) >> orders_report(LAKE)

"""Test DAG: a masking step recorded by aisec's shared helper, then a task publishing an Asset."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from airflow.sdk import DAG, Asset, task

from airflow_aisec.lineage import DatasetRef
from airflow_aisec.operators.base import AisecBaseOperator


class MaskCopyOperator(AisecBaseOperator):
    """A minimal masking step: copies a table with the email column replaced by a tag."""

    template_fields: Sequence[str] = ("source", "target")

    def __init__(self, *, source: str, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source, self.target = source, target

    def execute(self, context: Any) -> int:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(self.source)
        email = table.schema.get_field_index("email")
        masked = table.set_column(email, "email", pc.if_else(pc.is_valid(table["email"]), "<EMAIL>", None))
        pq.write_table(masked, self.target)
        source = DatasetRef(self.source, "raw_contacts", columns=tuple(table.column_names))
        target = DatasetRef(self.target, "contacts_masked", columns=tuple(masked.column_names))
        self.lineage.inputs, self.lineage.outputs = [source], [target]
        self.lineage.identity(source, target, masked={"email": "replaced with <EMAIL>"})
        with self.audited(context):
            return self.record(
                context,
                "pii.mask",
                dataset="contacts_masked",
                rows=table.num_rows,
                **self.lineage.entry_fields(),
            )


with DAG(
    "aisec_test_lineage",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={"owner": "tests"},
    tags=["tests"],
):
    mask = MaskCopyOperator(
        task_id="mask", source="{{ dag_run.conf['source'] }}", target="{{ dag_run.conf['target'] }}"
    )

    @task(outlets=[Asset(name="contacts_report", uri="file:///tmp/aisec-tests/report.csv")])
    def publish() -> str:
        return "published"

    mask >> publish()

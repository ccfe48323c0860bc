"""The cluster's lake writer and worker hostnames (benchmarks/cluster.py), without starting a cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from benchmarks.cluster import WORKER_ENV, worker_hostname, write_lake

if TYPE_CHECKING:
    from airflow_aisec.io import S3Options


@pytest.mark.integration
def test_lake_writer_splits_each_dataset_into_the_files_asked_keeping_every_row_once(
    s3_options: S3Options, bucket: str
) -> None:
    from airflow_aisec.io import Location, read_dataset
    from airflow_aisec.samples import FORMATS, SampleLake

    lake = SampleLake(120, seed=3)
    written = write_lake(lake, f"s3://{bucket}/lake", s3_options, 15)

    by_dataset = {d: [f for f in written if f.dataset == d] for d in FORMATS}
    chargebacks = sum(1 for _ in lake.rows("chargebacks"))  # fewer rows than files: a file per row
    assert {d: len(files) for d, files in by_dataset.items()} == {
        "customers": 15, "orders": 15, "support_tickets": 15, "chargebacks": min(15, chargebacks),
    }  # fmt: skip
    location = Location.parse(f"s3://{bucket}/lake/support_tickets", s3_options)
    ids = [i for b in read_dataset(location, "jsonl") for i in b.column("ticket_id").to_pylist()]
    assert sorted(ids) == sorted(str(r["ticket_id"]) for r in lake.rows("support_tickets"))
    assert len(ids) == len(set(ids)) == sum(f.rows for f in by_dataset["support_tickets"])


def test_task_hostname_is_the_worker_name_on_the_cluster_and_the_machine_name_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    monkeypatch.setenv(WORKER_ENV, "worker2")
    assert worker_hostname() == "worker2"
    monkeypatch.delenv(WORKER_ENV)
    assert worker_hostname() == socket.getfqdn()

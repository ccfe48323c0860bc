"""End to end on a real CeleryExecutor cluster (tests/e2e/e2e_celery.py): two Celery workers, Redis as broker,
PostgreSQL as metadata database, result backend and audit log, a 54-file lake on the S3 server.

* An erasure and the catalog check run side by side, then the privacy pipeline: tasks run on both workers,
  the audit log is contiguous and verifies, lineage is landing -> masked -> published, the subject is gone.
* A worker is SIGKILLed while it masks: the try is retried on the other worker, the masked copy holds every
  landed row exactly once, and the audit log still verifies.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_celery import CUSTOMERS, Cluster, explained, running_cluster

PIPELINE = "aisec_privacy_pipeline"
CATALOG_CHECK = "aisec_catalog_check"
ERASURE = "aisec_dsr_erasure"

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[Cluster]:
    """One started cluster for the module (the kill test runs last: it leaves one worker)."""
    bucket = f"aisec-cluster-{os.urandom(6).hex()}"
    work = tmp_path_factory.mktemp("cluster")
    with running_cluster(work, moto_endpoint, bucket) as running:
        yield running


def _subject() -> Any:
    from airflow_aisec.samples import SampleLake

    lake = SampleLake(CUSTOMERS, seed=3)
    ticketed = {r["customer_id"] for r in lake.rows("support_tickets")}
    return next(c for c in lake.customers if c.customer_id in ticketed)


def _rows(cluster: Cluster, prefix: str) -> list[dict[str, Any]]:
    import pyarrow as pa

    from airflow_aisec.io import Location, read_dataset

    batches = list(read_dataset(Location.parse(f"{cluster.lake}/{prefix}", cluster.s3.options()), "jsonl"))
    return pa.Table.from_batches(batches).to_pylist() if batches else []


def _lake_bytes(cluster: Cluster, prefixes: tuple[str, ...]) -> bytes:
    from airflow_aisec.io.storage import s3_client

    client = s3_client(cluster.s3.options())
    bucket, root = cluster.lake.removeprefix("s3://").split("/", 1)
    data = b""
    for prefix in prefixes:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{root}/{prefix}/")
        for item in listed.get("Contents", []):
            data += client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return data


def _audit(cluster: Cluster) -> tuple[list[Any], Any]:
    from airflow_aisec.audit import AuditLog

    with AuditLog.open(cluster.audit_uri, keyring=cluster.keyring) as log:
        return list(log.entries()), log.verify()


def _first_run(cluster: Cluster, dag_id: str) -> str:
    """The id of the DAG's first run, once there is one."""
    runs = cluster.wait_until(f"a run of {dag_id}", lambda: cluster.runs(dag_id), 90)
    return str(runs[0]["dag_run_id"])


def test_pipeline_and_erasure_run_on_both_workers_with_a_verified_log_and_lineage(cluster: Cluster) -> None:
    from airflow_aisec.audit.lineage import LineageGraph

    subject = _subject()
    conf = {
        "identity_type": "email", "identity_value": subject.email, "request_id": "cluster-erasure-1",
        "reason": "ticket 4711",
    }  # fmt: skip
    with explained(cluster):
        # The erasure (one mapped task per dataset) and the catalog check's scheduled run (started by
        # unpausing) side by side; then the pipeline. Erasing after the pipeline would rightly fail: its
        # published copy is not in the example catalog, and the certificate refuses uncovered copies.
        runs = {ERASURE: cluster.trigger(ERASURE, conf)}
        cluster.unpause(CATALOG_CHECK)
        runs[CATALOG_CHECK] = _first_run(cluster, CATALOG_CHECK)
        for dag_id, run_id in runs.items():
            assert cluster.wait_for_run(dag_id, run_id, 240) == "success", dag_id
        cluster.unpause(PIPELINE)
        runs[PIPELINE] = _first_run(cluster, PIPELINE)
        assert cluster.wait_for_run(PIPELINE, runs[PIPELINE], 240) == "success"
        hosts = [
            ti["hostname"] for dag_id, run_id in runs.items() for ti in cluster.task_instances(dag_id, run_id)
        ]

    # Tasks of one run can land on one worker; across these runs and the erasure's mapped tasks both are busy.
    assert set(hosts) == set(cluster.workers) == {"worker1", "worker2"}, hosts
    entries, report = _audit(cluster)
    assert report.ok, report
    assert [e.index for e in entries] == list(range(len(entries)))  # contiguous: nothing missing
    assert {
        e.data["actor"]["dag_id"] for e in entries if e.data.get("actor", {}).get("kind") == "airflow"
    } >= set(runs)
    graph = LineageGraph.from_entries(entries)
    published = graph.resolve(f"{cluster.lake}/published/support_tickets")
    assert published is not None
    edges = {(s, t) for s, t, _ in graph.upstream(published)}
    assert {
        ("support_tickets", "support_tickets_landing"),
        ("support_tickets_landing", "support_tickets_masked"),
        ("support_tickets_masked", published),
    } <= edges  # landing -> masked -> published
    remaining = _lake_bytes(cluster, ("customers", "support_tickets", "landing", "masked"))
    assert remaining and subject.email.encode() not in remaining
    assert subject.email not in json.dumps([e.data for e in entries])


def _masking_task(cluster: Cluster) -> str:
    """The task that masks rows: the mapped group task when masking fans out by file, else the one task."""
    tasks = cluster.client.get(f"/api/v2/dags/{PIPELINE}/tasks").raise_for_status().json()["tasks"]
    ids = {t["task_id"] for t in tasks}
    return "mask_pii_group" if "mask_pii_group" in ids else "mask_pii"


def _running_on_a_worker(cluster: Cluster, run_id: str, task_id: str) -> dict[str, Any] | None:
    """A try of ``task_id`` (any map index) once it runs on a worker."""
    for ti in cluster.task_instances(PIPELINE, run_id):
        if ti["task_id"] == task_id and ti["state"] == "running" and ti["hostname"] in cluster.workers:
            return ti
    return None


def test_a_worker_killed_mid_task_is_retried_on_the_other_without_losing_rows(cluster: Cluster) -> None:
    with explained(cluster):
        task_id = _masking_task(cluster)
        run_id = cluster.trigger(PIPELINE)
        victim = cluster.wait_until(
            f"{task_id} to run on a worker", lambda: _running_on_a_worker(cluster, run_id, task_id), 180, 0.2
        )
        time.sleep(0.5)  # inside the task: the spaCy pipeline loads, rows are being masked
        cluster.kill(victim["hostname"])
        survivor = next(w for w in cluster.workers if w != victim["hostname"])
        assert cluster.wait_for_run(PIPELINE, run_id, 240) == "success"
        tis = {(ti["task_id"], ti["map_index"]): ti for ti in cluster.task_instances(PIPELINE, run_id)}

    retried = tis[(victim["task_id"], victim["map_index"])]
    assert retried["try_number"] >= 2 and retried["hostname"] == survivor, retried
    landed = _rows(cluster, "landing/support_tickets")
    masked = _rows(cluster, "masked/support_tickets")
    source = _rows(cluster, "support_tickets")
    ids = [r["ticket_id"] for r in masked]
    assert len(ids) == len(set(ids)) == len(landed) == len(source) > 0  # nothing lost, nothing twice
    assert set(ids) == {r["ticket_id"] for r in landed} == {r["ticket_id"] for r in source}
    entries, report = _audit(cluster)
    assert report.ok, report
    assert [e.index for e in entries] == list(range(len(entries)))
    masks = [
        e.data for e in entries if e.action == "pii.mask" and e.data.get("actor", {}).get("run_id") == run_id
    ]
    assert [m["rows"] for m in masks] == [len(landed)], masks  # the step recorded once, with every row

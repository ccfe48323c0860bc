"""Scaling benchmark: the privacy pipeline masking a 100-file lake on a CeleryExecutor cluster with one Celery
worker and then with two (same run, same lake, the ratio printed), and the audit-log append rate on
PostgreSQL under 1, 2 and 4 concurrent writer processes.

The cluster is ``benchmarks/cluster.py``'s (Redis broker, PostgreSQL metadata, result backend and audit log,
the lake on a local S3 server); each worker runs one task at a time. Masking time is from the first masking
task's start to the last one's end, as the REST API reports them; every run is checked to mask every row.

    python -m benchmarks scale               # 6,000 customers, 100 ticket files
    python -m benchmarks scale -- --quick    # 600 customers
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import multiprocessing
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from airflow_aisec.audit import AuditLog
from airflow_aisec.samples import SampleLake
from benchmarks.cluster import Cluster, ClusterError, S3Endpoint, create_database, drop_database, write_lake

PIPELINE = "aisec_privacy_pipeline"
ACCESS_KEY, SECRET_KEY = "AKIAAISECBENCHACCESS", "aisec-bench-secret"  # moto accepts any
RECORD: dict[str, Any] = {
    "action": "pii.mask",
    "dataset": "support_tickets",
    "inputs": [{"dataset": "support_tickets", "uri": "s3://lake/t/part-0001.jsonl", "sha256": "ab" * 32}],
    "outputs": [
        {"dataset": "support_tickets_masked", "uri": "s3://lake/m/part-0001.jsonl", "sha256": "cd" * 32}
    ],
    "rows": 5_000,
    "columns": ["body"],
}


def _moment(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _masking(cluster: Cluster, run_id: str) -> tuple[float, float, int, float]:
    """(masking seconds, run seconds, masking tasks, their mean duration) of a finished run."""
    tis = cluster.task_instances(PIPELINE, run_id)
    masks = [ti for ti in tis if ti["task_id"].startswith("mask")]
    assert masks and all(ti["state"] == "success" for ti in tis), [(t["task_id"], t["state"]) for t in tis]
    span = max(_moment(t["end_date"]) for t in masks) - min(_moment(t["start_date"]) for t in masks)
    run = max(_moment(t["end_date"]) for t in tis) - min(_moment(t["start_date"]) for t in tis)
    busy = sum((_moment(t["end_date"]) - _moment(t["start_date"])).total_seconds() for t in masks)
    return span.total_seconds(), run.total_seconds(), len(masks), busy / len(masks)


def _masked_rows(cluster: Cluster) -> int:
    from airflow_aisec.io import Location, read_dataset

    location = Location.parse(f"{cluster.lake}/masked/support_tickets", cluster.s3.options())
    return sum(batch.num_rows for batch in read_dataset(location, "jsonl"))


def _run_pipeline(cluster: Cluster, first: bool) -> str:
    if first:  # unpausing starts the scheduled run
        cluster.unpause(PIPELINE)
        found = cluster.wait_until(
            "the scheduled run", lambda: [r["dag_run_id"] for r in cluster.runs(PIPELINE)], 90
        )
        run_id = str(found[0])
    else:
        run_id = cluster.trigger(PIPELINE)
    state = cluster.wait_for_run(PIPELINE, run_id, 1800)
    if state != "success":
        raise ClusterError(f"run {run_id} ended {state}")
    return run_id


def bench_workers(work: Path, customers: int, files: int) -> None:
    """Mask the same lake with one worker, then with two."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3Endpoint(f"http://{host}:{port}", ACCESS_KEY, SECRET_KEY)
    bucket = f"aisec-bench-{uuid.uuid4().hex[:12]}"
    from airflow_aisec.io.storage import s3_client

    s3_client(s3.options()).create_bucket(Bucket=bucket)
    lake = f"s3://{bucket}/lake"
    written = write_lake(SampleLake(customers, seed=5), lake, s3.options(), files, ("support_tickets",))
    rows = sum(f.rows for f in written)
    print(f"lake: {len(written)} ticket files, {rows:,} rows on the S3 server")
    cluster = Cluster(work, lake, s3, concurrency=1)
    try:
        started = time.perf_counter()
        cluster.start(workers=1)
        print(f"cluster up in {time.perf_counter() - started:.0f} s (api-server, scheduler, dag-processor)")
        results = []
        for workers in (1, 2):
            if workers == 2:
                cluster.add_worker()
            run_id = _run_pipeline(cluster, first=workers == 1)
            masking, run, tasks, mean = _masking(cluster, run_id)
            assert _masked_rows(cluster) == rows, "a run did not mask every row"
            results.append(masking)
            print(
                f"{workers} worker(s): masking {masking:.1f} s over {tasks} tasks of {mean:.1f} s on average "
                f"({rows / masking:,.0f} rows/s), run {run:.1f} s"
            )
        print(
            f"speed-up with 2 workers: {results[0] / results[1]:.2f}x (masking time 1 worker / 2 workers; "
            f"{os.cpu_count()} CPUs shared with the scheduler, api-server and dag-processor)"
        )
    except ClusterError:
        print(cluster.diagnostics())
        raise
    finally:
        cluster.stop()
        server.stop()


def _writer(uri: str, keyring: str, count: int, ready: Any, go: Any) -> None:
    with AuditLog.open(uri, keyring=keyring) as log:
        ready.release()
        go.wait()
        for _ in range(count):
            log.append(**RECORD)


def bench_audit_writers(work: Path, per_writer: int) -> None:
    """Entries per second appended by N processes at once, one entry per append (as tasks write them)."""
    context = multiprocessing.get_context("spawn")
    for writers in (1, 2, 4):
        uri = create_database("aisec_bench_audit")
        keyring = str(work / f"keys-{writers}.json")
        try:
            with AuditLog.open(uri, keyring=keyring) as log:
                log.append(**RECORD)  # schema and keys exist before the writers start
            ready, go = context.Semaphore(0), context.Event()
            procs = [
                context.Process(target=_writer, args=(uri, keyring, per_writer, ready, go))
                for _ in range(writers)
            ]
            for proc in procs:
                proc.start()
            for _ in procs:
                ready.acquire()
            start = time.perf_counter()
            go.set()
            for proc in procs:
                proc.join()
            elapsed = time.perf_counter() - start
            assert all(proc.exitcode == 0 for proc in procs)
            with AuditLog.open(uri, keyring=keyring) as log:
                report = log.verify()
            assert report.ok and report.size == 1 + writers * per_writer, report
            total = writers * per_writer
            print(
                f"audit appends on postgresql, {writers} writer(s): {total / elapsed:,.0f} entries/s "
                f"({total:,} entries in {elapsed:.1f} s; log verifies, contiguous)"
            )
        finally:
            drop_database(uri)


def _missing_service() -> str | None:
    """What of PostgreSQL and Redis cannot be reached (the cluster needs both), or None."""
    import psycopg
    import redis

    from benchmarks.cluster import PG_ADMIN, REDIS

    try:
        psycopg.connect(PG_ADMIN, connect_timeout=5).close()
    except psycopg.Error as e:
        return f"PostgreSQL ({e.__class__.__name__})"
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as e:
        return f"Redis ({e.__class__.__name__})"
    finally:
        client.close()
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the scaling benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="600 customers, 200 entries per audit writer")
    parser.add_argument("--customers", type=int, default=None, help="customers of the sample lake")
    parser.add_argument("--files", type=int, default=100, help="ticket files of the lake")
    args = parser.parse_args(argv)
    customers = args.customers or (600 if args.quick else 6_000)
    missing = _missing_service()
    if missing:  # say so instead of failing the whole run, as the audit benchmark does
        print(f"scale: skipped, {missing} is not reachable")
        return
    with tempfile.TemporaryDirectory(prefix="aisec-bench-scale-") as tmp:
        bench_audit_writers(Path(tmp), 200 if args.quick else 1_000)
        bench_workers(Path(tmp) / "cluster", customers, args.files)


if __name__ == "__main__":
    main()

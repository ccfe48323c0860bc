"""The CeleryExecutor cluster of the end-to-end tests: api-server, scheduler, dag-processor and two Celery
workers on PostgreSQL and Redis, over a lake of 54 files on the S3 server; the services' output and task
logs printed when a test fails, every process group stopped and the databases dropped afterwards."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.cluster import Cluster, ClusterError, S3Endpoint, write_lake  # noqa: E402

# 120 customers (as in the other end-to-end tests), each dataset in 15 files (9 chargebacks in 9): 54 files.
CUSTOMERS = 120
FILES_PER_DATASET = 15


@contextlib.contextmanager
def running_cluster(work: Path, moto_endpoint: str, bucket: str) -> Iterator[Cluster]:
    """A started two-worker cluster whose lake is ``s3://<bucket>/lake`` (a new bucket), stopped on exit."""
    from airflow_aisec.io.storage import s3_client
    from airflow_aisec.samples import SampleLake

    # The dummy keys every test uses (tests/conftest.py): moto accepts any.
    s3 = S3Endpoint(moto_endpoint, "AKIAAISECTESTACCESS0", "aisec-test-secret-DO-NOT-PRINT-6f1c2b")
    s3_client(s3.options()).create_bucket(Bucket=bucket)
    lake = f"s3://{bucket}/lake"
    written = write_lake(SampleLake(CUSTOMERS, seed=3), lake, s3.options(), FILES_PER_DATASET)
    assert len(written) >= 50
    cluster = Cluster(work, lake, s3, concurrency=1, settings={"AIRFLOW__AISEC__DSR_APPROVAL": "False"})
    try:
        with explained(cluster):
            cluster.start(workers=2)
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def explained(cluster: Cluster) -> Iterator[None]:
    """Print every service's output and the task logs when the block fails; a ClusterError fails the test."""
    try:
        yield
    except ClusterError as e:
        print(cluster.diagnostics())
        pytest.fail(str(e))
    except BaseException:
        print(cluster.diagnostics())
        raise

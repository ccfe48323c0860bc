"""``LakeHook`` turns an Airflow AWS connection into the options the I/O layer uses, and nothing more."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_aisec.io import S3Options, list_files, read_dataset, write_dataset_file


def _aws_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, keys: tuple[str, str], extra: dict[str, str]
) -> None:
    # Airflow reads AIRFLOW_CONN_<ID> before any other secrets backend, so no database is needed.
    conn = {"conn_type": "aws", "login": keys[0], "password": keys[1], "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def test_lake_hook_reads_keys_region_and_endpoint_from_the_aws_connection(
    monkeypatch: pytest.MonkeyPatch, aws_keys: tuple[str, str]
) -> None:
    from airflow_aisec.hooks.lake import LakeHook

    conn_keys = ("AKIACONNECTIONKEY000", "connection-secret-value")
    _aws_connection(
        monkeypatch,
        "aisec_lake",
        conn_keys,
        {"region_name": "eu-west-3", "endpoint_url": "http://127.0.0.1:9"},
    )

    options = LakeHook(aws_conn_id="aisec_lake").s3_options()

    assert (options.access_key, options.secret_key, options.session_token) == (*conn_keys, None)
    assert (options.region, options.endpoint_url) == ("eu-west-3", "http://127.0.0.1:9")
    assert conn_keys[1] not in repr(options)


def test_lake_hook_without_a_connection_uses_the_worker_credential_chain(aws_keys: tuple[str, str]) -> None:
    from airflow_aisec.hooks.lake import LakeHook

    options = LakeHook(aws_conn_id=None).s3_options()

    assert options == S3Options.from_environment()
    assert (options.access_key, options.secret_key) == aws_keys


def test_lake_hook_leaves_local_paths_alone(tmp_path: Path) -> None:
    from airflow_aisec.hooks.lake import LakeHook

    location = LakeHook(aws_conn_id="no_such_connection").location(str(tmp_path))

    assert not location.is_s3 and location.s3 is None


@pytest.mark.integration
def test_lake_hook_location_reaches_the_bucket_of_the_connection(
    monkeypatch: pytest.MonkeyPatch, aws_keys: tuple[str, str], moto_endpoint: str, bucket: str
) -> None:
    from airflow_aisec.hooks.lake import LakeHook

    _aws_connection(
        monkeypatch, "aisec_lake", aws_keys, {"region_name": "us-east-1", "endpoint_url": moto_endpoint}
    )
    root = LakeHook(aws_conn_id="aisec_lake").location(f"s3://{bucket}/customers")

    write_dataset_file(root, "csv", pa.table({"id": [1, 2]}), name="a.csv")

    assert [i.location.name for i in list_files(root, "csv")] == ["a.csv"]
    assert pa.Table.from_batches(list(read_dataset(root, "csv")))["id"].to_pylist() == [1, 2]

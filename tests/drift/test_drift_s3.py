"""Drift checks over S3 (moto's server on loopback): a reference profile saved to and read from a bucket,
current data read from ``s3://`` Parquet files."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_aisec.drift import SourceOptions, drift_check, load_source, save_profile
from airflow_aisec.io import S3Options
from airflow_aisec.io.storage import s3_client


def put_parquet(s3: S3Options, bucket: str, key: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    s3_client(s3).put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


@pytest.mark.integration
def test_a_profile_saved_to_s3_is_the_reference_of_a_check_of_s3_data(
    s3_options: S3Options, bucket: str
) -> None:
    rng = np.random.default_rng(5)
    put_parquet(s3_options, bucket, "ref/part-0.parquet", pa.table({"x": rng.normal(0, 1, 5000)}))
    put_parquet(s3_options, bucket, "cur/part-0.parquet", pa.table({"x": rng.normal(1, 1, 5000)}))
    options = SourceOptions(s3=s3_options)

    made = load_source(f"s3://{bucket}/ref/", options)
    uri = save_profile(made, f"s3://{bucket}/profiles/ref.json", s3_options)
    run = drift_check(uri, f"s3://{bucket}/cur/", options, report_path=f"s3://{bucket}/reports/drift.html")

    assert run.reference.rows == 5000 and run.result.drifted_columns == ["x"] and not run.result.passed
    report = s3_client(s3_options).get_object(Bucket=bucket, Key="reports/drift.html")["Body"].read()
    assert b"<svg" in report

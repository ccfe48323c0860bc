"""Erasure on a versioned S3 bucket (moto over HTTP): no old version of a rewritten object is left."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dsr_support import SAMPLE, SUBJECT, by_dataset, catalog_for, customer_rows, run

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.io import Location, S3Options, read_dataset
from airflow_aisec.io.storage import s3_client
from airflow_aisec.samples import write_sample_lake


@pytest.mark.integration
def test_erasure_on_a_versioned_bucket_purges_the_old_versions_it_replaced(
    tmp_path: Path, s3_options: S3Options, bucket: str, ring: LocalKeyring, log: AuditLog
) -> None:
    client = s3_client(s3_options)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    write_sample_lake(SAMPLE, f"s3://{bucket}/lake", s3=s3_options)

    def purge_versions(data: dict[str, Any]) -> None:
        data["datasets"]["customers"]["retention"]["purge_versions"] = True

    catalog = catalog_for(f"s3://{bucket}/lake", tmp_path, purge_versions)
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-s3")
    document = run(catalog, request, ring, log, tmp_path, s3=s3_options)

    assert document["certificate"]["status"] == "completed_with_holds"
    [rewritten] = by_dataset(document)["customers"]["files"]
    assert rewritten["action"] == "rewrite" and rewritten["versions_purged"] == 1
    listing = client.list_object_versions(Bucket=bucket, Prefix="lake/customers/")
    assert not listing.get("DeleteMarkers")
    versions: dict[str, list[dict[str, Any]]] = {}
    for version in listing["Versions"]:
        versions.setdefault(version["Key"], []).append(version)
    key = Location.parse(rewritten["uri"], s3_options).key
    assert [v["IsLatest"] for v in versions[key]] == [True]  # only the new version is left
    assert all(len(v) == 1 for v in versions.values())
    for object_key, found in versions.items():  # no version of any customers object names the subject
        for version in found:
            body = client.get_object(Bucket=bucket, Key=object_key, VersionId=version["VersionId"])["Body"]
            table = pq.read_table(io.BytesIO(body.read()))
            assert SUBJECT.email not in table.column("email").to_pylist(), object_key
    current = pa.Table.from_batches(
        list(read_dataset(Location.parse(f"s3://{bucket}/lake/customers", s3_options), "parquet"))
    )
    assert current.num_rows == len(SAMPLE.customers) - 1
    assert customer_rows(current, SUBJECT.customer_id).num_rows == 0
    assert verify_certificate(document, log).ok

"""Per-subject key stores: the local keyring, and keys wrapped by AWS KMS kept in a folder or under s3://."""

from __future__ import annotations

import base64
import json
import stat
import threading
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import catalog_file, lake_copy

from airflow_aisec.catalog import load_catalog, validate_catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.crypto.kms import AwsKmsProvider, client_config
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.crypto.pseudonyms import Pseudonymizer
from airflow_aisec.crypto.shredding import SubjectSealer, open_batch, seal_batch
from airflow_aisec.crypto.subjects import (
    SUBJECT_KEY_PURPOSE,
    KeyringSubjectKeys,
    WrappedSubjectKeys,
    subject_key_name,
)
from airflow_aisec.exceptions import KeyringError
from airflow_aisec.io.storage import Location, S3Options
from airflow_aisec.operators.crypto import DecryptDatasetOperator, EncryptDatasetOperator

PSEUDONYMIZE = Pseudonymizer(b"k" * 32)
C1 = subject_key_name(PSEUDONYMIZE, "C1")


def kms(endpoint: str) -> AwsKmsProvider:
    def client() -> Any:
        import boto3

        return boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1", config=client_config(2))

    return AwsKmsProvider(client)


@pytest.fixture
def kms_store(moto_endpoint: str, bucket: str, s3_options: S3Options) -> WrappedSubjectKeys:
    """Subject keys wrapped by a fresh KMS key, one object each under s3://<bucket>/subject-keys/."""
    provider = kms(moto_endpoint)
    name = f"aisec-subjects-{uuid.uuid4().hex[:12]}"
    provider.create(name)
    return WrappedSubjectKeys(provider, name, Location.parse(f"s3://{bucket}/subject-keys", s3_options))


def batch() -> pa.RecordBatch:
    return pa.record_batch({"customer_id": ["C1", "C2", "C1"], "email": ["a@x.org", "b@x.org", None]})


def catalog_with(tmp_path: Path, key: dict[str, Any]) -> Path:
    def subject_keys_under(data: dict[str, Any]) -> None:
        data["keys"]["pii-columns"] = key
        data["datasets"]["customers"]["encryption"]["per_subject_columns"] = ["email"]

    return catalog_file(tmp_path, subject_keys_under)


# -- choosing the store ------------------------------------------------------------------------------------


def test_a_kms_encrypted_dataset_keeps_its_subject_keys_wrapped_under_that_key(tmp_path: Path) -> None:
    kms_key = {"provider": "aws-kms", "key_id": "alias/aisec-pii", "subject_keys": str(tmp_path / "sk")}
    catalog = load_catalog(catalog_with(tmp_path, kms_key), {"lake": str(tmp_path)})
    ring = LocalKeyring(tmp_path / "ring.json")

    store = KeySource(catalog, ring).subject_keys(catalog.datasets["customers"])

    assert isinstance(store, WrappedSubjectKeys) and store.provider == "aws-kms"
    assert (store.key_name, store.location.path) == ("pii-columns", str(tmp_path / "sk"))
    assert isinstance(store.key_provider, AwsKmsProvider)
    assert store.key_provider.key_id("pii-columns") == "alias/aisec-pii"
    stores = KeySource(catalog, ring).subject_key_stores()
    assert [type(s) for s in stores] == [KeyringSubjectKeys, WrappedSubjectKeys]  # shredding reaches both


def test_a_local_key_keeps_subject_keys_in_the_keyring(tmp_path: Path) -> None:
    catalog = load_catalog(catalog_with(tmp_path, {"provider": "local"}), {"lake": str(tmp_path)})
    ring = LocalKeyring(tmp_path / "ring.json")

    assert isinstance(
        KeySource(catalog, ring).subject_keys(catalog.datasets["customers"]), KeyringSubjectKeys
    )
    assert len(KeySource(catalog, ring).subject_key_stores()) == 1


def test_the_catalog_refuses_kms_subject_keys_without_a_place_and_a_place_for_local_keys(
    tmp_path: Path,
) -> None:
    no_place = validate_catalog(
        catalog_with(tmp_path, {"provider": "aws-kms", "key_id": "alias/k"}), {"lake": str(tmp_path)}
    )
    assert any("subject_keys" in str(p) and "per_subject_columns" in str(p) for p in no_place.errors)
    local = validate_catalog(
        catalog_with(tmp_path, {"provider": "local", "subject_keys": "/x"}), {"lake": str(tmp_path)}
    )
    assert any("subject_keys is for aws-kms keys" in str(p) for p in local.errors)


# -- the KMS-wrapped store -----------------------------------------------------------------------------------


def test_kms_wrapped_subject_keys_seal_and_open_in_a_later_run(kms_store: WrappedSubjectKeys) -> None:
    sealed = seal_batch(batch(), ["email"], "customer_id", SubjectSealer(kms_store, PSEUDONYMIZE))

    later = WrappedSubjectKeys(kms_store.key_provider, kms_store.key_name, kms_store.location)
    opened = open_batch(sealed, ["email"], SubjectSealer(later, PSEUDONYMIZE))

    assert opened.column("email").to_pylist() == ["a@x.org", "b@x.org", None]
    client = kms_store.location.s3_client()
    entry = kms_store.location.join(C1.removeprefix("subject/") + ".json")
    record = json.loads(client.get_object(Bucket=entry.bucket, Key=entry.key)["Body"].read())
    assert (record["state"], record["key"], record["provider"]) == ("active", C1, "aws-kms")
    assert set(record) == {"format", "version", "state", "key", "provider", "key_name", "key_version",
                           "wrapped_key", "created"}  # fmt: skip


def test_the_wrapped_key_is_bound_to_its_purpose_and_subject(kms_store: WrappedSubjectKeys) -> None:
    key = kms_store.key(C1, create=True)
    entry = kms_store.location.join(C1.removeprefix("subject/") + ".json")
    raw = entry.s3_client().get_object(Bucket=entry.bucket, Key=entry.key)["Body"].read()
    wrapped = base64.b64decode(json.loads(raw)["wrapped_key"])
    context = kms_store.context(C1)

    assert context == {"aisec:purpose": SUBJECT_KEY_PURPOSE, "aisec:subject": C1.removeprefix("subject/")}
    assert kms_store.key_provider.unwrap(kms_store.key_name, wrapped, context) == key
    other = kms_store.context(subject_key_name(PSEUDONYMIZE, "C2"))
    with pytest.raises(KeyringError, match="wrong key or encryption context"):
        kms_store.key_provider.unwrap(kms_store.key_name, wrapped, other)


def test_concurrent_first_use_agrees_on_one_key(kms_store: WrappedSubjectKeys) -> None:
    results: list[bytes | None] = []
    errors: list[BaseException] = []

    def use() -> None:
        store = WrappedSubjectKeys(kms_store.key_provider, kms_store.key_name, kms_store.location)
        try:
            results.append(store.key(C1, create=True))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors and len(results) == 6 and len(set(results)) == 1
    assert kms_store.key(C1, create=False) == results[0]


def test_shredding_is_idempotent_and_never_recreates_the_key(kms_store: WrappedSubjectKeys) -> None:
    kms_store.key(C1, create=True)

    first, second = kms_store.shred(C1), kms_store.shred(C1)

    assert (first.changed, second.changed) == (True, False)
    assert kms_store.key(C1, create=False) is None
    with pytest.raises(KeyringError, match="was shredded"):
        kms_store.key(C1, create=True)
    assert kms_store.shred(subject_key_name(PSEUDONYMIZE, "never")).changed is None
    assert first.audit_details() == {"key": C1, "provider": "aws-kms", "store": first.location}


def test_a_local_folder_store_is_owner_only_and_shreds_to_a_tombstone(tmp_path: Path) -> None:
    provider = LocalKeyProvider(tmp_path / "ring.json")
    provider.create("wrapping")
    store = WrappedSubjectKeys(provider, "wrapping", Location.parse(tmp_path / "subject-keys"))
    key = store.key(C1, create=True)
    path = tmp_path / "subject-keys" / (C1.removeprefix("subject/") + ".json")

    assert key is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.hex() not in path.read_text()
    assert store.shred(C1).changed is True
    assert json.loads(path.read_text())["state"] == "shredded" and "wrapped_key" not in path.read_text()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize(
    "name", ["subject/../../etc/passwd", "subject/ABC", "subject/" + "0" * 63, "other/x"]
)
def test_a_key_name_that_is_not_a_pseudonym_never_becomes_a_path(tmp_path: Path, name: str) -> None:
    store = WrappedSubjectKeys(LocalKeyProvider(tmp_path / "r.json"), "w", Location.parse(tmp_path / "sk"))

    with pytest.raises(KeyringError):
        store.key(name, create=True)
    assert not (tmp_path / "sk").exists()


def test_operators_reach_kms_wrapped_subject_keys_through_the_airflow_connection(
    tmp_path: Path, sample_lake_dir: Path, moto_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch,
    aws_keys: tuple[str, str],
) -> None:  # fmt: skip
    conn = {"conn_type": "aws", "login": aws_keys[0], "password": aws_keys[1],
            "extra": {"region_name": "us-east-1", "endpoint_url": moto_endpoint}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_AISEC_SUBJECT_KEYS", json.dumps(conn))
    monkeypatch.setenv("AISEC_KEYRING", str(tmp_path / "k.json"))
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'a.db'}")
    name = f"aisec-op-{uuid.uuid4().hex[:12]}"
    kms(moto_endpoint).create(name)
    key = {"provider": "aws-kms", "key_id": f"alias/{name}", "aws_conn_id": "aisec_subject_keys",
           "subject_keys": f"s3://{bucket}/subject-keys"}  # fmt: skip
    lake = lake_copy(sample_lake_dir, tmp_path)
    common = {"dataset": "customers", "catalog": str(catalog_with(tmp_path, key)),
              "variables": {"lake": str(lake)}, "aws_conn_id": "aisec_subject_keys"}  # fmt: skip
    original = pq.read_table(lake / "customers").to_pylist()

    EncryptDatasetOperator(task_id="e", **common).execute(context={})  # type: ignore[arg-type]
    DecryptDatasetOperator(task_id="d", output_uri=str(tmp_path / "plain"), **common).execute(context={})  # type: ignore[arg-type]

    stored = Location.parse(
        f"s3://{bucket}/subject-keys", S3Options(*aws_keys, None, "us-east-1", moto_endpoint)
    )
    listed = stored.s3_client().list_objects_v2(Bucket=bucket, Prefix="subject-keys/").get("Contents", [])
    assert len(listed) == len({r["customer_id"] for r in original if r["email"] is not None})
    assert pq.read_table(tmp_path / "plain").to_pylist() == original

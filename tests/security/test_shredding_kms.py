"""Crypto-shredding with per-subject keys wrapped by AWS KMS (moto's KMS, a versioned S3 bucket, over HTTP).

The promise: once a subject is shredded, their sealed values are unreadable in every copy of the data, while
everyone else's still open; a failure half-way leaves the key as it was and a rerun finishes the job; and no
key material or raw subject identifier reaches a log, the audit log or the key store. The attacks: a wrapped
key copied to another subject's name, a key deleted behind aisec's back, a copy of the wrapped key kept
aside before shredding (what shredding cannot undo, and what does).
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from test_kms import FaultProxy  # tests/crypto is on the path (conftest.py)
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.cli.main import app
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.crypto.kms import AwsKmsProvider, client_config
from airflow_aisec.crypto.pseudonyms import Pseudonymizer
from airflow_aisec.crypto.shredding import SubjectSealer, open_batch, seal_batch
from airflow_aisec.crypto.subjects import WrappedSubjectKeys, subject_key_name
from airflow_aisec.exceptions import KeyringError
from airflow_aisec.io.storage import Location, S3Options, s3_client

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
AWS_SECRET = "aisec-test-secret-DO-NOT-PRINT-6f1c2b"  # the dummy secret tests/conftest.py sets
runner = CliRunner()

pytestmark = pytest.mark.integration


@pytest.fixture
def aws(moto_endpoint: str, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> FaultProxy:
    """KMS reached through the fault proxy, S3 straight at moto, as any boto3 client finds them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", proxy.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    return proxy


@pytest.fixture
def kms_key(moto_endpoint: str) -> str:
    """A fresh KMS key, ``alias/<its name>``."""
    name = f"aisec-shred-{uuid.uuid4().hex[:12]}"
    kms(moto_endpoint).create(name)
    return name


@pytest.fixture
def versioned_bucket(bucket: str, s3_options: S3Options) -> str:
    """A bucket that keeps every replaced object version, as production buckets often do."""
    s3_client(s3_options).put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


@pytest.fixture
def kms_catalog(tmp_path: Path, kms_key: str, versioned_bucket: str) -> Path:
    """The example catalog, its PII column key in KMS, per-subject keys for the customers' emails."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["keys"]["pii-columns"] = {
        "provider": "aws-kms",
        "key_id": f"alias/{kms_key}",
        "subject_keys": f"s3://{versioned_bucket}/subject-keys",
    }
    data["datasets"]["customers"]["encryption"]["per_subject_columns"] = ["email"]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def kms(endpoint: str) -> AwsKmsProvider:
    def client() -> Any:
        import boto3

        return boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1", config=client_config(2))

    return AwsKmsProvider(client)


def cli(tmp_path: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(
        app, ["--log", f"sqlite:///{tmp_path / 'a.db'}", "--keyring", str(tmp_path / "k.json"), *args]
    )
    assert result.exit_code == code, result.output
    return result.output


def shreds(tmp_path: Path) -> list[dict[str, Any]]:
    with AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}", keyring=str(tmp_path / "k.json")) as log:
        assert log.verify().ok
        return [e.data for e in log.entries() if e.action == "key.shred"]


def audit_bodies(tmp_path: Path) -> bytes:
    with AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}", keyring=str(tmp_path / "k.json")) as log:
        return b"".join(row.body for row in log.store.entries(0, None))


def versions(s3_options: S3Options, bucket: str) -> list[dict[str, Any]]:
    """Every version of every object of the key store, with its body."""
    client = s3_client(s3_options)
    found = []
    for v in client.list_object_versions(Bucket=bucket, Prefix="subject-keys/").get("Versions", []):
        body = client.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
        found.append({"key": v["Key"], "latest": v["IsLatest"], "record": json.loads(body)})
    return found


class Lake:
    """The customers dataset encrypted with the KMS catalog, and a backup copy nobody can rewrite later."""

    def __init__(self, tmp_path: Path, lake: Path, catalog: Path) -> None:
        self.tmp_path, self.lake, self.catalog = tmp_path, lake, catalog
        self.args = ["--catalog", str(catalog), "--var", f"lake={lake}"]
        self.original = pq.read_table(lake / "customers").to_pylist()
        cli(tmp_path, "encrypt", str(lake / "customers"), str(tmp_path / "enc"), *self.args,
            "--dataset", "customers")  # fmt: skip
        shutil.copytree(tmp_path / "enc", tmp_path / "backup")
        self.victim = self.original[0]

    def restored(self, name: str) -> dict[str, dict[str, Any]]:
        """The backup, decrypted through the catalog: customer id -> row."""
        out = self.tmp_path / name
        cli(
            self.tmp_path,
            "decrypt",
            str(self.tmp_path / "backup"),
            str(out),
            *self.args,
            "--dataset",
            "customers",
        )
        return {r["customer_id"]: r for r in pq.read_table(out).to_pylist()}

    def shred(self, code: int = 0) -> str:
        return cli(
            self.tmp_path, "keys", "shred", "--subject-id", self.victim["customer_id"], *self.args, code=code
        )

    def others_readable(self, restored: dict[str, dict[str, Any]]) -> bool:
        others = [r for r in self.original[1:] if r["email"] is not None]
        return bool(others) and all(restored[r["customer_id"]]["email"] == r["email"] for r in others)


@pytest.fixture
def encrypted(tmp_path: Path, lake: Path, kms_catalog: Path, aws: FaultProxy) -> Lake:
    return Lake(tmp_path, lake, kms_catalog)


def test_shredding_a_subject_makes_only_their_values_unreadable_in_every_copy(
    encrypted: Lake, tmp_path: Path, s3_options: S3Options, versioned_bucket: str
) -> None:
    victim = encrypted.victim
    before = encrypted.restored("before")
    assert before[victim["customer_id"]]["email"] == victim["email"]
    stored = versions(s3_options, versioned_bucket)
    assert stored and all(v["record"]["state"] == "active" and v["record"]["wrapped_key"] for v in stored)

    out = encrypted.shred()

    assert "destroyed" in out and victim["customer_id"] not in out
    after = encrypted.restored("after")
    assert after[victim["customer_id"]]["email"] is None
    assert after[victim["customer_id"]]["full_name"] == victim["full_name"]  # not a per-subject column
    assert encrypted.others_readable(after)
    # The wrapped key is gone from every version of its object, not only from the current one.
    theirs = [v for v in versions(s3_options, versioned_bucket) if v["record"]["key"].endswith(
        subject_pseudonym(tmp_path, victim["customer_id"]))]  # fmt: skip
    assert [(v["latest"], v["record"]["state"]) for v in theirs] == [(True, "shredded")]
    assert "wrapped_key" not in theirs[0]["record"]

    assert "already destroyed" in encrypted.shred()  # idempotent
    kms_shreds = [e for e in shreds(tmp_path) if e["details"]["provider"] == "aws-kms"]
    assert [e["outcome"] for e in kms_shreds] == ["success", "noop"]
    assert kms_shreds[0]["details"]["versions_purged"] >= 1


def test_a_kms_failure_while_shredding_leaves_the_key_and_a_rerun_finishes(
    encrypted: Lake, tmp_path: Path, aws: FaultProxy, s3_options: S3Options, versioned_bucket: str
) -> None:
    victim = encrypted.victim
    aws.fail("AccessDeniedException", times=1, operation="Decrypt")

    out = encrypted.shred(code=2)

    assert "denied" in out and victim["customer_id"] not in out
    assert all(v["record"]["state"] == "active" for v in versions(s3_options, versioned_bucket))
    assert encrypted.restored("after-failure")[victim["customer_id"]]["email"] == victim["email"]
    assert not [e for e in shreds(tmp_path) if e["details"]["provider"] == "aws-kms"]

    assert "destroyed" in encrypted.shred()  # the rerun completes

    assert encrypted.restored("after-rerun")[victim["customer_id"]]["email"] is None
    assert [e["outcome"] for e in shreds(tmp_path) if e["details"]["provider"] == "aws-kms"] == ["success"]


def test_no_key_material_or_subject_id_reaches_logs_the_audit_log_or_the_key_store(
    tmp_path: Path, lake: Path, kms_catalog: Path, aws: FaultProxy, caplog: pytest.LogCaptureFixture,
    s3_options: S3Options, versioned_bucket: str,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="airflow_aisec")
    encrypted = Lake(tmp_path, lake, kms_catalog)
    victim = encrypted.victim
    keys = subject_keys(tmp_path, kms_catalog, lake)
    pseudonym = subject_pseudonym(tmp_path, victim["customer_id"])
    material = keys.key("subject/" + pseudonym, create=False)
    assert material is not None
    outputs = encrypted.shred() + json.dumps(versions(s3_options, versioned_bucket))
    objects = s3_client(s3_options).list_object_versions(Bucket=versioned_bucket)

    secrets = [material.hex(), base64.b64encode(material).decode(), AWS_SECRET]
    raw = [victim["customer_id"], victim["email"], victim["full_name"]]
    for text in (caplog.text, outputs, audit_bodies(tmp_path).decode("utf-8", "replace"), json.dumps(
            objects, default=str)):  # fmt: skip
        assert not [s for s in secrets + raw if s in text]
    assert pseudonym in json.dumps(shreds(tmp_path))  # the subject appears as their pseudonym only


def test_an_erasure_request_shreds_the_kms_wrapped_key_and_every_old_version_of_it(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, aws: FaultProxy, kms_key: str,
    versioned_bucket: str, s3_options: S3Options,
) -> None:  # fmt: skip
    from dsr_support import SUBJECT, catalog_for, run

    from airflow_aisec.crypto.datasets import encrypt_files, reader_for, subject_columns
    from airflow_aisec.dsr import make_request, verify_certificate
    from airflow_aisec.io import list_files

    def edit(data: dict[str, Any]) -> None:
        data["keys"]["pii-columns"] = {"provider": "aws-kms", "key_id": f"alias/{kms_key}",
                                       "subject_keys": f"s3://{versioned_bucket}/subject-keys"}  # fmt: skip
        data["datasets"]["customers"]["encryption"]["per_subject_columns"] = ["full_name"]
        del data["datasets"]["chargebacks"]["legal_hold"]

    catalog = catalog_for(lake, tmp_path, edit)
    customers = catalog.dataset("customers")
    keys = KeySource(catalog, ring)
    provider = keys.provider("pii-columns")
    where = Location.parse(lake / "customers")
    encrypt_files(where, where, "parquet", provider, "pii-columns", columns=["email", "phone", "full_name"],
                  subjects=subject_columns(keys, customers))  # fmt: skip
    shutil.copytree(lake / "customers", tmp_path / "backup")
    theirs = subject_key_name(
        Pseudonymizer(ring.get(catalog.subjects.pseudonym_key).material), SUBJECT.customer_id
    )

    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-kms-sealed")
    document = run(catalog, request, ring, log, tmp_path)

    assert document["certificate"]["keys_shredded"] == [theirs] and verify_certificate(document, log).ok
    stored = [v for v in versions(s3_options, versioned_bucket) if v["record"]["key"] == theirs]
    assert [(v["latest"], v["record"]["state"]) for v in stored] == [(True, "shredded")]
    kms_shreds = [e.data for e in log.entries() if e.action == "key.shred"]
    assert [(e["details"]["key"], e["details"]["provider"], e["outcome"]) for e in kms_shreds] == [
        (theirs, "aws-kms", "success")
    ]
    reader = reader_for(keys, customers)
    rows = [r for info in list_files(Location.parse(tmp_path / "backup"), "parquet")
            for b in reader(info, "parquet") for r in b.to_pylist()]  # fmt: skip
    (victim,) = [r for r in rows if r["customer_id"] == SUBJECT.customer_id]
    assert victim["full_name"] is None and victim["email"] == SUBJECT.email  # email is not sealed per subject
    assert sum(r["full_name"] is not None for r in rows) == len(rows) - 1


# --- attacks on the key store (through the store itself) -------------------------------------------------


@pytest.fixture
def store(
    moto_endpoint: str, kms_key: str, versioned_bucket: str, s3_options: S3Options
) -> WrappedSubjectKeys:
    location = Location.parse(f"s3://{versioned_bucket}/subject-keys", s3_options)
    return WrappedSubjectKeys(kms(moto_endpoint), kms_key, location)


PSEUDONYMIZE = Pseudonymizer(b"p" * 32)


def sealed(store: WrappedSubjectKeys) -> pa.RecordBatch:
    batch = pa.record_batch({"customer_id": ["C1", "C2"], "email": ["one@example.com", "two@example.com"]})
    return seal_batch(batch, ["email"], "customer_id", SubjectSealer(store, PSEUDONYMIZE))


def entry(store: WrappedSubjectKeys, subject: str) -> Location:
    return store.location.join(subject_key_name(PSEUDONYMIZE, subject).removeprefix("subject/") + ".json")


def copy_object(source: Location, target: Location, relabel: str | None = None) -> None:
    client = source.s3_client()
    body = client.get_object(Bucket=source.bucket, Key=source.key)["Body"].read()
    if relabel is not None:
        body = json.dumps({**json.loads(body), "key": relabel}).encode()
    client.put_object(Bucket=target.bucket, Key=target.key, Body=body)


@pytest.mark.parametrize("relabel", [False, True], ids=["as-is", "relabelled"])
def test_a_wrapped_key_copied_to_another_subject_opens_nothing_and_is_not_shredded(
    store: WrappedSubjectKeys, relabel: bool
) -> None:
    batch = sealed(store)
    # Someone with write access to the key store puts C1's wrapped key under C2's name, maybe relabelled.
    copy_object(
        entry(store, "C1"),
        entry(store, "C2"),
        relabel=subject_key_name(PSEUDONYMIZE, "C2") if relabel else None,
    )
    refused = "wrong key or encryption context" if relabel else "does not hold per-subject key"

    with pytest.raises(KeyringError, match=refused):
        open_batch(batch, ["email"], SubjectSealer(store, PSEUDONYMIZE))
    with pytest.raises(KeyringError, match=refused):
        store.shred(subject_key_name(PSEUDONYMIZE, "C2"))

    # Nothing was deleted: C1's key (also the planted copy) still opens C1's value.
    c1_only = batch.slice(0, 1)
    assert open_batch(c1_only, ["email"], SubjectSealer(store, PSEUDONYMIZE)).column("email").to_pylist() == [
        "one@example.com"
    ]


def test_a_key_deleted_outside_aisec_is_an_error_not_an_empty_value(store: WrappedSubjectKeys) -> None:
    batch = sealed(store)
    target = entry(store, "C1")
    target.s3_client().delete_object(Bucket=target.bucket, Key=target.key)  # a delete marker

    with pytest.raises(KeyringError, match="removed outside aisec"):
        open_batch(batch, ["email"], SubjectSealer(store, PSEUDONYMIZE))
    # Shredding still finds the older version that holds the wrapped key, and deletes it.
    result = store.shred(subject_key_name(PSEUDONYMIZE, "C1"))
    assert result.changed is True and result.versions_purged >= 1
    assert (
        not target.s3_client().list_object_versions(Bucket=target.bucket, Prefix=target.key).get("Versions")
    )


def test_a_copy_of_the_wrapped_key_kept_aside_opens_again_until_the_kms_key_is_gone(
    store: WrappedSubjectKeys, proxy: FaultProxy, kms_key: str
) -> None:
    batch = sealed(store)
    source = entry(store, "C1")
    saved = store.location.join("elsewhere/kept.json")
    copy_object(source, saved)  # e.g. a backup of the key store taken before the erasure
    store.shred(subject_key_name(PSEUDONYMIZE, "C1"))
    assert open_batch(batch, ["email"], SubjectSealer(store, PSEUDONYMIZE)).column("email").to_pylist() == [
        None, "two@example.com",
    ]  # fmt: skip

    copy_object(saved, source)  # restoring the copy undoes the shredding: this is what the docs warn about
    assert open_batch(batch, ["email"], SubjectSealer(store, PSEUDONYMIZE)).column("email").to_pylist() == [
        "one@example.com", "two@example.com",
    ]  # fmt: skip

    # Only the KMS key itself going away (scheduled deletion) makes every copy of every wrapped key useless.
    via_proxy = WrappedSubjectKeys(kms(proxy.url), kms_key, store.location)
    assert via_proxy.key_provider.destroy(kms_key) is True
    proxy.fail("KMSInvalidStateException", times=10, operation="Decrypt")  # what AWS answers; moto does not
    with pytest.raises(KeyringError, match="pending deletion"):
        open_batch(batch, ["email"], SubjectSealer(via_proxy, PSEUDONYMIZE))


# --- helpers needing the test's keyring ------------------------------------------------------------------


def subject_pseudonym(tmp_path: Path, subject: str) -> str:
    ring = LocalKeyring(tmp_path / "k.json")
    return subject_key_name(Pseudonymizer(ring.get("aisec-pseudonyms").material), subject).removeprefix(
        "subject/"
    )


def subject_keys(tmp_path: Path, catalog_path: Path, lake: Path) -> WrappedSubjectKeys:
    catalog = load_catalog(catalog_path, {"lake": str(lake)})
    store = KeySource(catalog, tmp_path / "k.json").subject_keys(catalog.datasets["customers"])
    assert isinstance(store, WrappedSubjectKeys)
    return store

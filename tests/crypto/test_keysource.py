"""``KeySource``: one provider per catalog key, reached through the key's own AWS connection (moto over HTTP).

Moto keeps KMS keys per region, so a key made in the region of its connection only answers a client built
from that connection: a round trip proves which client a key was given.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_aisec.catalog import Catalog, load_catalog
from airflow_aisec.crypto.keysource import KeySource, default_kms_client, default_kms_clients
from airflow_aisec.crypto.kms import AwsKmsProvider, client_config
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.crypto.subjects import KeyringSubjectKeys, WrappedSubjectKeys
from airflow_aisec.exceptions import KeyringError

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
KEY_CONN = "aisec_keysource_kms"  # the connection pii-columns names: its keys live in eu-west-1
TASK_CONN = "aisec_keysource_task"  # a task's connection, for keys that name none: us-east-1
CONTEXT = {"dataset": "customers", "column": "email"}


def kms_client(endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client("kms", endpoint_url=endpoint, region_name=region, config=client_config(1))


def kms_key(endpoint: str, region: str) -> str:
    """A new KMS key in ``region``, by its alias."""
    client = kms_client(endpoint, region)
    alias = f"alias/aisec-keysource-{uuid.uuid4().hex[:12]}"
    client.create_alias(AliasName=alias, TargetKeyId=client.create_key()["KeyMetadata"]["KeyId"])
    return alias


def two_kms_keys(tmp_path: Path, endpoint: str) -> Catalog:
    """The example catalog with two aws-kms keys: pii-columns (its own connection, per-subject keys in a
    folder) encrypting customers, and backups (no connection)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["keys"]["pii-columns"] = {
        "provider": "aws-kms",
        "key_id": kms_key(endpoint, "eu-west-1"),
        "aws_conn_id": KEY_CONN,
        "subject_keys": str(tmp_path / "subject-keys"),
    }
    data["keys"]["backups"] = {"provider": "aws-kms", "key_id": kms_key(endpoint, "us-east-1")}
    data["datasets"]["customers"]["encryption"]["per_subject_columns"] = ["email"]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_catalog(path, {"lake": str(tmp_path / "lake")})


def round_trip(keys: KeySource, key_name: str) -> bytes:
    provider = keys.provider(key_name)
    wrapped, _version = provider.wrap(key_name, b"k" * 32, CONTEXT)
    return provider.unwrap(key_name, wrapped, CONTEXT)


@pytest.fixture
def catalog(tmp_path: Path, moto_endpoint: str) -> Catalog:
    return two_kms_keys(tmp_path, moto_endpoint)


@pytest.fixture
def asked() -> list[str | None]:
    """The connection ids ``clients`` was asked for, in order."""
    return []


@pytest.fixture
def clients(moto_endpoint: str, asked: list[str | None]) -> Callable[[str | None], Callable[[], Any]]:
    """KMS clients per connection id: ``KEY_CONN`` in eu-west-1, any other in us-east-1 (both on moto)."""

    def factory(aws_conn_id: str | None) -> Callable[[], Any]:
        asked.append(aws_conn_id)
        region = "eu-west-1" if aws_conn_id == KEY_CONN else "us-east-1"
        return lambda: kms_client(moto_endpoint, region)

    return factory


def test_each_kms_key_is_reached_through_the_clients_of_its_own_connection(
    catalog: Catalog, tmp_path: Path, clients: Callable[[str | None], Any], asked: list[str | None]
) -> None:
    keys = KeySource(catalog, tmp_path / "ring.json", kms_clients=clients)

    assert round_trip(keys, "pii-columns") == b"k" * 32  # its key exists only where KEY_CONN reaches
    assert round_trip(keys, "backups") == b"k" * 32
    assert asked == [KEY_CONN, None]


def test_a_provider_is_built_once_per_key_and_serves_its_per_subject_keys(
    catalog: Catalog, tmp_path: Path, clients: Callable[[str | None], Any], asked: list[str | None]
) -> None:
    keys = KeySource(catalog, tmp_path / "ring.json", kms_clients=clients)

    pii = keys.provider("pii-columns")
    assert isinstance(pii, AwsKmsProvider) and keys.provider("pii-columns") is pii
    assert keys.provider("backups") is keys.provider("backups") is not pii
    local = keys.provider("aisec-pseudonyms")
    assert isinstance(local, LocalKeyProvider) and local.keyring.path == tmp_path / "ring.json"
    store = keys.subject_keys(catalog.dataset("customers"))
    assert isinstance(store, WrappedSubjectKeys) and store.key_provider is pii
    stores = keys.subject_key_stores()
    assert [type(s) for s in stores] == [KeyringSubjectKeys, WrappedSubjectKeys]
    assert stores[1].key_provider is pii  # type: ignore[attr-defined]
    assert asked == [KEY_CONN, None]  # one client factory per connection


def test_a_key_the_catalog_does_not_declare_is_refused_naming_the_declared_ones(catalog: Catalog) -> None:
    with pytest.raises(
        KeyringError,
        match=r"key 'nope' is not declared in the catalog's keys \(declared: aisec-pseudonyms, backups, pii-",
    ):
        KeySource(catalog).provider("nope")


def test_the_core_default_uses_boto3s_chain_whatever_the_connection() -> None:
    assert default_kms_clients("any-connection") is default_kms_clients(None) is default_kms_client


def test_the_airflow_key_source_reaches_each_key_through_its_connection(
    catalog: Catalog, tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch,
    aws_keys: tuple[str, str],
) -> None:  # fmt: skip
    from airflow_aisec.hooks.kms import key_source

    # Airflow reads AIRFLOW_CONN_<ID> before any other secrets backend, so no database is needed.
    for conn_id, region in ((KEY_CONN, "eu-west-1"), (TASK_CONN, "us-east-1")):
        conn = {"conn_type": "aws", "login": aws_keys[0], "password": aws_keys[1],
                "extra": {"region_name": region, "endpoint_url": moto_endpoint}}  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))

    keys = key_source(catalog, tmp_path / "ring.json", aws_conn_id=TASK_CONN)

    assert round_trip(keys, "pii-columns") == b"k" * 32  # through KEY_CONN, the key's own connection
    assert round_trip(keys, "backups") == b"k" * 32  # through TASK_CONN, the task's
    pii = keys.provider("pii-columns")
    assert isinstance(pii, AwsKmsProvider) and pii.client.meta.region_name == "eu-west-1"
    assert aws_keys[1] not in repr(keys) + repr(pii)

"""Pick the key provider a catalog key names (local keyring or AWS KMS), and where per-subject keys live.

Core code only: an Airflow task passes ``kms_client_factory`` (e.g. ``KmsHook(conn_id).get_client``) to use
the credentials of an Airflow connection; without one, boto3's own credential chain is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.crypto.kms import AwsKmsProvider, client_config
from airflow_aisec.crypto.providers import KeyProvider, LocalKeyProvider
from airflow_aisec.exceptions import KeyringError

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog, Dataset, KeySpec
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.subjects import SubjectKeys
    from airflow_aisec.io.storage import S3Options


def default_kms_client() -> Any:
    """A boto3 KMS client from the environment; ``AWS_ENDPOINT_URL_KMS``/``AWS_ENDPOINT_URL`` override the
    endpoint (e.g. a KMS emulator in tests)."""
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL_KMS") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("kms", endpoint_url=endpoint or None, config=client_config())


def provider_for(
    spec: KeySpec | None,
    *,
    key_name: str | None = None,
    keyring: str | None = None,
    kms_client_factory: Callable[[], Any] | None = None,
) -> KeyProvider:
    """The provider of a catalog key spec (None: the local keyring).

    :param key_name: our name of the key; needed to map it to ``spec.key_id`` (else ``alias/<name>``).
    :param keyring: local keyring path (overrides ``AISEC_KEYRING`` and ``[aisec] keyring``).
    :param kms_client_factory: returns a boto3 KMS client (default: ``default_kms_client``).
    """
    if spec is None or spec.provider == "local":
        return LocalKeyProvider(config.get_setting("keyring", keyring))
    if spec.provider == "aws-kms":
        if spec.key_id and not key_name:
            raise KeyringError(f"KMS key {spec.key_id!r}: pass key_name to map it to one of our key names")
        key_ids = {key_name: spec.key_id} if key_name and spec.key_id else {}
        return AwsKmsProvider(kms_client_factory or default_kms_client, key_ids=key_ids)
    raise KeyringError(f"unknown key provider {spec.provider!r} (expected local or aws-kms)")


def provider_for_key(
    catalog: Catalog,
    key_name: str,
    *,
    keyring: str | None = None,
    kms_client_factory: Callable[[], Any] | None = None,
) -> KeyProvider:
    """The provider of key ``key_name`` as declared in the catalog's ``keys:`` section."""
    spec = catalog.keys.get(key_name)
    if spec is None:
        declared = ", ".join(sorted(catalog.keys)) or "none"
        raise KeyringError(f"key {key_name!r} is not declared in the catalog's keys (declared: {declared})")
    return provider_for(spec, key_name=key_name, keyring=keyring, kms_client_factory=kms_client_factory)


def subject_keys_for(
    catalog: Catalog,
    dataset: Dataset,
    keyring: LocalKeyring,
    *,
    kms_client_factory: Callable[[], Any] | None = None,
    s3: S3Options | None = None,
) -> SubjectKeys:
    """Where the per-subject keys of ``dataset`` live, chosen like its column keys: by its encryption key.

    A local key (or none): the local keyring. An ``aws-kms`` key: wrapped by that KMS key and kept under the
    key's ``subject_keys`` location (``s3`` reaches an ``s3://`` one; default: the environment).
    """
    from airflow_aisec.crypto.subjects import KeyringSubjectKeys, WrappedSubjectKeys

    key_name = dataset.encryption.key if dataset.encryption else None
    spec = catalog.keys.get(key_name) if key_name else None
    if key_name is None or spec is None or spec.provider == "local":
        return KeyringSubjectKeys(keyring)
    if not spec.subject_keys:
        raise KeyringError(
            f"dataset {dataset.name}: per-subject keys are wrapped under the aws-kms key {key_name!r}: set "
            f"keys.{key_name}.subject_keys to the folder or s3:// prefix that keeps them"
        )
    from airflow_aisec.io.storage import Location

    provider = provider_for(spec, key_name=key_name, kms_client_factory=kms_client_factory)
    return WrappedSubjectKeys(provider, key_name, Location.parse(spec.subject_keys, s3))


def subject_key_stores(
    catalog: Catalog,
    keyring: LocalKeyring,
    *,
    kms_client_factory: Callable[[], Any] | None = None,
    s3: S3Options | None = None,
) -> list[SubjectKeys]:
    """Every store holding per-subject keys of ``catalog``'s datasets (the local keyring first, always):
    shredding a subject must reach each of them."""
    from airflow_aisec.crypto.subjects import KeyringSubjectKeys

    stores: list[SubjectKeys] = [KeyringSubjectKeys(keyring)]
    seen = {("local", str(keyring.path))}
    for dataset in catalog.datasets.values():
        if dataset.encryption is None or not dataset.encryption.per_subject_columns:
            continue
        store = subject_keys_for(catalog, dataset, keyring, kms_client_factory=kms_client_factory, s3=s3)
        if (store.provider, store.where()) not in seen:
            seen.add((store.provider, store.where()))
            stores.append(store)
    return stores

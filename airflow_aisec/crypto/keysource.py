"""``KeySource``: the one place the key providers and per-subject key stores of a catalog are built.

A catalog key (``keys.<name>``) is ``local`` (the local keyring file) or ``aws-kms``. KMS clients come from
``kms_clients``, a function of the key's ``aws_conn_id``: the core default ignores the id and uses boto3's
credential chain (``default_kms_client``); in Airflow, ``airflow_aisec.hooks.kms.key_source`` builds a
``KeySource`` whose clients carry the credentials of the key's Airflow connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.kms import AwsKmsProvider, client_config
from airflow_aisec.crypto.providers import KeyProvider, LocalKeyProvider
from airflow_aisec.exceptions import KeyringError

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog, Dataset, KeySpec
    from airflow_aisec.crypto.subjects import SubjectKeys
    from airflow_aisec.io.storage import S3Options

KmsClientFactory = Callable[[], Any]
"""Returns a boto3 KMS client; a provider calls it once, on first use."""
KmsClients = Callable[[str | None], KmsClientFactory]
"""The KMS client factory for a catalog key's ``aws_conn_id`` (None when the key names no connection)."""


def default_kms_client() -> Any:
    """A boto3 KMS client from the environment; ``AWS_ENDPOINT_URL_KMS``/``AWS_ENDPOINT_URL`` override the
    endpoint (e.g. a KMS emulator in tests)."""
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL_KMS") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("kms", endpoint_url=endpoint or None, config=client_config())


def default_kms_clients(aws_conn_id: str | None) -> KmsClientFactory:
    """boto3's credential chain for every key: outside Airflow a connection id names nothing."""
    return default_kms_client


def provider_for(
    spec: KeySpec | None,
    *,
    key_name: str | None = None,
    keyring: LocalKeyring | str | None = None,
    kms_client_factory: KmsClientFactory | None = None,
) -> KeyProvider:
    """The provider of a catalog key spec (None: the local keyring).

    :param key_name: our name of the key; needed to map it to ``spec.key_id`` (else ``alias/<name>``).
    :param keyring: local keyring, or its path (overrides ``AISEC_KEYRING`` and ``[aisec] keyring``).
    :param kms_client_factory: returns a boto3 KMS client (default: ``default_kms_client``).
    """
    if spec is None or spec.provider == "local":
        if isinstance(keyring, LocalKeyring):
            return LocalKeyProvider(keyring)
        return LocalKeyProvider(config.get_setting("keyring", keyring))
    if spec.provider == "aws-kms":
        if spec.key_id and not key_name:
            raise KeyringError(f"KMS key {spec.key_id!r}: pass key_name to map it to one of our key names")
        key_ids = {key_name: spec.key_id} if key_name and spec.key_id else {}
        return AwsKmsProvider(kms_client_factory or default_kms_client, key_ids=key_ids)
    raise KeyringError(f"unknown key provider {spec.provider!r} (expected local or aws-kms)")


class KeySource:
    """The keys a catalog declares: each key's provider, built once, and the stores of per-subject keys.

    :param catalog: the catalog whose ``keys:`` section names the master keys.
    :param keyring: the local keyring (of ``local`` keys and of per-subject keys they cover), or its path;
        default ``AISEC_KEYRING``, else ``[aisec] keyring``.
    :param kms_clients: the KMS client factory for a key's ``aws_conn_id`` (default: boto3's chain).
    :param s3: reaches an ``s3://`` ``subject_keys`` location (default: the environment).
    """

    def __init__(
        self,
        catalog: Catalog,
        keyring: LocalKeyring | str | os.PathLike[str] | None = None,
        *,
        kms_clients: KmsClients = default_kms_clients,
        s3: S3Options | None = None,
    ) -> None:
        self.catalog = catalog
        if not isinstance(keyring, LocalKeyring):
            keyring = LocalKeyring(config.get_setting("keyring", os.fspath(keyring) if keyring else None))
        self.keyring = keyring
        self.kms_clients = kms_clients
        self.s3 = s3
        self._providers: dict[str, KeyProvider] = {}
        self._clients: dict[str | None, KmsClientFactory] = {}

    def __repr__(self) -> str:
        return f"KeySource(keys={sorted(self.catalog.keys)!r}, keyring={self.keyring!r})"

    def spec(self, key_name: str) -> KeySpec:
        """The catalog's declaration of ``key_name``; ``KeyringError`` naming the declared keys if none."""
        spec = self.catalog.keys.get(key_name)
        if spec is None:
            declared = ", ".join(sorted(self.catalog.keys)) or "none"
            raise KeyringError(
                f"key {key_name!r} is not declared in the catalog's keys (declared: {declared})"
            )
        return spec

    def provider(self, key_name: str) -> KeyProvider:
        """The provider of catalog key ``key_name`` (the same object on every call)."""
        if key_name not in self._providers:
            spec = self.spec(key_name)
            factory = self._client_factory(spec.aws_conn_id) if spec.provider == "aws-kms" else None
            self._providers[key_name] = provider_for(
                spec, key_name=key_name, keyring=self.keyring, kms_client_factory=factory
            )
        return self._providers[key_name]

    def _client_factory(self, aws_conn_id: str | None) -> KmsClientFactory:
        if aws_conn_id not in self._clients:
            self._clients[aws_conn_id] = self.kms_clients(aws_conn_id)
        return self._clients[aws_conn_id]

    def subject_keys(self, dataset: Dataset) -> SubjectKeys:
        """Where the per-subject keys of ``dataset`` live, chosen like its column keys: by its encryption key.

        A local key (or none, or one the catalog does not declare): the local keyring. An ``aws-kms`` key:
        wrapped by that key's provider and kept under the key's ``subject_keys`` location.
        """
        from airflow_aisec.crypto.subjects import KeyringSubjectKeys, WrappedSubjectKeys

        key_name = dataset.encryption.key if dataset.encryption else None
        spec = self.catalog.keys.get(key_name) if key_name else None
        if key_name is None or spec is None or spec.provider == "local":
            return KeyringSubjectKeys(self.keyring)
        if not spec.subject_keys:
            raise KeyringError(
                f"dataset {dataset.name}: per-subject keys are wrapped under the aws-kms key {key_name!r}: "
                f"set keys.{key_name}.subject_keys to the folder or s3:// prefix that keeps them"
            )
        from airflow_aisec.io.storage import Location

        return WrappedSubjectKeys(
            self.provider(key_name), key_name, Location.parse(spec.subject_keys, self.s3)
        )

    def subject_key_stores(self) -> list[SubjectKeys]:
        """Every store holding per-subject keys of the catalog's datasets (the local keyring first, always):
        shredding a subject must reach each of them."""
        from airflow_aisec.crypto.subjects import KeyringSubjectKeys

        stores: list[SubjectKeys] = [KeyringSubjectKeys(self.keyring)]
        seen = {("local", str(self.keyring.path))}
        for dataset in self.catalog.datasets.values():
            if dataset.encryption is None or not dataset.encryption.per_subject_columns:
                continue
            store = self.subject_keys(dataset)
            if (store.provider, store.where()) not in seen:
                seen.add((store.provider, store.where()))
                stores.append(store)
        return stores

"""``KmsHook``: the AWS KMS key provider with the credentials of an Airflow AWS connection; ``key_source``:
a catalog's ``KeySource`` whose KMS keys use them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.crypto.kms import AwsKmsProvider

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.keysource import KmsClientFactory, KmsClients
    from airflow_aisec.io.storage import S3Options


class KmsHook(BaseHook):
    """AWS KMS master keys through an Airflow connection.

    :param aws_conn_id: Airflow connection of type ``aws``; its extras may set ``region_name``,
        ``endpoint_url`` and ``config_kwargs``, e.g. ``{"retries": {"mode": "standard", "max_attempts": 5}}``
        (throttled KMS requests are retried by botocore as configured there).
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    hook_name = "AISec AWS KMS"

    def __init__(self, aws_conn_id: str | None = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id

    def get_client(self) -> Any:
        """A boto3 KMS client built by the Amazon provider's ``AwsBaseHook`` (secrets masked in logs)."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="kms").get_conn()

    def provider(self, key_ids: Mapping[str, str] | None = None) -> AwsKmsProvider:
        """An ``AwsKmsProvider`` whose client is made from this connection on first use."""
        return AwsKmsProvider(self.get_client, key_ids=key_ids)


def kms_clients(aws_conn_id: str | None = KmsHook.default_conn_name) -> KmsClients:
    """KMS clients for ``KeySource``: through the key's ``aws_conn_id``, else ``aws_conn_id``, else
    ``aws_default``."""

    def clients(key_conn_id: str | None) -> KmsClientFactory:
        return KmsHook(aws_conn_id=key_conn_id or aws_conn_id or KmsHook.default_conn_name).get_client

    return clients


def key_source(
    catalog: Catalog,
    keyring: LocalKeyring | str | os.PathLike[str] | None = None,
    *,
    aws_conn_id: str | None = KmsHook.default_conn_name,
    s3: S3Options | None = None,
) -> KeySource:
    """The catalog's keys, each ``aws-kms`` key reached through its ``aws_conn_id`` connection (else
    ``aws_conn_id``, a task's connection; else ``aws_default``).

    :param keyring: local keyring, or its path; default ``[aisec] keyring``.
    :param s3: reaches an ``s3://`` ``subject_keys`` location (default: the environment).
    """
    return KeySource(catalog, keyring, kms_clients=kms_clients(aws_conn_id), s3=s3)

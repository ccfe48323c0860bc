"""``KmsHook``: the AWS KMS key provider with the credentials of an Airflow AWS connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseHook

from airflow_aisec.crypto.kms import AwsKmsProvider


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

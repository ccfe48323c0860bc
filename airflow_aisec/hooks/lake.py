"""``LakeHook``: turns an Airflow AWS connection into the ``S3Options`` the dataset I/O layer uses."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseHook

from airflow_aisec.io.storage import Location, S3Options, endpoint_from_environment


class LakeHook(BaseHook):
    """Access to the data lake (local paths or S3) with the credentials of an Airflow AWS connection.

    :param aws_conn_id: Airflow connection of type ``aws``; its extras may set ``region_name`` and
        ``endpoint_url`` (for MinIO and other S3-compatible stores). ``None`` uses the boto3 credential
        chain of the worker (environment, config files, instance role) instead.
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    hook_name = "AISec data lake"

    def __init__(self, aws_conn_id: str | None = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id

    def s3_options(self) -> S3Options:
        """Credentials, region and endpoint for S3, resolved now (temporary credentials are frozen)."""
        if self.aws_conn_id is None:
            return S3Options.from_environment()
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        aws = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="s3")
        # get_credentials also masks the secret and token in task logs.
        credentials = aws.get_credentials()
        endpoint = aws.conn_config.get_service_endpoint_url("s3") or endpoint_from_environment()
        return S3Options(
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            session_token=credentials.token,
            region=aws.region_name or aws.get_session().region_name,
            endpoint_url=endpoint,
        )

    def location(self, uri_or_path: str | os.PathLike[str]) -> Location:
        """Parse a dataset location; S3 locations carry this hook's options, local paths need none."""
        text = os.fspath(uri_or_path)
        return Location.parse(text, self.s3_options() if text.startswith("s3://") else None)

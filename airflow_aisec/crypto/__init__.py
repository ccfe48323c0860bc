"""Keys and encryption: key providers (the local keyring, embedded and not for production, and AWS KMS)."""

from __future__ import annotations

from airflow_aisec.crypto.keysource import KeySource, provider_for
from airflow_aisec.crypto.kms import AwsKmsProvider
from airflow_aisec.crypto.providers import DataKey, KeyProvider, LocalKeyProvider

__all__ = ["AwsKmsProvider", "DataKey", "KeyProvider", "KeySource", "LocalKeyProvider", "provider_for"]

"""Keyed pseudonyms of subject identifiers: the one keyed hash the audit log, requests and sealing share.

Below ``audit``, ``dsr`` and the rest of ``crypto``: each of them pseudonymizes an identifier the same way,
with the key the catalog names in ``subjects.pseudonym_key``, so an entry, a request and a sealed subject
key name the same subject by the same pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac

from airflow_aisec.exceptions import KeyringError

MIN_KEY_BYTES = 16


class Pseudonymizer:
    """Keyed HMAC-SHA256 pseudonyms: the same identifier always gives the same pseudonym, irreversibly."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise KeyringError(f"pseudonym key is too short (at least {MIN_KEY_BYTES} bytes)")
        self._key = key

    def __repr__(self) -> str:
        return "Pseudonymizer(<key hidden>)"

    def __call__(self, identifier: str) -> str:
        digest = hmac.new(self._key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"hmac-sha256:{digest}"

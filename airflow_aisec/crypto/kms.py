"""``AwsKmsProvider``: master keys in AWS KMS; data keys are generated, wrapped and unwrapped by KMS.

The provider only needs a function that returns a boto3 KMS client, so this module knows nothing of Airflow
(``airflow_aisec.hooks.kms.KmsHook`` builds one from an Airflow AWS connection). Our key names map to KMS
key ids, ARNs or aliases; a name without a mapping is the alias ``alias/<name>``.

How KMS differs from the local keyring:

* **Versions.** A KMS key is one logical key: on rotation KMS adds a new backing key and keeps every old one
  itself, and every ciphertext records which backing key made it. So a KMS key always reports version 1 and
  ``versions`` returns one entry (state, rotation status), never the backing keys.
* **Destruction is never immediate.** ``destroy`` schedules deletion with the shortest window KMS allows
  (7 days). From that moment the key is unusable (Decrypt fails with ``KMSInvalidStateException``) unless
  someone cancels the deletion; KMS erases the key material when the window ends.
* **Retries.** Throttled requests are retried by botocore with exponential backoff, as configured on the
  client (``client_config`` gives the configuration we recommend); when throttling outlasts the retries the
  provider raises a ``KeyringError`` that says KMS is throttling.

Error messages name our key, its KMS id and the operation; they never contain key material, plaintext data
keys or credentials (nor the raw AWS message, which may echo request details).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from airflow_aisec.crypto.providers import DATA_KEY_BYTES, Context, DataKey, KeyProvider
from airflow_aisec.exceptions import KeyringError

log = logging.getLogger(__name__)

KIND = "aws-kms"
KMS_KEY_VERSION = 1  # KMS keeps the backing keys of a rotated key itself: one logical version
MIN_DELETION_WINDOW_DAYS = 7  # the shortest pending window KMS accepts
DEFAULT_MAX_ATTEMPTS = 5
NAME_TAG = "aisec:key-name"

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
_MESSAGES = {
    "AccessDeniedException": "access to {label} denied ({op}): check the key policy and IAM permissions",
    "NotFoundException": "{label} not found ({op}): create it (aisec keys create {name} --provider aws-kms) "
    "or fix its key_id",
    "InvalidCiphertextException": "cannot unwrap data key with {label}: wrong key or encryption context, "
    "or the wrapped key was tampered with",
    "IncorrectKeyException": "cannot unwrap data key with {label}: it was wrapped under another KMS key",
    "KMSInvalidStateException": "{label} cannot be used ({op}): it is disabled or pending deletion, so data "
    "keys it wrapped cannot be unwrapped",
    "DisabledException": "{label} is disabled ({op}): enable it to use it again",
    "LimitExceededException": "KMS quota exceeded for {label} ({op})",
    "ValidationException": "KMS rejected {op} for {label}: invalid key name or parameters",
}
# Where KMS has no RotateKeyOnDemand (older KMS-compatible services) we enable automatic rotation instead.
_NO_ON_DEMAND = frozenset({"UnsupportedOperationException", "UnknownOperationException", "InvalidAction"})


class KmsError(KeyringError):
    """A KMS request failed; ``code`` is the AWS error code (e.g. ``AccessDeniedException``)."""

    def __init__(self, message: str, *, code: str, key_name: str) -> None:
        super().__init__(message)
        self.code = code
        self.key_name = key_name


def client_config(max_attempts: int = DEFAULT_MAX_ATTEMPTS, *, timeout: float = 30.0) -> Any:
    """The botocore ``Config`` we recommend for KMS clients: standard retries (throttling backs off)."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=min(timeout, 10.0),
        read_timeout=timeout,
    )


class AwsKmsProvider(KeyProvider):
    """Master keys in AWS KMS.

    :param client_factory: returns a boto3 KMS client; called once, on first use.
    :param key_ids: our key name -> KMS key id, key ARN, alias name or alias ARN. Unmapped names use
        ``alias/<name>``, and ``create`` makes the key and that alias when missing.
    """

    kind = KIND
    production_ready = True

    def __init__(self, client_factory: Callable[[], Any], key_ids: Mapping[str, str] | None = None) -> None:
        self._client_factory = client_factory
        self._key_ids = {name: key_id for name, key_id in (key_ids or {}).items() if key_id}
        self._client: Any = None
        self._lock = threading.Lock()
        self.last_rotation: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"AwsKmsProvider(keys={sorted(self._key_ids)!r})"

    @property
    def client(self) -> Any:
        """The boto3 KMS client (made on first use; boto3 clients are thread-safe)."""
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def key_id(self, key_name: str) -> str:
        """The KMS key id, ARN or alias that ``key_name`` stands for."""
        return self._key_ids.get(key_name) or f"alias/{key_name}"

    def _label(self, key_name: str) -> str:
        return f"KMS key {key_name!r} ({self.key_id(key_name)})"

    def _call(self, key_name: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call a KMS operation; every botocore failure becomes a ``KeyringError`` naming the key."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(self.client, operation)(**params))
        except ClientError as e:
            raise self._error(e, key_name) from None
        except BotoCoreError as e:  # connection, credentials, timeouts: the class name says which
            raise KmsError(
                f"cannot reach KMS for {self._label(key_name)} ({operation}): {type(e).__name__}",
                code=type(e).__name__,
                key_name=key_name,
            ) from None

    def _error(self, error: Any, key_name: str) -> KmsError:
        code = str(error.response.get("Error", {}).get("Code") or "Unknown")
        op = str(getattr(error, "operation_name", "request"))
        label = self._label(key_name)
        if code in THROTTLING_CODES:
            attempts = 1 + int(error.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)
            message = (
                f"KMS is throttling requests: {op} on {label} was still throttled after {attempts} "
                "attempt(s) with backoff; retry later or raise the KMS request quota"
            )
        elif code in _MESSAGES:
            message = _MESSAGES[code].format(label=label, op=op, name=key_name)
        else:
            message = f"KMS {op} on {label} failed: {code}"
        return KmsError(message, code=code, key_name=key_name)

    # -- keys ------------------------------------------------------------------------------------------

    def describe(self, key_name: str) -> dict[str, Any] | None:
        """The KMS ``KeyMetadata`` of ``key_name`` (no key material), or None when it does not exist."""
        try:
            return dict(self._call(key_name, "describe_key", KeyId=self.key_id(key_name))["KeyMetadata"])
        except KmsError as e:
            if e.code == "NotFoundException":
                return None
            raise

    def _metadata(self, key_name: str) -> dict[str, Any]:
        metadata = self.describe(key_name)
        if metadata is None:
            raise KmsError(
                _MESSAGES["NotFoundException"].format(
                    label=self._label(key_name), op="DescribeKey", name=key_name
                ),
                code="NotFoundException",
                key_name=key_name,
            )
        return metadata

    def create(self, key_name: str) -> int:
        """Create a symmetric KMS key and its alias ``alias/<name>`` unless the key exists (idempotent)."""
        metadata = self.describe(key_name)
        if metadata is not None:
            if metadata.get("KeyState") == "PendingDeletion":
                raise KeyringError(
                    f"{self._label(key_name)} is pending deletion: cancel the deletion or use another name"
                )
            return KMS_KEY_VERSION
        alias = self.key_id(key_name)
        if not alias.startswith("alias/"):
            raise KeyringError(
                f"{self._label(key_name)} does not exist, and only keys named by an alias can be created"
            )
        created = self._call(
            key_name,
            "create_key",
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            Description=f"airflow-aisec master key {key_name}",
            Tags=[{"TagKey": NAME_TAG, "TagValue": key_name}],
        )
        new_id = created["KeyMetadata"]["KeyId"]
        try:
            self._call(key_name, "create_alias", AliasName=alias, TargetKeyId=new_id)
        except KmsError as e:
            if e.code != "AlreadyExistsException":
                raise
            # Another process created the key first: keep theirs, schedule our unused key for deletion.
            self._call(
                key_name, "schedule_key_deletion", KeyId=new_id, PendingWindowInDays=MIN_DELETION_WINDOW_DAYS
            )
        log.info("KMS key %r created (%s)", key_name, alias)
        return KMS_KEY_VERSION

    def versions(self, key_name: str) -> list[dict[str, Any]]:
        """One entry for the KMS key: KMS keeps the backing keys of earlier rotations itself."""
        metadata = self._metadata(key_name)
        state = str(metadata.get("KeyState", "Unknown"))
        try:
            status = self._call(key_name, "get_key_rotation_status", KeyId=metadata["KeyId"])
            rotation: bool | None = bool(status.get("KeyRotationEnabled"))
        except KmsError as e:
            if e.code not in ("UnsupportedOperationException", "KMSInvalidStateException"):
                raise
            rotation = None  # not applicable to this key, or it is pending deletion
        entry = {
            "version": KMS_KEY_VERSION,
            "state": {"Enabled": "active", "PendingDeletion": "pending-deletion"}.get(state, state.lower()),
            "key_state": state,
            "created": _iso(metadata.get("CreationDate")),
            "key_id": metadata.get("KeyId"),
            "arn": metadata.get("Arn"),
            "rotation_enabled": rotation,
        }
        if metadata.get("DeletionDate"):
            entry["deletion_date"] = _iso(metadata["DeletionDate"])
        return [entry]

    # -- data keys -------------------------------------------------------------------------------------

    def wrap(self, key_name: str, plaintext: bytes, context: Context) -> tuple[bytes, int]:
        response = self._call(
            key_name,
            "encrypt",
            KeyId=self.key_id(key_name),
            Plaintext=plaintext,
            EncryptionContext=dict(context),
        )
        return bytes(response["CiphertextBlob"]), KMS_KEY_VERSION

    def unwrap(self, key_name: str, wrapped: bytes, context: Context) -> bytes:
        # KeyId pins the key: KMS refuses a blob made under any other key instead of using that key.
        response = self._call(
            key_name,
            "decrypt",
            KeyId=self.key_id(key_name),
            CiphertextBlob=wrapped,
            EncryptionContext=dict(context),
        )
        return bytes(response["Plaintext"])

    def generate_data_key(self, key_name: str, context: Context) -> DataKey:
        """A 256-bit data key generated by KMS, with its wrapped form (one KMS request)."""
        response = self._call(
            key_name,
            "generate_data_key",
            KeyId=self.key_id(key_name),
            KeySpec="AES_256",
            EncryptionContext=dict(context),
        )
        plaintext = bytes(response["Plaintext"])
        if len(plaintext) != DATA_KEY_BYTES:
            raise KeyringError(f"{self._label(key_name)} returned a data key of unexpected length")
        return DataKey(plaintext, bytes(response["CiphertextBlob"]), key_name, KMS_KEY_VERSION, self.kind)

    # -- lifecycle -------------------------------------------------------------------------------------

    def rotate(self, key_name: str) -> int:
        """Rotate now (``RotateKeyOnDemand``), else enable automatic yearly rotation; see ``last_rotation``.

        Either way the KMS key keeps its id and version 1: old ciphertexts still decrypt.
        """
        self.last_rotation = self.rotate_now(key_name)
        return KMS_KEY_VERSION

    def rotate_now(self, key_name: str) -> dict[str, Any]:
        """Rotate ``key_name`` and report what happened: ``{"key", "key_id", "method", ...}``."""
        key_id = str(self._metadata(key_name)["KeyId"])
        report: dict[str, Any] = {"key": key_name, "key_id": key_id, "provider": self.kind}
        if hasattr(self.client, "rotate_key_on_demand"):
            try:
                self._call(key_name, "rotate_key_on_demand", KeyId=key_id)
            except KmsError as e:
                if e.code not in _NO_ON_DEMAND:
                    raise
            else:
                report["method"] = "on-demand"
                log.info("KMS key %r rotated on demand", key_name)
                return report
        self._call(key_name, "enable_key_rotation", KeyId=key_id)
        report["method"] = "automatic-rotation-enabled"
        log.info("KMS key %r: on-demand rotation unavailable, automatic rotation enabled", key_name)
        return report

    def destroy(self, key_name: str, version: int | None = None) -> bool:
        """Schedule deletion of the KMS key with the minimum 7-day window; False if already pending or gone.

        KMS never deletes a key at once: from now on the key cannot wrap or unwrap (unless someone cancels
        the deletion), and KMS erases it when the window ends. Single versions cannot be destroyed.
        """
        if version not in (None, KMS_KEY_VERSION):
            raise KeyringError(
                f"{self._label(key_name)} has no version {version}: KMS keeps rotated backing keys itself, "
                "so only the whole key can be destroyed"
            )
        metadata = self.describe(key_name)
        if metadata is None or metadata.get("KeyState") in ("PendingDeletion", "PendingReplicaDeletion"):
            return False
        try:
            response = self._call(
                key_name,
                "schedule_key_deletion",
                KeyId=metadata["KeyId"],
                PendingWindowInDays=MIN_DELETION_WINDOW_DAYS,
            )
        except KmsError as e:
            # A concurrent destroy got there first: the key is pending deletion, which is what we want.
            if e.code == "KMSInvalidStateException" and self._pending_deletion(key_name):
                return False
            raise
        log.info("KMS key %r: deletion scheduled for %s", key_name, _iso(response.get("DeletionDate")))
        return True

    def _pending_deletion(self, key_name: str) -> bool:
        metadata = self.describe(key_name)
        return metadata is None or metadata.get("KeyState") == "PendingDeletion"


def _iso(value: Any) -> str | None:
    """ISO-8601 text of a botocore timestamp (datetime), for JSON output."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    return None if value is None else str(value)

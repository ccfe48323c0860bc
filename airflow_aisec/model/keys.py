"""The keys that sign and verify model artifacts: elliptic-curve keys in the local keyring, or in AWS KMS.

A key is named by a reference: ``NAME`` is a key of the local keyring (kind ``ec-p256`` or ``ec-p384``: the
embedded default, NOT for production); ``aws-kms:<key id, ARN or alias>`` is an AWS KMS asymmetric key
(``ECC_NIST_P256``, usage ``SIGN_VERIFY``), whose private half never leaves KMS.

A signing key behaves like a ``cryptography`` elliptic-curve private key as far as signing goes (``sign``
and ``public_key``), which is all the OpenSSF Model Signing format asks of one. Its ``fingerprint`` is the
SHA-256 of its public key's PEM, which is the key hint the signature bundle carries; ``key_id`` is how audit
entries and messages name it. Neither ever holds or shows private key material.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)

from airflow_aisec import config
from airflow_aisec.crypto.keyring import EC_CURVES, LocalKeyring
from airflow_aisec.crypto.kms import MIN_DELETION_WINDOW_DAYS, NAME_TAG, AwsKmsProvider, KmsError
from airflow_aisec.exceptions import KeyringError, ModelSignatureError

KMS_PREFIX = "aws-kms:"
KMS_SIGNING_SPEC = "ECC_NIST_P256"
# KMS signs at most 4096 bytes as a message; above that it signs the message's digest.
KMS_RAW_LIMIT = 4096
_KMS_ALGORITHMS = {256: "ECDSA_SHA_256", 384: "ECDSA_SHA_384"}
_HASHES: dict[int, Callable[[], hashes.HashAlgorithm]] = {256: hashes.SHA256, 384: hashes.SHA384}
SUPPORTED_CURVES = ("secp256r1", "secp384r1")

KmsClientFactory = Callable[[], Any]


def fingerprint(public: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 (hex) of the public key's PEM: the key hint of a signature bundle."""
    return hashlib.sha256(public_pem(public).encode()).hexdigest()


def public_pem(public: ec.EllipticCurvePublicKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo): safe to share."""
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def _checked(public: Any, where: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name not in SUPPORTED_CURVES:
        raise KeyringError(f"{where} is not a P-256 or P-384 elliptic-curve public key")
    return public


@dataclass(frozen=True)
class VerifyingKey:
    """A public key that verifies model signatures, and how to name it."""

    public: ec.EllipticCurvePublicKey
    key_id: str

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the public key's PEM (the bundle's key hint)."""
        return fingerprint(self.public)

    def __repr__(self) -> str:
        return f"VerifyingKey({self.key_id!r}, {self.fingerprint[:16]})"


class SigningKey(abc.ABC):
    """A private elliptic-curve key that signs (in the keyring or in KMS); its material is never shown."""

    key_id: str = ""

    @abc.abstractmethod
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""

    @abc.abstractmethod
    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """A DER-encoded ECDSA signature of ``data`` (the hash named by ``signature_algorithm``)."""

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the public key's PEM (the bundle's key hint)."""
        return fingerprint(self.public_key())

    def verifying_key(self) -> VerifyingKey:
        """The public key that verifies what this key signs."""
        return VerifyingKey(self.public_key(), self.key_id)

    def __repr__(self) -> str:  # never the private key
        return f"{type(self).__name__}({self.key_id!r})"


class LocalSigningKey(SigningKey):
    """An ``ec-p256``/``ec-p384`` key of the local keyring: the embedded default, NOT for production."""

    def __init__(self, private: ec.EllipticCurvePrivateKey, key_id: str) -> None:
        self._private = private
        self.key_id = key_id

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._private.public_key()

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        return self._private.sign(data, signature_algorithm)


class KmsSigningKeys(AwsKmsProvider):
    """AWS KMS asymmetric signing keys (``ECC_NIST_P256``, ``SIGN_VERIFY``): create, public key, sign.

    The KMS client and the error messages (naming our key, its KMS id and the operation, never credentials)
    are those of ``AwsKmsProvider``; a reference names the KMS key directly, so our name is its KMS id.
    """

    def create_signing_key(self, key_name: str, key_spec: str = KMS_SIGNING_SPEC) -> str:
        """Create the signing key and its alias ``alias/<name>`` unless it exists; return its KMS key id."""
        metadata = self.describe(key_name)
        if metadata is not None:
            if metadata.get("KeyUsage") != "SIGN_VERIFY":
                raise KeyringError(f"{self._label(key_name)} exists but is not a signing key")
            return str(metadata["KeyId"])
        alias = self.key_id(key_name)
        if not alias.startswith("alias/"):
            raise KeyringError(f"{self._label(key_name)} does not exist; only aliases can be created")
        created = self._call(
            key_name,
            "create_key",
            KeySpec=key_spec,
            KeyUsage="SIGN_VERIFY",
            Description=f"airflow-aisec model signing key {key_name}",
            Tags=[{"TagKey": NAME_TAG, "TagValue": key_name}],
        )
        key_id = str(created["KeyMetadata"]["KeyId"])
        try:
            self._call(key_name, "create_alias", AliasName=alias, TargetKeyId=key_id)
        except KmsError as e:
            if e.code != "AlreadyExistsException":
                raise
            # Another process created the key first: keep theirs, schedule our unused key for deletion.
            self._call(
                key_name, "schedule_key_deletion", KeyId=key_id, PendingWindowInDays=MIN_DELETION_WINDOW_DAYS
            )
            return self.create_signing_key(key_name, key_spec)
        return key_id

    def _signing_call(self, key_name: str, operation: str, **params: Any) -> dict[str, Any]:
        """A KMS call on a signing key; a missing key says how to create a signing key."""
        try:
            return self._call(key_name, operation, **params)
        except KmsError as e:
            if e.code != "NotFoundException":
                raise
            alias = self.key_id(key_name).removeprefix("alias/")
            raise KmsError(
                f"{self._label(key_name)} not found: create a signing key "
                f"(aisec keys create {alias} --provider aws-kms --kind ec-p256) or fix the key reference",
                code=e.code,
                key_name=key_name,
            ) from None

    def public_key(self, key_name: str) -> ec.EllipticCurvePublicKey:
        """The public half of the KMS signing key (``GetPublicKey``)."""
        response = self._signing_call(key_name, "get_public_key", KeyId=self.key_id(key_name))
        return _checked(load_der_public_key(bytes(response["PublicKey"])), self._label(key_name))

    def sign_bytes(self, key_name: str, data: bytes, curve_bits: int) -> bytes:
        """An ECDSA signature of ``data`` by KMS: the message itself up to 4096 bytes, else its digest."""
        algorithm = _KMS_ALGORITHMS[curve_bits]
        if len(data) <= KMS_RAW_LIMIT:
            message, kind = data, "RAW"
        else:
            digest = hashes.Hash(_HASHES[curve_bits]())
            digest.update(data)
            message, kind = digest.finalize(), "DIGEST"
        response = self._signing_call(
            key_name,
            "sign",
            KeyId=self.key_id(key_name),
            Message=message,
            MessageType=kind,
            SigningAlgorithm=algorithm,
        )
        return bytes(response["Signature"])


class KmsSigningKey(SigningKey):
    """A KMS asymmetric key that signs through KMS (its private half never leaves KMS)."""

    def __init__(self, keys: KmsSigningKeys, key_name: str) -> None:
        self._keys = keys
        self._name = key_name
        self._public: ec.EllipticCurvePublicKey | None = None
        self.key_id = f"{KMS_PREFIX}{keys.key_id(key_name)}"

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            self._public = self._keys.public_key(self._name)
        return self._public

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        return self._keys.sign_bytes(self._name, data, self.public_key().curve.key_size)


def _kms_name(ref: str) -> str:
    name = ref.removeprefix(KMS_PREFIX)
    if not name:
        raise KeyringError(f"key reference {ref!r} names no KMS key: use aws-kms:<key id, ARN or alias>")
    return name


def kms_keys(ref: str, client_factory: KmsClientFactory | None = None) -> tuple[KmsSigningKeys, str]:
    """The KMS signing keys reached by ``client_factory`` (default: boto3's chain) and our name of ``ref``."""
    from airflow_aisec.crypto.keysource import default_kms_client

    name = _kms_name(ref)
    return KmsSigningKeys(client_factory or default_kms_client, {name: name}), name


def _keyring(keyring: LocalKeyring | str | os.PathLike[str] | None) -> LocalKeyring:
    if isinstance(keyring, LocalKeyring):
        return keyring
    return LocalKeyring(config.get_setting("keyring", os.fspath(keyring) if keyring else None))


def signing_key(
    ref: str,
    *,
    keyring: LocalKeyring | str | os.PathLike[str] | None = None,
    kms_client_factory: KmsClientFactory | None = None,
) -> SigningKey:
    """The signing key a reference names: ``aws-kms:<id>`` in KMS, else the keyring key's active version."""
    if ref.startswith(KMS_PREFIX):
        keys, name = kms_keys(ref, kms_client_factory)
        return KmsSigningKey(keys, name)
    version = _keyring(keyring).get(ref)
    if version.kind not in EC_CURVES:
        raise KeyringError(
            f"key {ref!r} is a {version.kind} key: model signatures need an elliptic-curve key "
            f"(aisec keys create NAME --kind ec-p256)"
        )
    return LocalSigningKey(version.ec_signing_key(), f"local:{ref}@v{version.version}")


def verifying_keys(
    ref: str | None = None,
    *,
    public_key: str | os.PathLike[str] | None = None,
    keyring: LocalKeyring | str | os.PathLike[str] | None = None,
    kms_client_factory: KmsClientFactory | None = None,
) -> list[VerifyingKey]:
    """The public keys a signature may be checked with: a PEM file, a KMS key's, or every live version of a
    keyring key (so a model signed before a rotation still verifies)."""
    if (ref is None) == (public_key is None):
        raise ModelSignatureError("give either a key reference or a public key file to verify with")
    if public_key is not None:
        path = Path(public_key)
        try:
            loaded = load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as e:
            raise KeyringError(f"cannot read public key {path}: {type(e).__name__}") from None
        return [VerifyingKey(_checked(loaded, f"public key {path}"), f"file:{path.name}")]
    assert ref is not None
    if ref.startswith(KMS_PREFIX):
        return [signing_key(ref, kms_client_factory=kms_client_factory).verifying_key()]
    found = []
    for version in _keyring(keyring).versions(ref):
        if version.state == "destroyed":
            continue
        if version.kind not in EC_CURVES:
            raise KeyringError(f"key {ref!r} is a {version.kind} key, not an elliptic-curve signing key")
        found.append(VerifyingKey(version.ec_signing_key().public_key(), f"local:{ref}@v{version.version}"))
    if not found:
        raise KeyringError(f"key {ref!r} has no version left to verify with (all destroyed)")
    return found


def public_key_pem(
    ref: str,
    *,
    keyring: LocalKeyring | str | os.PathLike[str] | None = None,
    kms_client_factory: KmsClientFactory | None = None,
) -> str:
    """The PEM public key of the signing key ``ref`` names (to hand to whoever verifies)."""
    return public_pem(signing_key(ref, keyring=keyring, kms_client_factory=kms_client_factory).public_key())

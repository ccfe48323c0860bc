"""The OpenSSF Model Signing format, through the ``model-signing`` library (the optional extra ``models``).

A model (one file, or a folder of files) is hashed into a manifest: every file's path inside the model and
its SHA-256. The signature file (the "bundle") is a Sigstore bundle (media type
``application/vnd.dev.sigstore.bundle.v0.3+json``) whose DSSE envelope holds an in-toto statement: subject
the model's name with the SHA-256 over every file digest in path order (the manifest digest), predicate
``https://model_signing/signature/v1.0`` listing each file's digest and how the model was hashed. The
envelope is signed with an elliptic-curve key (ECDSA over the DSSE pre-authentication encoding); the bundle's
verification material carries the key hint (SHA-256 of the public key's PEM), no certificate and no
transparency-log entry: signing is by our keys only, and nothing reaches the network.

The library's key-based signer reads a private key from a PEM file; ours never write key material to disk, so
the signer and verifier here take key objects (``airflow_aisec.model.keys``) instead.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from airflow_aisec.exceptions import ModelSignatureError

try:
    from model_signing import hashing, manifest
    from model_signing._signing import sign_ec_key, sign_sigstore_pb, signing
except ImportError:  # the optional extra
    raise ModelSignatureError(
        "model signing needs the model-signing library: pip install 'airflow-aisec[models]'"
    ) from None
from airflow_aisec.model.keys import SigningKey, VerifyingKey

Manifest = manifest.Manifest
HASH_ALGORITHM: Literal["sha256"] = "sha256"
HashType = Literal["sha256", "blake2", "blake3"]
# What a malformed or altered bundle raises while it is parsed or checked (never key material in any).
BAD_BUNDLE = (ValueError, KeyError, TypeError, IndexError, AttributeError, binascii.Error, InvalidSignature)


class BundleError(ModelSignatureError):
    """A signature file that cannot be read as a bundle, or whose signature does not verify."""


class _KeySigner(sign_ec_key.Signer):
    """The library's elliptic-curve signer over one of our keys instead of a PEM file."""

    def __init__(self, key: SigningKey) -> None:  # the base class would read a private key file
        self._private_key = key  # type: ignore[assignment]  # it signs like a cryptography EC key


class _KeyVerifier(sign_ec_key.Verifier):
    """The library's elliptic-curve verifier over a public key object instead of a PEM file."""

    def __init__(self, public: ec.EllipticCurvePublicKey) -> None:
        self._public_key = public


def hash_model(path: Path, ignore: Iterable[str] = (), name: str | None = None) -> Manifest:
    """The manifest of the model at ``path`` (SHA-256 per file; ``ignore``: paths inside it to leave out),
    under the model's ``name`` (default the file or folder name), which the bundle's statement carries."""
    config = hashing.Config().set_ignored_paths(paths=list(ignore), ignore_git_paths=False)  # type: ignore[no-untyped-call]
    config.use_file_serialization(hashing_algorithm=HASH_ALGORITHM, allow_symlinks=False)
    try:
        hashed = config.hash(path)
    except (OSError, ValueError) as e:
        raise ModelSignatureError(f"cannot hash model {path}: {type(e).__name__}: {e}") from None
    if not name or name == hashed.model_name:
        return hashed
    serialization = manifest.SerializationType.from_args(hashed.serialization_type)
    items = [serialization.new_item(d.identifier, d.digest) for d in hashed.resource_descriptors()]
    return manifest.Manifest(name, items, serialization)


def rehash(path: Path, signed: Manifest) -> Manifest:
    """The manifest of ``path`` now, hashed exactly as the signed manifest says it was hashed."""
    args = signed.serialization_type
    ignore = [Path(str(p)) for p in args.get("ignore_paths", ())]
    config = hashing.Config().set_ignored_paths(paths=ignore, ignore_git_paths=False)  # type: ignore[no-untyped-call]
    algorithm = cast(HashType, args.get("hash_type"))
    try:
        if args.get("method") == "shards":
            config.use_shard_serialization(
                hashing_algorithm=algorithm,
                shard_size=int(args["shard_size"]),
                allow_symlinks=bool(args["allow_symlinks"]),
                ignore_paths=ignore,
            )
        else:
            config.use_file_serialization(
                hashing_algorithm=algorithm,
                allow_symlinks=bool(args["allow_symlinks"]),
                ignore_paths=ignore,
            )
        return config.hash(path)
    except (OSError, ValueError, KeyError) as e:
        raise ModelSignatureError(f"cannot hash model {path}: {type(e).__name__}: {e}") from None


def file_digests(signed: Manifest) -> dict[str, str]:
    """File (path inside the model; the file's name for a one-file model) -> hex digest, in path order.

    A sharded manifest lists a file once per shard: its digest here is the digest of its shard digests.
    """
    sharded = signed.serialization_type.get("method") == "shards"
    shards: dict[str, list[str]] = {}
    for item in signed.resource_descriptors():
        name = item.identifier.rsplit(":", 2)[0] if sharded else item.identifier
        shards.setdefault(name, []).append(item.digest.digest_hex)
    return {
        name: parts[0] if len(parts) == 1 else hashlib.sha256("".join(parts).encode()).hexdigest()
        for name, parts in shards.items()
    }


def manifest_digest(signed: Manifest) -> str:
    """SHA-256 over every digest in path order: the bundle's subject digest, one name for the whole model."""
    hasher = hashlib.sha256()
    for item in signed.resource_descriptors():
        hasher.update(item.digest.digest_value)
    return hasher.hexdigest()


def sign_manifest(signed: Manifest, key: SigningKey) -> bytes:
    """The bundle (JSON bytes) signing ``signed`` with ``key``."""
    signature = _KeySigner(key).sign(signing.Payload(signed))
    assert isinstance(signature, sign_sigstore_pb.Signature)
    return signature.bundle.to_json().encode("utf-8")


def read_bundle(path: Path) -> sign_sigstore_pb.Signature:
    """The bundle at ``path``, parsed (not yet verified); ``BundleError`` if it is not one."""
    try:
        return sign_sigstore_pb.Signature.read(path)
    except BAD_BUNDLE as e:
        raise BundleError(
            f"signature file {path} is not a model signature bundle ({type(e).__name__})"
        ) from None


def key_hint(bundle: sign_sigstore_pb.Signature) -> str | None:
    """The fingerprint of the key the bundle says signed it (None when it names none)."""
    material: Any = bundle.bundle.verification_material
    public = getattr(material, "public_key", None)
    hint = getattr(public, "hint", None)
    return str(hint) if hint else None


def signed_manifest(bundle: sign_sigstore_pb.Signature, key: VerifyingKey, where: Path) -> Manifest:
    """The manifest the bundle signs, once its signature verifies with ``key``; ``BundleError`` otherwise."""
    try:
        return _KeyVerifier(key.public).verify(bundle)
    except BAD_BUNDLE as e:
        raise BundleError(
            f"signature file {where} does not verify with key {key.key_id}: the bundle was altered or "
            f"signed by another key ({type(e).__name__})"
        ) from None

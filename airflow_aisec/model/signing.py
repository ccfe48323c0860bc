"""Sign a model artifact (a file or a folder of files), verify it, and refuse to load one that fails.

``sign_model`` hashes every file, signs the manifest with an elliptic-curve key (local keyring or AWS KMS) and
writes the bundle (default ``<model>.sig`` beside the model) atomically: to a temporary file beside it, read
back and verified against the model's manifest and the key, then renamed into place. ``verify_model`` checks
the bundle's signature with the expected key, then compares every file with the signed manifest and names
the files changed, missing or added. ``verified_model_path`` is the guard for code that loads a model: the
path, only when it verifies. Signing and verifying are recorded in the audit log as ``model.sign`` and
``model.verify`` (``record``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_aisec.exceptions import ModelSignatureError
from airflow_aisec.lineage import DatasetRef
from airflow_aisec.model import bundle
from airflow_aisec.model.keys import KmsClientFactory, SigningKey, VerifyingKey, verifying_keys
from airflow_aisec.model.results import ModelSignature, ModelVerification

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog.models import Catalog
    from airflow_aisec.crypto.keyring import LocalKeyring

log = logging.getLogger(__name__)

SIGNATURE_SUFFIX = ".sig"


def default_signature_path(model_path: str | os.PathLike[str]) -> Path:
    """``<model>.sig`` beside the model file or folder."""
    path = Path(model_path).absolute()
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def _paths(
    model_path: str | os.PathLike[str], signature_path: str | os.PathLike[str] | None
) -> tuple[Path, Path]:
    # Resolved, so a signature named with ".." inside the folder is still left out of the hash.
    path = Path(model_path).resolve()
    signature = Path(signature_path).resolve() if signature_path else default_signature_path(path)
    return path, signature


def _inside(path: Path, signature: Path) -> list[str]:
    """The signature's path inside a model folder, which hashing leaves out (nothing when it is outside)."""
    if path.is_dir() and signature.is_relative_to(path):
        return [str(signature.relative_to(path))]
    return []


def training_inputs(catalog: Catalog | None, names: Iterable[str]) -> tuple[DatasetRef, ...]:
    """The catalog datasets a model was trained on, as lineage inputs; an unknown name is refused."""
    names = list(dict.fromkeys(names))
    if not names:
        return ()
    if catalog is None:
        return tuple(DatasetRef(uri=name, dataset=name) for name in names)
    unknown = [name for name in names if name not in catalog.datasets]
    if unknown:
        known = ", ".join(sorted(catalog.datasets)) or "none"
        raise ModelSignatureError(
            f"training input(s) not in the catalog: {', '.join(unknown)} (catalog datasets: {known})"
        )
    refs = [catalog.datasets[name] for name in names]
    return tuple(DatasetRef(uri=d.uri, dataset=d.name, location=d.uri) for d in refs)


def sign_model(
    model_path: str | os.PathLike[str],
    key: SigningKey,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
    inputs: Sequence[DatasetRef] = (),
) -> ModelSignature:
    """Sign the model at ``model_path`` (file or folder) with ``key``; write its bundle atomically.

    :param signature_path: where the bundle goes (default ``<model>.sig``); inside a model folder it is left
        out of what is signed.
    :param name: the model's name in lineage (``model://<name>``); default the file or folder name.
    :param inputs: the datasets it was trained on (``training_inputs``).
    """
    path, signature = _paths(model_path, signature_path)
    if not path.exists():
        raise ModelSignatureError(f"model {path} does not exist: nothing to sign")
    log.info("hashing model %s", path)
    manifest = bundle.hash_model(path, _inside(path, signature), name)
    if not bundle.file_digests(manifest):
        raise ModelSignatureError(f"model {path} has no file to sign: its signature would vouch for nothing")
    raw = bundle.sign_manifest(manifest, key)
    _write_verified(signature, raw, manifest, key.verifying_key())
    files = bundle.file_digests(manifest)
    result = ModelSignature(
        name=manifest.model_name,
        path=str(path),
        signature=str(signature),
        key_id=key.key_id,
        key_fingerprint=key.fingerprint,
        manifest_sha256=bundle.manifest_digest(manifest),
        bundle_sha256=hashlib.sha256(raw).hexdigest(),
        files={_display(path, n): d for n, d in files.items()},
        inputs=tuple(inputs),
    )
    log.info("signed model %s (%d file(s)) with %s into %s", path, len(files), key.key_id, signature)
    return result


def _write_verified(target: Path, raw: bytes, manifest: bundle.Manifest, key: VerifyingKey) -> None:
    """Write the bundle beside ``target``, read it back and verify it, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(6)}")
    try:
        with open(temp, "xb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        if bundle.signed_manifest(bundle.read_bundle(temp), key, temp) != manifest:
            raise ModelSignatureError(f"signature {target} did not read back as written; nothing replaced")
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _display(path: Path, identifier: str) -> str:
    """A file as messages and entries name it: its path inside the model, the file name for a file model."""
    return path.name if identifier == "." else identifier


def verify_model(
    model_path: str | os.PathLike[str],
    keys: Sequence[VerifyingKey],
    *,
    signature_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> ModelVerification:
    """Check the model at ``model_path`` against its bundle with one of ``keys`` (the one the bundle names).

    Every failure is a result, not an exception: unsigned, an unreadable or altered bundle, another key, or
    files changed, missing or added since signing (by name). ``result.error()`` is the error to raise.
    """
    path, signature = _paths(model_path, signature_path)
    failed = ModelVerification(name or path.name, str(path), str(signature), verified=False)
    if not signature.is_file():
        return dataclasses.replace(failed, reason=f"unsigned: no signature file {signature}")
    raw = signature.read_bytes()
    failed = dataclasses.replace(failed, bundle_sha256=hashlib.sha256(raw).hexdigest())
    try:
        parsed = bundle.read_bundle(signature)
        key = _key_for(bundle.key_hint(parsed), keys, signature)
        signed = bundle.signed_manifest(parsed, key, signature)
    except ModelSignatureError as e:
        return dataclasses.replace(failed, reason=str(e))
    failed = dataclasses.replace(
        failed,
        name=name or signed.model_name,
        key_id=key.key_id,
        key_fingerprint=key.fingerprint,
        manifest_sha256=bundle.manifest_digest(signed),
    )
    if not path.exists():
        return dataclasses.replace(failed, reason=f"model {path} does not exist")
    expected, actual = bundle.file_digests(signed), bundle.file_digests(bundle.rehash(path, signed))
    if not expected:
        return dataclasses.replace(failed, reason="its signature lists no file: it vouches for nothing")
    changed = tuple(_display(path, f) for f in expected if f in actual and actual[f] != expected[f])
    missing = tuple(_display(path, f) for f in expected if f not in actual)
    added = tuple(_display(path, f) for f in actual if f not in expected)
    if changed or missing or added:
        return dataclasses.replace(
            failed,
            reason="its files differ from the signed manifest",
            changed=changed,
            missing=missing,
            added=added,
        )
    return dataclasses.replace(failed, verified=True)


def _key_for(hint: str | None, keys: Sequence[VerifyingKey], signature: Path) -> VerifyingKey:
    """The expected key the bundle says signed it; another key (or none named) is refused."""
    if not keys:
        raise ModelSignatureError("no key to verify with")
    if hint is None:
        raise ModelSignatureError(f"signature file {signature} names no key (key hint missing): re-sign it")
    for key in keys:
        if key.fingerprint == hint:
            return key
    expected = ", ".join(f"{k.key_id} ({k.fingerprint[:16]})" for k in keys)
    raise ModelSignatureError(f"signed by another key (fingerprint {hint[:16]}), not by {expected}")


def record(log_: AuditLog, result: ModelSignature | ModelVerification) -> int:
    """Append the ``model.sign`` or ``model.verify`` entry of ``result``; return its index."""
    action = "model.sign" if isinstance(result, ModelSignature) else "model.verify"
    return log_.append(action, **result.audit_fields())


def verified_model_path(
    path: str | os.PathLike[str],
    signature: str | os.PathLike[str] | None = None,
    *,
    key: str | None = None,
    public_key: str | os.PathLike[str] | None = None,
    keyring: LocalKeyring | str | os.PathLike[str] | None = None,
    kms_client_factory: KmsClientFactory | None = None,
    audit: AuditLog | None = None,
    record_entry: bool = True,
) -> Path:
    """``path``, only when the model there verifies against its signature; ``ModelSignatureError`` otherwise.

    For code that loads a model: ``torch.load(verified_model_path("model.pt", key="model-signing"))``.

    :param signature: the bundle (default ``<model>.sig``).
    :param key: the signing key's reference (a keyring key name, or ``aws-kms:<id>``); or ``public_key``, a
        PEM file.
    :param audit: the audit log to record ``model.verify`` in (default: the configured one, opened for the
        call); ``record_entry=False`` records nothing.
    """
    keys = verifying_keys(key, public_key=public_key, keyring=keyring, kms_client_factory=kms_client_factory)
    result = verify_model(path, keys, signature_path=signature)
    if record_entry:
        if audit is not None:
            record(audit, result)
        else:
            from airflow_aisec.audit import AuditLog

            ring = os.fspath(keyring) if isinstance(keyring, os.PathLike) else keyring
            with AuditLog.open(keyring=ring) as opened:
                record(opened, result)
    if not result.verified:
        raise result.error()
    return Path(result.path)

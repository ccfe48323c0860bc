"""Publish a signed model to a serving folder: a verified copy per release, and one ``current`` link.

A serving folder holds ``releases/<digest>/`` (the model and its signature, ``<digest>`` the first 16 hex
digits of the signed manifest's SHA-256) and ``current``, a symbolic link to the release being served. A
release is copied into a temporary folder beside the others, renamed into place, and verified there against
its signature; only then is ``current`` replaced, by renaming a new link over it. A failure at any point
leaves ``current`` on the previous release; publishing the same model again reuses its release.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path

from airflow_aisec.exceptions import ModelSignatureError
from airflow_aisec.model.keys import VerifyingKey
from airflow_aisec.model.results import ModelVerification
from airflow_aisec.model.signing import default_signature_path, verify_model

CURRENT = "current"
RELEASES = "releases"


@dataclasses.dataclass(frozen=True)
class Release:
    """A model published: where its copy is, and the verification of that copy."""

    path: Path
    current: Path
    verification: ModelVerification


def publish_model(
    model_path: str | os.PathLike[str],
    serving_dir: str | os.PathLike[str],
    keys: Sequence[VerifyingKey],
    *,
    signature_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> Release:
    """Copy the model and its signature into ``serving_dir`` and serve the copy once it verifies.

    The source is verified first, and a model that fails is refused with ``ModelSignatureError`` before
    anything is copied; the copy is verified again where it will be served.
    """
    source = Path(model_path).absolute()
    signature = Path(signature_path).absolute() if signature_path else default_signature_path(source)
    checked = verify_model(source, keys, signature_path=signature, name=name)
    if not checked.verified or not checked.manifest_sha256:
        raise checked.error()
    releases = Path(serving_dir).absolute() / RELEASES
    release = releases / checked.manifest_sha256[:16]
    if not release.exists():
        _copy_into(release, source, signature)
    copy = release / source.name
    verified = verify_model(copy, keys, signature_path=release / signature.name, name=checked.name)
    if not verified.verified:
        raise verified.error()
    current = _point(Path(serving_dir).absolute() / CURRENT, release)
    return Release(release, current, verified)


def _copy_into(release: Path, source: Path, signature: Path) -> None:
    """Copy the model and its signature into a temporary folder beside ``release``, then rename it there."""
    release.parent.mkdir(parents=True, exist_ok=True)
    staging = release.with_name(f".{release.name}.tmp-{secrets.token_hex(6)}")
    try:
        staging.mkdir()
        if source.is_dir():
            shutil.copytree(source, staging / source.name, symlinks=False)
        else:
            shutil.copy2(source, staging / source.name)
        shutil.copy2(signature, staging / signature.name)
        try:
            os.rename(staging, release)
        except OSError:
            if not release.exists():
                raise
            # Another run published the same release meanwhile: theirs is verified below like ours would be.
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _point(link: Path, release: Path) -> Path:
    """Make ``link`` a symbolic link to ``release`` (relative), replacing the old one in one rename."""
    if link.exists() and not link.is_symlink():
        raise ModelSignatureError(f"serving folder entry {link} is not a link: remove it, then publish again")
    temp = link.with_name(f".{link.name}.tmp-{secrets.token_hex(6)}")
    os.symlink(os.path.relpath(release, link.parent), temp)
    try:
        os.replace(temp, link)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    return link

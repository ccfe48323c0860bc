"""Promoting staged files: the commit of a fanned-out step, once every group wrote and verified its files.

Each staged file is checked against the SHA-256 its group recorded, then published as the target's new
version through ``staging.publish`` (a rename on a local disk; on S3 a download to a local spool and the
conditional, checksummed upload every other write uses), then the staged copy is removed. Promoting again
is idempotent: a staged file already gone whose target holds the recorded bytes counts as promoted, so a
combine step that failed half-way is simply rerun.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_aisec.exceptions import DatasetIOError, FanOutError
from airflow_aisec.io.atomic import delete_file, sha256_file
from airflow_aisec.io.staging import CHUNK, Publication, publish, staging_file
from airflow_aisec.io.storage import Location, open_input


@dataclass(frozen=True)
class StagedFile:
    """A file a group wrote to ``staged``, to become ``target``; ``sha256`` of its bytes as written; ``fmt``
    its format when not the step's (e.g. a Parquet file's key material)."""

    staged: Location
    target: Location
    sha256: str
    fmt: str | None = None


def promote_all(
    files: Sequence[StagedFile],
    fmt: str,
    *,
    sse_kms_key_id: str | None = None,
    new_file_mode: int | None = None,
) -> int:
    """Check every staged file, then promote each in order; return how many were promoted now (not before).

    Nothing is promoted when one staged file is missing (and its target does not already hold it) or does
    not hold its recorded bytes: ``FanOutError`` names it.
    """
    pending = [f for f in files if not _already_promoted(f)]
    for staged in pending:
        actual = sha256_file(staged.staged)
        if actual != staged.sha256:
            raise FanOutError(f"{staged.staged.uri} is not the file its group wrote; nothing was committed")
    for staged in pending:  # in the order given: a file another depends on comes first
        _promote(staged, staged.fmt or fmt, sse_kms_key_id, new_file_mode)
    return len(pending)


def _exists(location: Location) -> bool:
    if location.is_s3:
        from airflow_aisec.io.storage import s3_head

        return s3_head(location) is not None
    return os.path.isfile(location.path)


def _already_promoted(staged: StagedFile) -> bool:
    if _exists(staged.staged):
        return False
    try:
        if sha256_file(staged.target) == staged.sha256:
            return True
    except DatasetIOError:
        pass
    raise FanOutError(
        f"{staged.staged.uri} is missing and {staged.target.uri} does not hold it: rerun the group that "
        "wrote it, then this step"
    )


def _promote(staged: StagedFile, fmt: str, sse_kms_key_id: str | None, new_file_mode: int | None) -> None:
    publication = Publication(
        staged.target, fmt, overwrite=True, sse_kms_key_id=sse_kms_key_id, new_file_mode=new_file_mode
    )
    if not staged.staged.is_s3 and not staged.target.is_s3:
        # Same folder tree, same filesystem: the staged file itself is renamed into place.
        published = publish(staged.staged.path, publication)
        if published.sha256 != staged.sha256:  # pragma: no cover - checked just before
            raise FanOutError(f"{staged.target.uri}: promoted bytes differ from the staged file")
        return
    with staging_file(staged.target, fmt) as spool:
        digest = _copy_to(staged.staged, spool)
        if digest.hexdigest() != staged.sha256:
            raise FanOutError(
                f"{staged.staged.uri} changed while it was promoted; nothing of it was committed"
            )
        publish(spool, publication, digest, os.path.getsize(spool))
    delete_file(staged.staged)


def _copy_to(source: Location, path: str) -> hashlib._Hash:
    """Copy ``source`` to the local file ``path``, hashing what was copied."""
    digest = hashlib.sha256()
    with open_input(source) as opened, open(path, "wb") as out:
        while chunk := opened.stream.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest


def remove_staging(root: Location) -> None:
    """Remove a staging folder and whatever is left in it (after a commit, or to abandon a run)."""
    if not root.is_s3:
        shutil.rmtree(root.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(root.path))  # the staging parent, once no run uses it
        return
    from botocore.exceptions import BotoCoreError, ClientError

    from airflow_aisec.io.storage import s3_error

    client = root.s3_client()
    try:  # every object under the prefix, envelopes and other files included
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=root.bucket, Prefix=f"{root.key}/"
        ):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=root.bucket, Key=obj["Key"])
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(exc, root.uri, "cleaned up") from exc

"""Abandoned staging: the folders of fanned-out runs that never reached their commit, removed after a grace.

A run whose groups wrote their files but whose commit never ran (the run was stopped, or failed and was not
rerun) leaves ``<output>/_aisec-staging/<token>/``. The next listing of the same output removes the staging
folders of *other* tokens whose newest file is older than the grace period: a run still working within it
keeps its files, the listing's own run never loses its own, and nothing outside ``_aisec-staging`` is ever
touched (a local symbolic link there is not followed).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Final

from airflow_aisec.io.groups import STAGING_FOLDER
from airflow_aisec.io.promote import remove_staging
from airflow_aisec.io.storage import Location

DEFAULT_STAGING_GRACE: Final = dt.timedelta(days=1)


def remove_abandoned_staging(
    target: Location, keep: str, grace: dt.timedelta = DEFAULT_STAGING_GRACE, now: dt.datetime | None = None
) -> list[str]:
    """Remove the staging folders below ``target`` of every token but ``keep`` whose newest file is older
    than ``grace``; return the tokens removed, sorted."""
    parent = target.join(STAGING_FOLDER)
    ages = _s3_newest(parent) if parent.is_s3 else _local_newest(parent.path)
    cutoff = (now or dt.datetime.now(dt.UTC)) - grace
    removed = sorted(token for token, newest in ages.items() if token != keep and newest < cutoff)
    for token in removed:
        remove_staging(parent.join(token))
    return removed


def _local_newest(folder: str) -> dict[str, dt.datetime]:
    """The newest modification time of each staging folder (and of anything in it), by token."""
    if not os.path.isdir(folder) or os.path.islink(folder):
        return {}
    found = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.isalnum() or not entry.is_dir(follow_symlinks=False):
                continue
            newest = entry.stat(follow_symlinks=False).st_mtime
            for root, dirs, files in os.walk(entry.path):
                for name in dirs + files:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
            found[entry.name] = dt.datetime.fromtimestamp(newest, tz=dt.UTC)
    return found


def _s3_newest(parent: Location) -> dict[str, dt.datetime]:
    """The newest ``LastModified`` of the objects of each staging prefix, by token."""
    from botocore.exceptions import BotoCoreError, ClientError

    from airflow_aisec.io.storage import s3_error

    prefix = f"{parent.key}/"
    found: dict[str, dt.datetime] = {}
    try:
        pages = (
            parent.s3_client().get_paginator("list_objects_v2").paginate(Bucket=parent.bucket, Prefix=prefix)
        )
        for page in pages:
            for obj in page.get("Contents", []):
                token, _, rest = str(obj["Key"])[len(prefix) :].partition("/")
                if token.isalnum() and rest:
                    modified: dt.datetime = obj["LastModified"]
                    found[token] = max(found.get(token, modified), modified)
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(exc, parent.uri, "listed") from exc
    return found

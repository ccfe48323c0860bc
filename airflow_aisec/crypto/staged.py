"""Committing a fanned-out encryption: the staged files of its groups, key material before the data.

A group stages each encrypted Parquet file with its key material beside it, under the name the reader looks
for beside the final file (``_KEY_MATERIAL_FOR_<name>.<file id>.json``: the file name and the id in the
file's own footer, never the folder), so it moves as it is. Every key material file is promoted before any
data file: a promoted data file always finds its key material, whatever step fails in between. The key
material of the versions the promoted files replaced is removed last (an orphan at worst, hidden from the
dataset by its leading ``_``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_aisec.crypto.parquet.material import current_key_material, delete_quietly
from airflow_aisec.io.promote import StagedFile, promote_all
from airflow_aisec.io.storage import Location, S3Options

KEY_MATERIAL_FORMAT = "key-material"


def staged_files(records: Sequence[Mapping[str, Any]], s3: S3Options | None = None) -> list[StagedFile]:
    """The staged files of the groups' records (``CryptoFile`` dicts): every key material file, then every
    data file."""

    def at(uri: str) -> Location:
        return Location.parse(uri, s3)

    materials, data = [], []
    for record in records:
        target = at(str(record["target"]))
        data.append(StagedFile(at(str(record["staged"])), target, str(record["target_sha256"])))
        if record.get("key_material"):
            staged = at(str(record["key_material"]))
            beside = target.parent.join(staged.name)
            sha = str(record["key_material_sha256"])
            materials.append(StagedFile(staged, beside, sha, KEY_MATERIAL_FORMAT))
    return materials + data


def promote_staged(
    records: Sequence[Mapping[str, Any]], fmt: str, s3: S3Options | None, sse_kms_key_id: str | None
) -> list[dict[str, Any]]:
    """Promote the groups' staged files (``fmt``: the data files' format); return the records naming each
    file where it now is."""
    files = staged_files(records, s3)
    kept = {f.target.uri for f in files if f.fmt == KEY_MATERIAL_FORMAT}
    with_material = {str(r["target"]) for r in records if r.get("key_material")}
    replaced = [
        found
        for f in files
        if f.fmt is None and f.target.uri in with_material and (found := current_key_material(f.target))
    ]
    promote_all(files, fmt, sse_kms_key_id=sse_kms_key_id)
    for old in replaced:
        if old.uri not in kept:
            delete_quietly(old.filesystem(), old.path)
    moved = {f.staged.uri: f.target.uri for f in files}
    return [
        {**r, "staged": "", **({"key_material": moved[r["key_material"]]} if r.get("key_material") else {})}
        for r in records
    ]

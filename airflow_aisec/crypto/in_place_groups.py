"""An in-place encryption fanned out by file: each group encrypts its own files where they are, no staging.

Every group of one listing (``io.groups``) changes only the files it was given, as the single task would
(``crypto.in_place`` for envelopes, an atomic replace for Parquet), and returns what it did; the combine task
(``check_in_place``) checks every group is there once and that each file is still what its group wrote, then
records the step's one entry.

A group retried after a crash meets files its first try already changed: a plaintext already replaced by
its envelope, a Parquet file already encrypted. The listing holds each file's version but not its digest, so
before changing a file a group notes the version it read (URI, version token, SHA-256; for Parquet also the
rows, key and columns) in a small ledger in the run's hidden staging folder (``<dataset>/_aisec-staging/
<run>/in-place/``). A listed file that has changed since counts as done only when the ledger notes its
listed version and the file is what that version became:

* an envelope: the plaintext is gone and ``<name>.aisec`` decrypts, under the key and the file's context, to
  exactly the SHA-256 noted;
* a Parquet file: it is encrypted, its footer key is the key noted, and it decrypts to the rows noted.

It is then reported with the digest noted (never its encrypted bytes as plaintext) and ``reused``. Anything
else changed since the listing is refused: list the files again. The combine removes the ledger once the
step is recorded; the listing of a later run with ``output_uri`` at the dataset removes an abandoned one
after the grace period, as any other staging.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.crypto.datasets import ENVELOPE_SUFFIX, CryptoFile, SubjectColumns, all_columns
from airflow_aisec.crypto.in_place import envelope_of, read_version, replace_with_envelope
from airflow_aisec.crypto.parquet import encrypt_parquet_file, find_key_material, is_encrypted_parquet
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.exceptions import AisecError, ConcurrentModificationError, FanOutError
from airflow_aisec.io import Location, purge_versions, put_small_file, sha256_file, stat_file
from airflow_aisec.io.groups import member_location
from airflow_aisec.io.storage import same_etag

if TYPE_CHECKING:
    from airflow_aisec.crypto.providers import KeyProvider

LEDGER = "in-place"


@dataclasses.dataclass(frozen=True)
class Ledger:
    """Where the groups of one in-place run note each file's version before they change it."""

    root: Location  # the run's staging folder below the dataset

    def _at(self, uri: str) -> Location:
        return self.root.join(LEDGER, hashlib.sha256(uri.encode()).hexdigest()[:32] + ".json")

    def note(self, uri: str, **fields: Any) -> None:
        """Note the version of ``uri`` about to be changed."""
        put_small_file(self._at(uri), json.dumps({"uri": uri, **fields}, sort_keys=True).encode())

    def noted(self, uri: str, listed_etag: str) -> dict[str, Any] | None:
        """What was noted of ``uri`` at its listed version, or None."""
        location = self._at(uri)
        try:
            with location.filesystem().open_input_stream(location.path) as stream:
                found = json.loads(bytes(stream.read()))
        except (OSError, ValueError):
            return None
        if not isinstance(found, dict) or found.get("uri") != uri:
            return None
        return found if same_etag(str(found.get("etag")), listed_etag) else None


@dataclasses.dataclass(frozen=True)
class InPlaceGroup:
    """One group's job: the dataset's root and format, the key, and what the single task would pass."""

    source: Location
    fmt: str
    provider: KeyProvider
    key_name: str
    ledger: Ledger
    columns: Sequence[str] | None = None
    context: Mapping[str, str] | None = None
    subjects: SubjectColumns | None = None
    sse_kms_key_id: str | None = None
    purge: bool = False


def encrypt_group_in_place(job: InPlaceGroup, group: Mapping[str, Any]) -> list[CryptoFile]:
    """Encrypt the files of ``group`` (a listing's group) in place; a retry finishes what a try began."""
    listed = group.get("files")
    if not isinstance(listed, list) or not all(isinstance(f, Mapping) and "etag" in f for f in listed):
        raise FanOutError(
            "a file group is a dict with a list of files (uri, size, etag), as the listing gives"
        )
    if isinstance(job.provider, LocalKeyProvider):
        job.provider.create(job.key_name)  # as the single task: a declared local key is created on first use
    done = []
    for entry in listed:
        location = member_location(entry, job.source, job.fmt)
        etag = str(entry["etag"])
        done.append(_parquet(job, location, etag) if job.fmt == "parquet" else _envelope(job, location, etag))
    return done


def _changed(location: Location) -> ConcurrentModificationError:
    return ConcurrentModificationError(
        f"{location.uri} changed since the files were listed and is not what this run made of it; list them "
        "again (rerun the step)"
    )


def _current(location: Location, listed_etag: str) -> tuple[str, str | None]:
    """The digest and version of the file as listed; refused when it changed since."""
    digest, etag = read_version(location)
    if not same_etag(etag, listed_etag):
        raise _changed(location)
    return digest, etag


def _envelope(job: InPlaceGroup, location: Location, listed_etag: str) -> CryptoFile:
    envelope = dataclasses.replace(location, path=location.path + ENVELOPE_SUFFIX)
    about = {**(job.context or {}), "file": location.relative_to(job.source) or location.name}
    if stat_file(location) is None:  # replaced by an earlier try of this run, or gone for another reason
        noted = job.ledger.noted(location.uri, listed_etag)
        digest = envelope_of(envelope, job.provider, job.key_name, about, noted["sha256"]) if noted else None
        if noted is None or digest is None:
            raise _changed(location)
        purged = purge_versions(location, gone=True) if job.purge and location.is_s3 else 0
        return CryptoFile(
            location.uri, envelope.uri, "envelope", str(noted["sha256"]), digest,
            plaintext_removed=True, reused=True, versions_purged=purged,
        )  # fmt: skip
    version = _current(location, listed_etag)
    job.ledger.note(location.uri, etag=version[1], sha256=version[0])
    done = replace_with_envelope(
        location, envelope, job.provider, job.key_name, about, sse_kms_key_id=job.sse_kms_key_id,
        purge=job.purge, version=version,
    )  # fmt: skip
    return CryptoFile(
        location.uri, envelope.uri, "envelope", done.source_sha256, done.target_sha256,
        plaintext_removed=True, reused=done.reused, versions_purged=done.versions_purged,
    )  # fmt: skip


def _parquet(job: InPlaceGroup, location: Location, listed_etag: str) -> CryptoFile:
    info = stat_file(location)
    if info is not None and not same_etag(info.etag, listed_etag):
        noted = job.ledger.noted(location.uri, listed_etag)
        if noted is None or not _encrypted_as_noted(job, location, noted):
            raise _changed(location)
        return CryptoFile(
            location.uri, location.uri, "parquet-modular", str(noted["sha256"]), sha256_file(location),
            reused=True, versions_purged=_purge_replaced(job, location),
        )  # fmt: skip
    if info is None:
        raise _changed(location)
    digest, etag = _current(location, listed_etag)
    columns = list(job.columns) if job.columns else all_columns(location, job.provider)
    rows = _rows(location, job.provider)
    job.ledger.note(location.uri, etag=etag, sha256=digest, rows=rows, key=job.key_name, columns=columns)
    result = encrypt_parquet_file(
        location, location, job.provider, job.key_name, columns, expected_etag=etag,
        transform=job.subjects.seal if job.subjects else None,
    )  # fmt: skip
    return CryptoFile(
        location.uri, location.uri, "parquet-modular", digest, result.sha256,
        versions_purged=_purge_replaced(job, location),
    )  # fmt: skip


def _purge_replaced(job: InPlaceGroup, location: Location) -> int:
    """The replaced plaintext survives as an old version in a versioned bucket: purge it when asked."""
    return purge_versions(location, gone=False) if job.purge and location.is_s3 else 0


def _rows(location: Location, provider: KeyProvider) -> int:
    """Rows of a Parquet file, plaintext (from its footer) or encrypted (decrypted)."""
    fs = location.filesystem()
    if is_encrypted_parquet(fs, location.path):
        from airflow_aisec.crypto.parquet import read_encrypted_batches

        return sum(batch.num_rows for batch in read_encrypted_batches(location, provider))
    import pyarrow.parquet as pq

    with fs.open_input_file(location.path) as handle:
        return int(pq.ParquetFile(handle).metadata.num_rows)


def _encrypted_as_noted(job: InPlaceGroup, location: Location, noted: Mapping[str, Any]) -> bool:
    """Whether the Parquet file is the encryption the ledger announced: encrypted, footer key the key noted
    (the key asked for now), the columns noted those asked for now, and decrypting to the rows noted."""
    wanted = list(job.columns) if job.columns else noted.get("columns")
    if noted.get("key") != job.key_name or noted.get("columns") != wanted:
        return False
    try:
        if not is_encrypted_parquet(location.filesystem(), location.path):
            return False
        material = find_key_material(location)
        with material.filesystem().open_input_stream(material.path) as stream:
            footer = json.loads(json.loads(bytes(stream.read()))["footerKey"])
        return bool(
            footer.get("masterKeyID") == job.key_name and _rows(location, job.provider) == noted["rows"]
        )
    except (AisecError, OSError, ValueError, KeyError, TypeError):
        return False


def check_in_place(records: Sequence[Mapping[str, Any]], s3: Any = None) -> None:
    """Every file the groups report is still what its group wrote (its SHA-256), and every plaintext they
    removed is still gone; else ``FanOutError`` naming the file, and nothing is recorded."""
    for record in records:
        target = Location.parse(str(record["target"]), s3)
        try:
            current = sha256_file(target)
        except AisecError:
            current = None
        if current != record["target_sha256"]:
            raise FanOutError(
                f"{target.uri} is not the file its group wrote (changed or removed since); nothing was "
                "recorded: rerun the step"
            )
        if (
            record.get("plaintext_removed")
            and stat_file(Location.parse(str(record["source"]), s3)) is not None
        ):
            raise FanOutError(
                f"{record['source']} is there again after its group replaced it by {target.uri}; nothing was "
                "recorded: rerun the step"
            )

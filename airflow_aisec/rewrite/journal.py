"""One journaled change of a dataset file: intent, atomic rewrite or delete, clean-up, outcome.

Retention and data-subject requests change files the same way, through ``change_file``:

1. An ``intent`` entry names the file version (URI and SHA-256 before), what will be done to it, what the
   new version will hold (rows before and after) and the key material that goes with it.
2. The new version is written through ``open_rewrite`` (a temporary place, verified, then swapped in
   atomically against the version planned), or the file is deleted against that version; a rewrite that
   keeps no row deletes the file instead of leaving it empty. Key material goes after the data: a crash in
   between leaves an orphan key file, never data without its keys.
3. With ``purge_versions`` (S3 versioned buckets), the object's noncurrent versions and delete markers go
   too, and every version of deleted key material, or the old rows would survive in old versions.
4. The outcome: ``success`` with the rows and digests before and after, or ``failure`` with the error.

Entries are keyed ``<scope>:<operation>:<state>``. The scope names one journal (a dataset's retention, one
request on one dataset); the operation id derives from the file version (``operation_id``), so a rerun
records nothing twice. A run killed between an intent and its outcome leaves the intent open; ``recover``
finds every open intent of the scope by key, over the whole log, and settles it from the file as it is:

* unchanged, and carried out again by this run: left to the run, which records it under the same keys;
* unchanged and not carried out again, or changed by another operation on the same version: closed as
  ``skipped`` (``not_performed``);
* changed, and holding the rows the intent announced (read back in full, decrypted): the swap happened. The
  key material of a deleted file and the old versions are deleted as the intent said, and the outcome is
  recorded as ``recovered``;
* changed into anything else (another writer's version, an unreadable file): closed as a ``failure`` that
  says so; the operation claims nothing.

Entries carry URIs, digests and counts, never values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_aisec.crypto.parquet import find_key_material
from airflow_aisec.exceptions import DatasetIOError, EncryptionError, PIIError, VerificationError
from airflow_aisec.io import Location, S3Options, delete_file, purge_versions, sha256_file
from airflow_aisec.rewrite.source import count_rows, open_rewrite

if TYPE_CHECKING:
    from airflow_aisec.audit.log import AuditLog
    from airflow_aisec.catalog import Dataset
    from airflow_aisec.crypto.providers import KeyProvider

# What ``change_file`` itself writes in an intent's details; the rest is the consumer's (its rule).
_OWN = frozenset({"operation", "file_action", "rows_before", "rows_after", "rows_affected", "rows_held"})
_OWN_INTENT = _OWN | {"key_material"}
_CLOSED = frozenset({"success", "failure", "skipped"})
_FAILURES = (DatasetIOError, EncryptionError, PIIError)

BatchEdit = Callable[[pa.RecordBatch], tuple[pa.RecordBatch, int, int]]
"""How one batch changes: (new batch, rows affected, mentions masked)."""


@dataclasses.dataclass
class FileChange:
    """What was done to one file version (digests and counts, never values).

    ``rows_affected`` are the rows the change was about (the expired rows removed, the subject's rows),
    ``rows_held`` the rows kept although selected (under a hold). ``outcome`` is ``success`` or ``failure``
    (with ``error``); ``recovered`` marks a change finished after a killed run; ``action`` is ``rewrite``,
    ``delete`` or ``none`` (a dry run).
    """

    uri: str
    action: str
    rows_before: int
    rows_after: int
    rows_affected: int = 0
    mentions_masked: int = 0
    rows_held: int = 0
    sha256_before: str | None = None
    sha256_after: str | None = None
    versions_purged: int = 0
    recovered: bool = False
    outcome: str = "success"
    error: str | None = None

    @property
    def rows_removed(self) -> int:
        """Rows the file no longer holds (none after a failure)."""
        return self.rows_before - self.rows_after if self.outcome != "failure" else 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**dataclasses.asdict(self), "rows_removed": self.rows_removed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileChange:
        """The inverse of ``as_dict``."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class Journal:
    """Where one scope of file changes is recorded: entries keyed ``<scope>:<operation>:<state>``.

    ``append(key, outcome, **fields)`` appends one entry the consumer's way (its action, subject, extra
    details) and returns its index. Without an audit log nothing is recorded, and nothing is recovered.
    """

    audit: AuditLog | None
    scope: str
    dataset: str
    append: Callable[..., int | None]

    def record(self, op: str, state: str, **fields: Any) -> int | None:
        """Append the ``state`` entry of operation ``op``."""
        if self.audit is None:
            return None
        return self.append(f"{self.scope}:{op}:{state}", state, **fields)

    def operations(self) -> dict[str, dict[str, int]]:
        """Every operation of the scope in the whole log: its states and their entry indices."""
        if self.audit is None:
            return {}
        found: dict[str, dict[str, int]] = {}
        for key, index in self.audit.keyed(f"{self.scope}:"):
            op, _, state = key[len(self.scope) + 1 :].rpartition(":")
            found.setdefault(op, {})[state] = index
        return found

    def source(self, uri: str, sha256: str | None) -> dict[str, Any]:
        """An entry's reference to one file version."""
        return {"uri": uri, "sha256": sha256, "dataset": self.dataset}


def operation_id(uri: str, sha256: str | None, *variant: str) -> str:
    """The id of one change of one file version: the version's id, then (``variant``, e.g. a retention cutoff)
    what tells apart changes of the same version."""
    version = hashlib.sha256(json.dumps([uri, sha256]).encode()).hexdigest()[:24]
    if not variant:
        return version
    return f"{version}-{hashlib.sha256(json.dumps(list(variant)).encode()).hexdigest()[:8]}"


@dataclasses.dataclass
class Change:
    """One planned change of one file version.

    ``edit`` None deletes the whole file unread. ``rows_after`` is what the new version will hold; with
    ``verify_rows`` a rewrite holding another number is discarded before the swap. ``details`` go into every
    entry of the change (the consumer's rule); ``variant`` into its operation id.
    """

    location: Location
    sha256: str | None
    etag: str | None
    rows: int
    encrypted: bool
    edit: BatchEdit | None
    rows_after: int
    rows_affected: int = 0
    rows_held: int = 0
    verify_rows: bool = False
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    variant: tuple[str, ...] = ()

    @property
    def operation(self) -> str:
        """Its operation id."""
        return operation_id(self.location.uri, self.sha256, *self.variant)


def change_file(
    journal: Journal,
    change: Change,
    dataset: Dataset,
    key_provider: Callable[[str], KeyProvider],
    *,
    purge_old_versions: bool = False,
) -> FileChange:
    """Carry out ``change`` between its intent and its outcome entries (see the module docstring).

    A failure of the change itself is recorded (``failure``) and raised; the file is as it was.
    """
    op, location = change.operation, change.location
    material = key_material(location) if change.encrypted else None
    source = journal.source(location.uri, change.sha256)
    journal.record(
        op, "intent", inputs=[source], rows=change.rows,
        details={
            **change.details, "operation": op, "file_action": "delete" if change.edit is None else "rewrite",
            "rows_before": change.rows, "rows_after": change.rows_after,
            "rows_affected": change.rows_affected, "rows_held": change.rows_held,
            "key_material": material.uri if material else None,
        },
    )  # fmt: skip
    try:
        if change.edit is None:
            done = _delete(location, change.etag, material, change.rows, change.rows_affected)
        else:
            done = _rewrite(change, change.edit, dataset, key_provider, material)
    except _FAILURES as exc:
        journal.record(
            op, "failure", inputs=[source], details={**change.details, "operation": op, "error": str(exc)}
        )
        raise
    done.sha256_before, done.rows_held = change.sha256, change.rows_held
    # Outside the try: if purging old versions fails, the intent stays open and the next run's recovery
    # (which sees the file changed) purges them and records the outcome.
    if purge_old_versions:
        done.versions_purged = _purge(location, material, gone=done.action == "delete")
    _record_outcome(journal, op, done, change.details)
    return done


def key_material(location: Location) -> Location | None:
    """The key material file of an encrypted Parquet file, if it can be found."""
    try:
        return find_key_material(location)
    except (DatasetIOError, EncryptionError):
        return None  # without key material the file is unreadable anyway; nothing else to clean up


def _rewrite(
    change: Change,
    edit: BatchEdit,
    dataset: Dataset,
    key_provider: Callable[[str], KeyProvider],
    material: Location | None,
) -> FileChange:
    location = change.location
    rewrite = open_rewrite(
        location, dataset, encrypted=change.encrypted, key_provider=key_provider, expected_etag=change.etag
    )
    rows_before = affected = mentions = 0
    with rewrite.sink as writer:
        for batch in rewrite.batches:
            rows_before += batch.num_rows
            new, hit, said = edit(batch)
            affected, mentions = affected + hit, mentions + said
            if new.num_rows:
                writer.write(new)
        if change.verify_rows and writer.rows != change.rows_after:  # raising discards the new version
            raise VerificationError(
                f"{location.uri} would keep {writer.rows} rows but the plan expects {change.rows_after}; "
                "it was not replaced"
            )
    if writer.rows == 0 and rows_before:  # every row went: no empty file is left behind
        return _delete(location, writer.result.etag, material, rows_before, affected)
    return FileChange(
        location.uri, "rewrite", rows_before, writer.rows, affected, mentions,
        sha256_after=writer.result.sha256,
    )  # fmt: skip


def _delete(
    location: Location, etag: str | None, material: Location | None, rows: int, affected: int
) -> FileChange:
    delete_file(location, expected_etag=etag)
    if material is not None:  # after the data: a crash in between leaves an orphan key file, never data
        delete_file(material)
    return FileChange(location.uri, "delete", rows, 0, affected)


def _purge(location: Location, material: Location | None, *, gone: bool) -> int:
    if not location.is_s3:
        return 0
    purged = purge_versions(location, gone=gone)
    if material is not None and material.is_s3:  # deleted with the file, or replaced by the rewrite's own
        purged += purge_versions(material, gone=True)
    return purged


def _record_outcome(journal: Journal, op: str, done: FileChange, details: Mapping[str, Any]) -> None:
    journal.record(
        op, "success", rows=done.rows_affected, inputs=[journal.source(done.uri, done.sha256_before)],
        outputs=[journal.source(done.uri, done.sha256_after)] if done.sha256_after else [],
        details={**details, "operation": op, **{k: v for k, v in done.as_dict().items() if k != "uri"}},
    )  # fmt: skip


# --- crash recovery -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Recovery:
    """What settling the open intents of one scope needs."""

    journal: Journal
    dataset: Dataset
    key_provider: Callable[[str], KeyProvider]
    s3: S3Options | None
    redone: Callable[[str], bool]
    purge_old_versions: bool


def recover(
    journal: Journal,
    dataset: Dataset,
    key_provider: Callable[[str], KeyProvider],
    s3: S3Options | None,
    *,
    redone: Callable[[str], bool],
    purge_old_versions: bool = False,
    owns: Callable[[str], bool] | None = None,
) -> list[FileChange]:
    """Settle the intents of the scope that a killed run left open (see the module docstring).

    ``redone(op)`` says whether this run carries operation ``op`` out again (its file being unchanged).
    ``owns(uri)``, when given, limits the settling to the intents on those files: tasks that share a
    dataset's files between them each settle the intents on their own files, and no two settle the same one.
    Returns the changes found done (``recovered``).
    """
    if journal.audit is None:
        return []
    job = _Recovery(journal, dataset, key_provider, s3, redone, purge_old_versions)
    operations = journal.operations()
    done = []
    for op, states in operations.items():
        if "intent" in states and not _CLOSED & states.keys():
            intent = next(journal.audit.entries(states["intent"], states["intent"] + 1)).data
            if owns is not None and not owns(intent["inputs"][0]["uri"]):
                continue
            change = _settle(job, op, intent, operations)
            if change is not None:
                done.append(change)
    return done


def _settle(
    job: _Recovery, op: str, intent: Mapping[str, Any], operations: Mapping[str, Mapping[str, int]]
) -> FileChange | None:
    journal, s3 = job.journal, job.s3
    source, details = intent["inputs"][0], intent["details"]
    location = Location.parse(source["uri"], s3)
    try:
        current: str | None = sha256_file(location)
    except DatasetIOError:
        current = None
    if current == source["sha256"] and job.redone(op):
        return None
    rule = {k: v for k, v in details.items() if k not in _OWN_INTENT}
    superseded = _superseded(op, operations)
    if current == source["sha256"] or superseded is not None:
        journal.record(op, "skipped", inputs=[source], details={
            **rule, "operation": op, "file_action": details.get("file_action"), "not_performed": True,
            "superseded_by": superseded,
        })  # fmt: skip
        return None
    return _claim(job, op, source, details, current, rule)


def _claim(
    job: _Recovery,
    op: str,
    source: Mapping[str, Any],
    details: Mapping[str, Any],
    current: str | None,
    rule: Mapping[str, Any],
) -> FileChange | None:
    """The outcome of an operation whose file changed since its intent, once the file is what it wrote."""
    location = Location.parse(source["uri"], job.s3)
    rows_after = 0 if current is None else int(details.get("rows_after") or 0)
    problem = None if current is None else _not_written_here(job, location, rows_after)
    if problem is not None:  # someone else's version: this operation cannot claim it
        job.journal.record(
            op, "failure", inputs=[source], details={**rule, "operation": op, "error": problem}
        )
        return None
    material = Location.parse(details["key_material"], job.s3) if details.get("key_material") else None
    if material is not None and current is None:
        delete_file(material)
    change = FileChange(
        source["uri"], "delete" if current is None else "rewrite", int(details.get("rows_before") or 0),
        rows_after, int(details.get("rows_affected") or 0), rows_held=int(details.get("rows_held") or 0),
        sha256_before=source["sha256"], sha256_after=current, recovered=True,
    )  # fmt: skip
    if job.purge_old_versions:
        change.versions_purged = _purge(location, material, gone=current is None)
    _record_outcome(job.journal, op, change, rule)
    return change


def _not_written_here(job: _Recovery, location: Location, rows_after: int) -> str | None:
    """Why the file now in place cannot be this operation's new version (it holds another number of rows
    than the intent announced, or cannot be read), or None."""
    try:
        rows = count_rows(location, job.dataset, job.key_provider)
    except (DatasetIOError, EncryptionError) as exc:
        return f"{location.uri} changed since the intent and cannot be read back ({type(exc).__name__})"
    if rows != rows_after:
        return (
            f"{location.uri} changed since the intent but holds {rows} rows, not the {rows_after} this "
            "operation writes: another writer changed it; nothing is claimed"
        )
    return None


def _superseded(op: str, operations: Mapping[str, Mapping[str, int]]) -> str | None:
    """Another operation of the scope that changed the same file version, if any."""
    version = op.partition("-")[0]
    for other, states in operations.items():
        if other != op and other.partition("-")[0] == version and "success" in states:
            return other
    return None

"""Carrying a retention plan out: purge each file's expired rows through the one journaled file change.

``apply_dataset`` hands every file to rewrite or delete to ``airflow_aisec.rewrite.change_file``: the new
version is written to a temporary place, verified to hold exactly the rows the plan keeps, and swapped in
against the version that was planned (encrypted files stay encrypted under the catalog's key and columns),
so a concurrent change is detected and a crash leaves each file in its old or its new version.

* Rows with a missing or unparseable date are kept (the plan reports them); every row whose date *is*
  known to be expired is still purged, since delaying them would itself breach the rule, and the dataset
  is then reported as failed, so an operator or ``aisec retention apply`` ends in error after the safe part.
* Audit (``retention.delete``): an intent before each file (file, digest before, rule, cutoff), the
  outcome after (rows removed, digests before and after, holds honoured), under idempotency keys
  ``retention.delete:<dataset>:<operation>:<state>``; the operation id derives from the file version and the
  cutoff, so a rerun duplicates nothing. Intents a killed run left open are settled first, found by key over
  the whole log (``rewrite.recover``): an intent this plan carries out again is left to it, one no plan
  redoes (a later cutoff) is closed as ``skipped``, and one whose swap happened gets its ``recovered``
  outcome after its clean-up. A dataset with nothing to do gets one ``noop`` summary entry per cutoff
  (``skipped`` under a legal hold), so a second run on the same day adds at most that entry.
* ``retention.purge_versions`` (S3 versioned buckets): after a rewrite or delete, the object's noncurrent
  versions and delete markers are deleted too, or the purged rows would survive in old versions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.exceptions import DatasetIOError, EncryptionError
from airflow_aisec.retention.plan import DatasetPlan, FilePlan, verdicts
from airflow_aisec.rewrite import BatchEdit, Change, FileChange, Journal, change_file, recover

if TYPE_CHECKING:
    from airflow_aisec.audit.log import AuditLog
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.crypto.providers import KeyProvider

ACTION = "retention.delete"


@dataclasses.dataclass
class DatasetResult:
    """What retention did to one dataset; ``failed`` when rows had bad dates or a file could not be done."""

    dataset: str
    cutoff: dt.datetime
    files: list[FileChange] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    legal_hold: str | None = None
    bad_dates: int = 0

    @property
    def failed(self) -> bool:
        """True when the run must not be reported as clean."""
        return bool(self.errors)

    @property
    def rows_removed(self) -> int:
        """Rows removed over every file."""
        return sum(f.rows_removed for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        done = [f for f in self.files if f.outcome != "failure"]
        return {
            "dataset": self.dataset,
            "cutoff": self.cutoff.isoformat(),
            "legal_hold": self.legal_hold,
            "rows_removed": self.rows_removed,
            "rows_held": sum(f.rows_held for f in self.files),
            "files_rewritten": sum(1 for f in done if f.action == "rewrite"),
            "files_deleted": sum(1 for f in done if f.action == "delete"),
            "bad_dates": self.bad_dates,
            "failed": self.failed,
            "errors": list(self.errors),
            "files": [f.as_dict() for f in self.files],
        }


@dataclasses.dataclass
class _Job:
    """One ``apply_dataset`` call: its plan, catalog, dataset, audit log and keys."""

    plan: DatasetPlan
    catalog: Catalog
    dataset: Dataset
    audit: AuditLog | None
    keys: KeySource | None

    def key_provider(self, key_name: str) -> KeyProvider:
        """The provider of catalog key ``key_name`` (the local keyring of ``[aisec] keyring`` by default)."""
        if self.keys is None:
            from airflow_aisec.crypto.keysource import KeySource

            self.keys = KeySource(self.catalog)
        return self.keys.provider(key_name)

    def record(self, key: str, outcome: str, **fields: Any) -> int | None:
        """Append one ``retention.delete`` entry (no-op without an audit log)."""
        if self.audit is None:
            return None
        return self.audit.append(
            ACTION, idempotency_key=key, dataset=self.plan.dataset, outcome=outcome, **fields
        )

    @property
    def journal(self) -> Journal:
        """The journal of this dataset's retention."""
        return Journal(self.audit, f"{ACTION}:{self.plan.dataset}", self.plan.dataset, self.record)


def apply_dataset(
    plan: DatasetPlan,
    catalog: Catalog,
    dataset: Dataset,
    *,
    keys: KeySource | None = None,
    audit: AuditLog | None = None,
) -> DatasetResult:
    """Carry out ``plan``: rewrite and delete files, record intents and outcomes in ``audit``.

    ``keys`` give the catalog key of encrypted files (default: ``KeySource(catalog)``, the local keyring).
    Files whose rewrite or delete fails are reported in ``errors`` (the others still proceed).
    """
    job = _Job(plan, catalog, dataset, audit, keys)
    result = DatasetResult(plan.dataset, plan.cutoff, errors=list(plan.errors), bad_dates=plan.bad_dates)
    if plan.legal_hold is not None:
        result.legal_hold = plan.legal_hold.reason
    changes = [_change(plan, f) for f in plan.files if f.action != "keep"]
    planned = {c.operation for c in changes}
    recovered = recover(
        job.journal, dataset, job.key_provider, plan.root.s3, redone=planned.__contains__,
        purge_old_versions=plan.purge_versions,
    )  # fmt: skip
    result.files.extend(recovered)
    for change in changes:
        done = _apply_file(job, change)
        result.files.append(done)
        if done.error:
            result.errors.append(done.error)
    _record_summary(job, result)
    return result


def _change(plan: DatasetPlan, file_plan: FilePlan) -> Change:
    rows = file_plan.rows or 0
    return Change(
        file_plan.location, file_plan.sha256_before, file_plan.etag, rows, file_plan.encrypted,
        None if file_plan.action == "delete" else _purge_expired(plan), rows - file_plan.purge,
        rows_affected=file_plan.purge, rows_held=file_plan.held, verify_rows=True,
        details=_rule(plan), variant=(plan.cutoff.isoformat(),),
    )  # fmt: skip


def _purge_expired(plan: DatasetPlan) -> BatchEdit:
    def edit(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, int]:
        purge = verdicts(plan, batch).purge
        kept = batch.filter(pc.invert(purge))
        return kept, batch.num_rows - kept.num_rows, 0

    return edit


def _rule(plan: DatasetPlan) -> dict[str, Any]:
    return {"rule": plan.keep_for, "column": plan.column, "cutoff": plan.cutoff.isoformat(),
            "as_of": plan.as_of.isoformat()}  # fmt: skip


def _apply_file(job: _Job, change: Change) -> FileChange:
    try:
        return change_file(
            job.journal, change, job.dataset, job.key_provider, purge_old_versions=job.plan.purge_versions
        )
    except (DatasetIOError, EncryptionError) as exc:
        message = f"dataset {job.plan.dataset}: {change.location.uri}: {exc}"
        action = "delete" if change.edit is None else "rewrite"
        return FileChange(
            change.location.uri, action, change.rows, change.rows, sha256_before=change.sha256,
            outcome="failure", error=message,
        )  # fmt: skip


def _record_summary(job: _Job, result: DatasetResult) -> None:
    """One entry per dataset and cutoff when nothing was done, and one for rows with bad dates."""
    plan = job.plan
    cutoff = plan.cutoff.isoformat()
    base = {"rule": plan.keep_for, "column": plan.column, "cutoff": cutoff, "files": len(plan.files)}
    if plan.legal_hold is not None:
        hold = {"reason": plan.legal_hold.reason, "until": plan.legal_hold.until.isoformat()}
        job.record(
            f"{ACTION}:{plan.dataset}:{cutoff}:skipped", "skipped", details={**base, "legal_hold": hold}
        )
    elif not result.files:
        job.record(f"{ACTION}:{plan.dataset}:{cutoff}:noop", "noop", rows=0, details=base)
    bad = [{"uri": f.uri, "bad_dates": f.bad_dates} for f in plan.files if f.bad_dates]
    if bad:
        digest = hashlib.sha256(json.dumps(bad, sort_keys=True).encode()).hexdigest()[:32]
        job.record(
            f"{ACTION}:{plan.dataset}:{cutoff}:bad-dates:{digest}", "failure", rows=plan.bad_dates,
            details={**base, "bad_dates": bad, "error": "rows with a missing or unparseable date were kept"},
        )  # fmt: skip


def apply_catalog(
    plans: Sequence[DatasetPlan],
    catalog: Catalog,
    *,
    keys: KeySource | None = None,
    audit: AuditLog | None = None,
) -> list[DatasetResult]:
    """Apply each plan (``apply_dataset``); a failed dataset does not stop the others."""
    return [
        apply_dataset(plan, catalog, catalog.dataset(plan.dataset), keys=keys, audit=audit) for plan in plans
    ]

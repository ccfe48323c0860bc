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
* In parts (``retention.parts``): ``apply_dataset`` is the plan's parts applied one after the other
  (``apply_part``: the open intents the part owns, then its files), then ``combine`` (the one
  ``DatasetResult`` and the dataset-level entries). A fanned-out run calls the same two from separate tasks,
  so a dataset's entries, and their keys, do not depend on how it was run. ``apply_part`` refuses a plan made
  under other terms than the part's listing (``Part.check``); ``combine`` accepts only every part of the
  summary's listing exactly once (``check_results``), and takes each part's files' bad dates from the part
  (its files as they were when it ran), the listing's for the files in no part. A dataset under a legal hold
  has no part, and ``apply_part`` changes and settles nothing under one: nothing of it is changed, nor
  settled, until the hold ends.
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
from airflow_aisec.retention.parts import (
    Part,
    PartResult,
    PlanSummary,
    check_results,
    in_listing_order,
    split_plan,
)
from airflow_aisec.retention.plan import DatasetPlan, FilePlan, bad_dates_error, verdicts
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
    """One ``apply_part`` call: its plan, catalog, dataset, audit log and keys."""

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
        return _record(self.audit, self.plan.dataset, key, outcome, **fields)

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
    Files whose rewrite or delete fails are reported in ``errors`` (the others still proceed). The plan's
    parts (``split_plan``) are applied one after the other, then combined: what a fanned-out run does too.
    """
    parts = split_plan(plan)
    summary = PlanSummary.of(plan, parts)
    results = [apply_part(plan, part, catalog, dataset, keys=keys, audit=audit) for part in parts]
    return combine(summary, results, audit=audit)


def apply_part(
    plan: DatasetPlan,
    part: Part,
    catalog: Catalog,
    dataset: Dataset,
    *,
    keys: KeySource | None = None,
    audit: AuditLog | None = None,
) -> PartResult:
    """Carry out the files of ``part`` that ``plan`` changes, after settling the open intents the part owns
    (``Part.owns``); the result holds what was recovered, then what was done, file by file. ``FanOutError``,
    with nothing changed or settled, when ``plan`` was made under other terms than the part's listing; under
    a legal hold nothing is changed nor settled."""
    part.check(plan)
    if plan.legal_hold is not None:
        return PartResult.of(part, plan, [])
    job = _Job(plan, catalog, dataset, audit, keys)
    changes = [_change(plan, f) for f in plan.files if f.action != "keep" and f.uri in part.files]
    planned = {c.operation for c in changes}
    done = recover(
        job.journal, dataset, job.key_provider, plan.root.s3, redone=planned.__contains__,
        purge_old_versions=plan.purge_versions, owns=part.owns,
    )  # fmt: skip
    done.extend(_apply_file(job, change) for change in changes)
    return PartResult.of(part, plan, done)


def combine(
    summary: PlanSummary, results: Sequence[PartResult], *, audit: AuditLog | None = None
) -> DatasetResult:
    """The one result of a dataset from its parts' results (every part of the summary's listing exactly once:
    ``check_results``), and its dataset-level entries (a legal hold's ``skipped``, ``noop`` when nothing was
    done, the rows with bad dates: each part's for its files, the listing's for the others), keyed as one
    run's."""
    ordered = check_results(summary, results)
    in_parts = {uri for files in summary.parts for uri in files}
    listed = [(uri, count) for uri, count in summary.bad_dates if uri not in in_parts]
    bad = in_listing_order([*listed, *(found for r in ordered for found in r.bad_dates)])
    files = [change for result in ordered for change in result.changes]
    errors = [bad_dates_error(summary.dataset, uri, count, summary.column) for uri, count in bad]
    result = DatasetResult(
        summary.dataset, summary.cutoff, files, errors=[*errors, *(f.error for f in files if f.error)],
        bad_dates=sum(count for _, count in bad),
        legal_hold=summary.legal_hold["reason"] if summary.legal_hold is not None else None,
    )  # fmt: skip
    _record_summary(audit, summary, result, bad)
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


def _record(audit: AuditLog | None, dataset: str, key: str, outcome: str, **fields: Any) -> int | None:
    """Append one ``retention.delete`` entry of ``dataset`` (no-op without an audit log)."""
    if audit is None:
        return None
    return audit.append(ACTION, idempotency_key=key, dataset=dataset, outcome=outcome, **fields)


def _record_summary(
    audit: AuditLog | None, summary: PlanSummary, result: DatasetResult, bad_dates: Sequence[tuple[str, int]]
) -> None:
    """One entry per dataset and cutoff when nothing was done, and one for rows with bad dates."""
    name, cutoff = summary.dataset, summary.cutoff.isoformat()
    base = {"rule": summary.keep_for, "column": summary.column, "cutoff": cutoff, "files": summary.files}
    if summary.legal_hold is not None:
        details = {**base, "legal_hold": dict(summary.legal_hold)}
        _record(audit, name, f"{ACTION}:{name}:{cutoff}:skipped", "skipped", details=details)
    elif not result.files:
        _record(audit, name, f"{ACTION}:{name}:{cutoff}:noop", "noop", rows=0, details=base)
    bad = [{"uri": uri, "bad_dates": count} for uri, count in bad_dates]
    if bad:
        digest = hashlib.sha256(json.dumps(bad, sort_keys=True).encode()).hexdigest()[:32]
        _record(
            audit, name, f"{ACTION}:{name}:{cutoff}:bad-dates:{digest}", "failure", rows=result.bad_dates,
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

"""The retention page: what each run purged, per dataset, and what is held, why and until when."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit import EntryQuery
from airflow_aisec.review.entries import actor_text, field_map

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog, Entry
    from airflow_aisec.catalog.models import Catalog
    from airflow_aisec.retention.holds import HoldList

RETENTION_ACTION = "retention.delete"
_MAX_ENTRIES = 5000


@dataclass
class DatasetPurge:
    """What one run did to one dataset."""

    dataset: str
    files_rewritten: int = 0
    files_deleted: int = 0
    rows_removed: int = 0
    rows_held: int = 0
    failures: int = 0
    skipped: str | None = None
    rule: str | None = None
    cutoff: str | None = None


@dataclass
class RetentionRun:
    """One run of retention (a DAG run, or a command), newest first on the page."""

    who: str
    dag_id: str | None
    run_id: str | None
    first_time: str
    last_index: int
    datasets: dict[str, DatasetPurge] = field(default_factory=dict)

    @property
    def rows_removed(self) -> int:
        """Rows removed across the run's datasets."""
        return sum(d.rows_removed for d in self.datasets.values())


@dataclass(frozen=True)
class HoldRow:
    """A hold: on a whole dataset (from the catalog) or on one subject (by pseudonym)."""

    scope: str
    target: str
    reason: str
    until: str | None
    active: bool
    added: str | None = None


def retention_runs(log: AuditLog, limit: int = _MAX_ENTRIES) -> list[RetentionRun]:
    """The newest retention runs with, per dataset, files and rows purged, rows held and skips."""
    runs: dict[tuple[str, str], RetentionRun] = {}
    for entry in _newest(log, limit):
        data = entry.data
        if data.get("outcome") == "intent":
            continue
        actor = field_map(data, "actor")
        key = (str(actor.get("dag_id") or actor_text(actor)), str(actor.get("run_id") or ""))
        run = runs.get(key)
        if run is None:
            run = RetentionRun(
                who=actor_text(actor),
                dag_id=_text(actor.get("dag_id")),
                run_id=_text(actor.get("run_id")),
                first_time=str(data.get("time", ""))[:19].replace("T", " "),
                last_index=entry.index,
            )
            runs[key] = run
        run.first_time = min(run.first_time, str(data.get("time", ""))[:19].replace("T", " "))
        _count(run, data)
    return sorted(runs.values(), key=lambda r: r.last_index, reverse=True)


def _newest(log: AuditLog, limit: int) -> list[Entry]:
    return log.newest(EntryQuery(action=RETENTION_ACTION), limit)


def _count(run: RetentionRun, data: Mapping[str, Any]) -> None:
    details = field_map(data, "details")
    name = str(data.get("dataset") or "")
    purge = run.datasets.setdefault(name, DatasetPurge(name))
    purge.rule = purge.rule or _text(details.get("rule"))
    purge.cutoff = purge.cutoff or _text(details.get("cutoff"))
    outcome = data.get("outcome", "success")
    if outcome == "skipped":
        hold = details.get("legal_hold")
        reason = hold.get("reason") if isinstance(hold, Mapping) else hold
        purge.skipped = f"legal hold: {reason}" if reason else "skipped"
        return
    if outcome == "failure":
        purge.failures += 1
        return
    if details.get("action") == "delete":
        purge.files_deleted += 1
    elif details.get("action") == "rewrite":
        purge.files_rewritten += 1
    purge.rows_removed += _int(details.get("rows_removed", details.get("rows_affected")))
    purge.rows_held += _int(details.get("rows_held"))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def holds(
    catalog: Catalog | None, subject_holds: HoldList | None, today: dt.date | None = None
) -> list[HoldRow]:
    """Every hold: the catalog's dataset holds, then the per-subject holds (pseudonyms only)."""
    today = today or dt.datetime.now(dt.UTC).date()
    rows: list[HoldRow] = []
    for name, dataset in sorted((catalog.datasets if catalog else {}).items()):
        hold = dataset.legal_hold
        if hold is not None:
            rows.append(HoldRow("dataset", name, hold.reason, hold.until.isoformat(), hold.until >= today))
    for subject in subject_holds.list() if subject_holds is not None else []:
        until = subject.until.isoformat() if subject.until else None
        active = subject.active(today)
        rows.append(HoldRow("subject", subject.pseudonym, subject.reason, until, active, subject.added))
    return rows

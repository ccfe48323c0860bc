"""What the DPIA reports of requests, retention and the log's integrity: the Privacy pages' own views.

The data-subject-request page's rows (``requests``), the retention page's runs (``retention``) and the
integrity page's last verification (``integrity``) are read once here and handed to the assessment
(``airflow_aisec.governance.dpia``) as plain evidence, so the DPIA and the UI never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_aisec.governance.dpia import Assessment, Evidence, Findings, RetentionState, Verification
from airflow_aisec.governance.dpia import build_assessment as _build
from airflow_aisec.review.integrity import integrity_view
from airflow_aisec.review.requests import request_rows
from airflow_aisec.review.retention import RetentionRun, retention_runs

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog.models import Catalog
    from airflow_aisec.review.integrity import Verification as VerificationRow

RETENTION_DUE = dt.timedelta(days=7)
"""A dataset with a retention rule whose last purge run is older than this is overdue (the DAG runs daily)."""


def evidence(log: AuditLog, catalog: Catalog, now: dt.datetime | None = None) -> Evidence:
    """Requests, retention runs and the last verification, from the review views."""
    now = now or dt.datetime.now(dt.UTC)
    rows = request_rows(log, now)
    view = integrity_view(log, None)
    return Evidence(
        requests_open=sum(1 for r in rows if r.pending and r.status != "overdue"),
        requests_overdue=sum(1 for r in rows if r.status == "overdue"),
        requests_answered=sum(1 for r in rows if not r.pending and r.status != "overdue"),
        request_types=dict(Counter(r.type or "unknown" for r in rows)),
        retention=retention_states(catalog, retention_runs(log), now),
        verification=_verification(view.last),
        last_success=_verification(view.last_success),
    )


def _verification(row: VerificationRow | None) -> Verification | None:
    return Verification(row.time, row.outcome, row.size) if row is not None else None


def retention_states(
    catalog: Catalog, runs: list[RetentionRun], now: dt.datetime
) -> dict[str, RetentionState]:
    """Per dataset with a retention rule: its newest run, and whether enforcement is overdue (never run,
    the last run failed, or it ran longer ago than ``RETENTION_DUE``); a dataset under legal hold is not."""
    states = {}
    today = now.date()
    for name, dataset in sorted(catalog.datasets.items()):
        if dataset.retention is None:
            continue
        rule = f"{dataset.retention.keep_for} after {dataset.retention.column}"
        run = next((r for r in runs if name in r.datasets), None)
        held = dataset.legal_hold is not None and dataset.legal_hold.active(today)
        if run is None:
            states[name] = RetentionState(name, rule, None, 0, 0, None, not held, _never(held))
            continue
        purge = run.datasets[name]
        overdue, reason = _judge(run.first_time, purge.failures, held, now)
        states[name] = RetentionState(
            name, rule, run.first_time, purge.rows_removed, purge.failures, purge.skipped, overdue, reason
        )
    return states


def _never(held: bool) -> str:
    return "under legal hold, no run recorded" if held else "no retention run recorded"


def _judge(first_time: str, failures: int, held: bool, now: dt.datetime) -> tuple[bool, str]:
    if held:
        return False, "under legal hold"
    if failures:
        return True, f"the last run ({first_time}) failed on {failures} file(s)"
    try:
        ran = dt.datetime.fromisoformat(first_time).replace(tzinfo=dt.UTC)
    except ValueError:
        return True, "the last run's time is unreadable"
    if now - ran > RETENTION_DUE:
        return True, f"last run {first_time}, more than {RETENTION_DUE.days} days ago"
    return False, f"last run {first_time}"


def assess(
    catalog: Catalog,
    log: AuditLog,
    findings: Findings | None = None,
    *,
    controller: Mapping[str, str | None] | None = None,
    now: dt.datetime | None = None,
) -> Assessment:
    """The DPIA's assessment of ``catalog`` from ``log``, with the review views' evidence."""
    return _build(catalog, log, evidence(log, catalog, now), findings, controller=controller, now=now)

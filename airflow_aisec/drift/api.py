"""Drift and input anomaly checks in one call: profile both sides, test, and write the report if asked.

The CLI (``aisec drift``) and the operators call these; the profiles come back with the result so a caller
can save them or draw its own report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airflow_aisec.drift.anomaly import AnomalyLimits, check_anomalies
from airflow_aisec.drift.check import check_drift
from airflow_aisec.drift.dataset import DatasetProfile
from airflow_aisec.drift.report import write_report
from airflow_aisec.drift.result import CheckResult
from airflow_aisec.drift.sources import SourceOptions, load_pair


@dataclass(frozen=True)
class CheckRun:
    """A check's result, the two profiles it compared, and where its report was written (if it was)."""

    result: CheckResult
    reference: DatasetProfile
    current: DatasetProfile
    report: str | None = None


def drift_check(
    reference: str,
    current: str,
    options: SourceOptions | None = None,
    *,
    columns: Sequence[str] | None = None,
    method: str = "auto",
    threshold: float | None = None,
    drift_share: float = 0.5,
    report_path: str | None = None,
) -> CheckRun:
    """Test the current data against the reference, column by column (see ``drift.check``)."""
    ref, cur = load_pair(reference, current, options, columns=columns)
    result = check_drift(
        ref, cur, columns=columns, method=method, threshold=threshold, drift_share=drift_share
    )
    return _finish(result, ref, cur, report_path, options)


def anomaly_check(
    reference: str,
    current: str,
    options: SourceOptions | None = None,
    *,
    columns: Sequence[str] | None = None,
    limits: AnomalyLimits | None = None,
    max_anomalous_share: float = 0.0,
    report_path: str | None = None,
) -> CheckRun:
    """Check the current inputs against the reference for schema changes, null-rate spikes, out-of-range
    values and unseen categories (see ``drift.anomaly``)."""
    ref, cur = load_pair(reference, current, options, columns=None)
    result = check_anomalies(
        ref, cur, columns=columns, limits=limits, max_anomalous_share=max_anomalous_share
    )
    return _finish(result, ref, cur, report_path, options)


def _finish(
    result: CheckResult,
    ref: DatasetProfile,
    cur: DatasetProfile,
    report_path: str | None,
    options: SourceOptions | None,
) -> CheckRun:
    written = None
    if report_path:
        written = write_report(report_path, result, ref, cur, (options or SourceOptions()).s3)
    return CheckRun(result, ref, cur, written)

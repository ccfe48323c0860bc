"""Drift and input anomaly checks: mergeable column profiles from streamed batches, the tests data teams know
from Evidently computed from the profiles, a JSON-ready result and a self-contained HTML report.

Nothing here imports Airflow; ``DriftCheckOperator`` and ``InputAnomalyOperator`` wrap it, and so does
``aisec drift``.
"""

from __future__ import annotations

from airflow_aisec.drift.anomaly import AnomalyLimits, check_anomalies
from airflow_aisec.drift.api import CheckRun, anomaly_check, drift_check
from airflow_aisec.drift.check import DEFAULT_THRESHOLDS, METHODS, auto_method, check_column, check_drift
from airflow_aisec.drift.dataset import DatasetProfile, load_profile, profile_batches, save_profile
from airflow_aisec.drift.report import render_report, write_report
from airflow_aisec.drift.result import CheckResult, ColumnCheck
from airflow_aisec.drift.sources import SourceOptions, load_pair, load_source

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "AnomalyLimits",
    "CheckResult",
    "CheckRun",
    "ColumnCheck",
    "DatasetProfile",
    "SourceOptions",
    "anomaly_check",
    "auto_method",
    "check_anomalies",
    "check_column",
    "check_drift",
    "drift_check",
    "load_pair",
    "load_profile",
    "load_source",
    "profile_batches",
    "render_report",
    "save_profile",
    "write_report",
]

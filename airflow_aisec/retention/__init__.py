"""Retention enforcement: purge rows older than the catalog's rules, honouring legal holds (no Airflow)."""

from __future__ import annotations

from airflow_aisec.retention.core import (
    DatasetPlan,
    DatasetResult,
    FilePlan,
    FileResult,
    apply_catalog,
    apply_dataset,
    plan_catalog,
    plan_dataset,
)
from airflow_aisec.retention.holds import Hold, HoldList

__all__ = [
    "DatasetPlan",
    "DatasetResult",
    "FilePlan",
    "FileResult",
    "Hold",
    "HoldList",
    "apply_catalog",
    "apply_dataset",
    "plan_catalog",
    "plan_dataset",
]

"""Retention enforcement: purge rows older than the catalog's rules, honouring legal holds (no Airflow).

``plan`` decides what each file needs (``dates`` reads the retention values, ``statistics`` the Parquet
footers that spare a read), ``apply`` carries a plan out through the one journaled file change
(``airflow_aisec.rewrite``), ``holds`` keeps per-subject holds.
"""

from __future__ import annotations

from airflow_aisec.retention.apply import DatasetResult, apply_catalog, apply_dataset
from airflow_aisec.retention.holds import Hold, HoldList
from airflow_aisec.retention.plan import DatasetPlan, FilePlan, plan_catalog, plan_dataset

__all__ = [
    "DatasetPlan",
    "DatasetResult",
    "FilePlan",
    "Hold",
    "HoldList",
    "apply_catalog",
    "apply_dataset",
    "plan_catalog",
    "plan_dataset",
]

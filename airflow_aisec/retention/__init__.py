"""Retention enforcement: purge rows older than the catalog's rules, honouring legal holds (no Airflow).

``plan`` decides what each file needs (``dates`` reads the retention values, ``statistics`` the Parquet
footers that spare a read), ``parts`` splits a plan's files into groups that separate tasks apply,
``apply`` carries a plan (or one part of it) out through the one journaled file change
(``airflow_aisec.rewrite``) and combines the parts, ``holds`` keeps per-subject holds.
"""

from __future__ import annotations

from airflow_aisec.retention.apply import DatasetResult, apply_catalog, apply_dataset, apply_part, combine
from airflow_aisec.retention.holds import Hold, HoldList
from airflow_aisec.retention.parts import Part, PartResult, PlanSummary, Terms, check_results, split_plan
from airflow_aisec.retention.plan import (
    DatasetPlan,
    FilePlan,
    plan_catalog,
    plan_dataset,
    plan_files,
    retained_datasets,
)

__all__ = [
    "DatasetPlan",
    "DatasetResult",
    "FilePlan",
    "Hold",
    "HoldList",
    "Part",
    "PartResult",
    "PlanSummary",
    "Terms",
    "apply_catalog",
    "apply_dataset",
    "apply_part",
    "check_results",
    "combine",
    "plan_catalog",
    "plan_dataset",
    "plan_files",
    "retained_datasets",
    "split_plan",
]

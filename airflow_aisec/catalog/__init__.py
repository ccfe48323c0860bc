"""The privacy catalog: typed models, a loader that reports every problem, and the reference graph."""

from __future__ import annotations

from airflow_aisec.catalog.graph import Link, ReferenceCycleError, ReferenceGraph, Step
from airflow_aisec.catalog.loader import load_catalog, validate_catalog
from airflow_aisec.catalog.models import (
    Catalog,
    Column,
    Dataset,
    Encryption,
    KeySpec,
    LegalHold,
    MaskSpec,
    Retention,
    Subjects,
    parse_duration,
)
from airflow_aisec.catalog.problems import Problem, Report

__all__ = [
    "Catalog",
    "Column",
    "Dataset",
    "Encryption",
    "KeySpec",
    "LegalHold",
    "Link",
    "MaskSpec",
    "Problem",
    "ReferenceCycleError",
    "ReferenceGraph",
    "Report",
    "Retention",
    "Step",
    "Subjects",
    "load_catalog",
    "parse_duration",
    "validate_catalog",
]

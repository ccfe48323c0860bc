"""Bias checks of predictions across the groups of a protected attribute the catalog declares.

Per-group confusion counts streamed from Arrow record batches (``counts``), fairlearn's group metrics computed
from them and judged against thresholds (``metrics``), the check's result (``report``) and the check of a
catalog dataset (``dataset``). Nothing here imports Airflow, or fairlearn.
"""

from __future__ import annotations

from airflow_aisec.fairness.counts import DEFAULT_MAX_GROUPS, AttributeCounts, BiasCounter, GroupCounts
from airflow_aisec.fairness.dataset import check_dataset, group_labeller, protected_attributes, shows_values
from airflow_aisec.fairness.metrics import (
    DEFAULT_MIN_GROUP_SIZE,
    FOUR_FIFTHS,
    AttributeReport,
    BiasThresholds,
    GroupReport,
    Violation,
    attribute_metrics,
    evaluate,
)
from airflow_aisec.fairness.report import BiasReport

__all__ = [
    "DEFAULT_MAX_GROUPS",
    "DEFAULT_MIN_GROUP_SIZE",
    "FOUR_FIFTHS",
    "AttributeCounts",
    "AttributeReport",
    "BiasCounter",
    "BiasReport",
    "BiasThresholds",
    "GroupCounts",
    "GroupReport",
    "Violation",
    "attribute_metrics",
    "check_dataset",
    "evaluate",
    "group_labeller",
    "protected_attributes",
    "shows_values",
]

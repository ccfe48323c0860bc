"""``BiasCheckOperator`` outside a DAG run: what it refuses before reading anything."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_aisec.exceptions import FairnessError
from airflow_aisec.operators.fairness import BiasCheckOperator


def _operator(lake: dict[str, Any], **options: Any) -> BiasCheckOperator:
    return BiasCheckOperator(
        task_id="check", catalog=str(lake["catalog"]), variables=lake["vars"], prediction_column="approved",
        **{"dataset": "scores", **options},
    )  # fmt: skip


def test_an_unknown_dataset_is_named_with_the_known_ones(lake: dict[str, Any]) -> None:
    with pytest.raises(FairnessError, match=r"unknown dataset 'nope' \(known: scores, unprotected\)"):
        _operator(lake, dataset="nope").execute({})  # type: ignore[arg-type]


def test_thresholds_are_checked_before_the_catalog_is_read(lake: dict[str, Any]) -> None:
    with pytest.raises(FairnessError, match="min_selection_rate_ratio must be between 0 and 1"):
        _operator(lake, min_selection_rate_ratio=80).execute({})  # type: ignore[arg-type]


def test_a_passing_check_returns_its_result(lake: dict[str, Any]) -> None:
    result = _operator(lake, protected_attribute="ethnicity").execute({})  # type: ignore[arg-type]
    assert result["passed"] is True and result["attributes"][0]["attribute"] == "ethnicity"

"""The metrics computed from streamed counts agree with fairlearn's on the same rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from bias_data import random_scores
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from airflow_aisec.fairness import BiasCounter, BiasThresholds, evaluate

CASES = [
    # seed, rows, groups, selection rate per group, group weights (None: even)
    (1, 2000, ["a", "b"], [0.5, 0.5], None),
    (2, 3000, ["a", "b", "c"], [0.2, 0.5, 0.7], None),
    (3, 5000, ["x", "y", "z", "w"], [0.4, 0.42, 0.3, 0.6], [0.7, 0.2, 0.07, 0.03]),
    (4, 1500, ["p", "q", "r", "s", "t"], [0.1, 0.9, 0.5, 0.5, 0.3], [0.5, 0.2, 0.1, 0.1, 0.1]),
    (5, 800, ["only-big", "tiny"], [0.6, 0.1], [0.97, 0.03]),
]


def _report(data: dict[str, np.ndarray], batch_rows: int) -> dict[str, float | None]:
    table = pa.table({"g": data["group"], "y": data["label"], "p": data["prediction"]})
    counter = BiasCounter("p", ["g"], label="y").add_all(table.to_batches(max_chunksize=batch_rows))
    return evaluate(counter.counts["g"], BiasThresholds(min_group_size=1)).metrics


@pytest.mark.parametrize(("seed", "rows", "groups", "rates", "weights"), CASES)
def test_metrics_agree_with_fairlearn(
    seed: int, rows: int, groups: list[str], rates: list[float], weights: list[float] | None
) -> None:
    data = random_scores(seed, rows, groups, rates, weights)
    y, p, g = data["label"], data["prediction"], data["group"]
    ours = _report(data, batch_rows=97)

    assert ours["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, p, sensitive_features=g), abs=1e-12
    )
    assert ours["selection_rate_ratio"] == pytest.approx(
        demographic_parity_ratio(y, p, sensitive_features=g), abs=1e-12
    )
    assert ours["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, p, sensitive_features=g), abs=1e-12
    )


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_per_group_rates_agree_with_fairlearns_metric_frame(seed: int) -> None:
    data = random_scores(seed, 2500, ["a", "b", "c"], [0.3, 0.5, 0.4], [0.6, 0.3, 0.1])
    table = pa.table({"g": data["group"], "y": data["label"], "p": data["prediction"]})
    counter = BiasCounter("p", ["g"], label="y").add_all(table.to_batches(max_chunksize=128))
    groups = {
        r.label: r.counts for r in evaluate(counter.counts["g"], BiasThresholds(min_group_size=1)).groups
    }
    frame = MetricFrame(
        metrics={"sel": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=data["label"],
        y_pred=data["prediction"],
        sensitive_features=data["group"],
    )
    for group, row in frame.by_group.iterrows():
        counts = groups[str(group)]
        assert counts.n == int((data["group"] == group).sum())
        assert counts.selection_rate == pytest.approx(row["sel"], abs=1e-12)
        assert counts.true_positive_rate == pytest.approx(row["tpr"], abs=1e-12)
        assert counts.false_positive_rate == pytest.approx(row["fpr"], abs=1e-12)
    assert max(g.selection_rate or 0 for g in groups.values()) == pytest.approx(frame.group_max()["sel"])

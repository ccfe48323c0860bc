"""Thresholds, small groups and what a report shows."""

from __future__ import annotations

import pytest

from airflow_aisec.exceptions import FairnessError
from airflow_aisec.fairness import AttributeCounts, BiasThresholds, GroupCounts, evaluate


def _counts(**groups: tuple[int, int]) -> AttributeCounts:
    """Counts without labels: group → (rows, selected)."""
    return AttributeCounts("sex", False, {g: GroupCounts(n=n, selected=s) for g, (n, s) in groups.items()})


def test_the_four_fifths_rule_fails_a_ratio_below_0_8_and_passes_one_above() -> None:
    lenient = BiasThresholds(max_demographic_parity_difference=None)
    failing = evaluate(_counts(F=(100, 30), M=(100, 40)), lenient)  # 0.75
    assert failing.metrics["selection_rate_ratio"] == pytest.approx(0.75)
    assert [v.metric for v in failing.violations] == ["selection_rate_ratio"]
    assert "selection_rate_ratio 0.75 (allowed: at least 0.8)" in failing.violations[0].message()
    assert not evaluate(_counts(F=(100, 33), M=(100, 40)), lenient).violations  # 0.825


def test_each_threshold_is_checked_and_none_switches_it_off() -> None:
    counts = AttributeCounts(
        "sex", True,
        {"F": GroupCounts(100, 50, tp=40, fp=10, tn=40, fn=10), "M": GroupCounts(100, 50, 25, 25, 25, 25)},
    )  # fmt: skip
    report = evaluate(counts, BiasThresholds())
    assert report.metrics["demographic_parity_difference"] == 0
    assert report.metrics["true_positive_rate_difference"] == pytest.approx(0.3)
    assert report.metrics["false_positive_rate_difference"] == pytest.approx(0.3)
    assert [v.metric for v in report.violations] == ["equalized_odds_difference"]
    assert not evaluate(counts, BiasThresholds(max_equalized_odds_difference=0.3)).violations
    assert not evaluate(counts, BiasThresholds(max_equalized_odds_difference=None)).violations
    strict = evaluate(_counts(F=(100, 30), M=(100, 40)), BiasThresholds(min_selection_rate_ratio=None))
    assert [v.metric for v in strict.violations] == []  # difference 0.1 is at most 0.1
    stricter = BiasThresholds(min_selection_rate_ratio=None, max_demographic_parity_difference=0.05)
    assert [v.metric for v in evaluate(_counts(F=(100, 30), M=(100, 40)), stricter).violations] == [
        "demographic_parity_difference"
    ]


def test_small_groups_are_shown_by_size_only_and_left_out_of_the_comparison() -> None:
    report = evaluate(_counts(F=(100, 50), M=(100, 50), X=(4, 0)), BiasThresholds(min_group_size=30))
    assert report.metrics["selection_rate_ratio"] == 1.0 and not report.violations
    small = next(g.as_dict() for g in report.groups if g.label == "X")
    assert small == {"group": "X", "n": 4, "small": True}
    assert report.as_dict()["small_groups"] == 1
    assert any("1 group(s) with fewer than 30 rows" in w for w in report.warnings)


def test_fewer_than_two_groups_to_compare_fails_the_check() -> None:
    report = evaluate(_counts(F=(100, 50), M=(10, 0)), BiasThresholds(min_group_size=30))
    assert [v.metric for v in report.violations] == ["compared_groups"]
    assert "two are needed" in report.violations[0].message()


def test_no_positive_prediction_at_all_gives_no_ratio_and_says_so() -> None:
    report = evaluate(_counts(F=(100, 0), M=(100, 0)), BiasThresholds())
    assert report.metrics["selection_rate_ratio"] is None and not report.violations
    assert any("no group has a positive prediction" in w for w in report.warnings)


def test_groups_are_labelled_as_asked() -> None:
    report = evaluate(_counts(F=(100, 50), M=(100, 50)), BiasThresholds(), label=lambda v: f"g-{v.lower()}")
    assert [g.label for g in report.groups] == ["g-f", "g-m"]


@pytest.mark.parametrize(
    "bad",
    [{"min_selection_rate_ratio": 1.5}, {"max_equalized_odds_difference": -0.1}, {"min_group_size": 0},
     {"max_demographic_parity_difference": True}],
)  # fmt: skip
def test_thresholds_out_of_range_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(FairnessError, match=next(iter(bad))):
        BiasThresholds(**bad)  # type: ignore[arg-type]

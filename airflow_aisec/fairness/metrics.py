"""Group fairness metrics from per-group counts, judged against thresholds.

The metrics are fairlearn's, computed from counts instead of rows:

- selection rate of a group: its rows predicted positive / its rows;
- selection-rate ratio (fairlearn's ``demographic_parity_ratio``): lowest / highest selection rate; the
  four-fifths rule of the US EEOC Uniform Guidelines (29 CFR 1607.4(D)) asks for at least 0.8;
- demographic-parity difference: highest − lowest selection rate;
- equalized-odds difference (fairlearn's ``worst_case``): the larger of the true-positive-rate difference
  and the false-positive-rate difference, each highest − lowest across groups.

Groups with fewer rows than ``min_group_size`` are reported by size only and left out of every comparison
(their rates are noise, and a rate of a handful of rows says what was predicted for those people). A rate
a group cannot have (a TPR without positive labels) is None and left out of that difference; fairlearn
counts it as 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from airflow_aisec.exceptions import FairnessError
from airflow_aisec.fairness.counts import AttributeCounts, GroupCounts

FOUR_FIFTHS = 0.8
DEFAULT_MIN_GROUP_SIZE = 30
DEFAULT_MAX_DIFFERENCE = 0.1
# Rates are ratios of counts: 0.7 - 0.4 is 0.30000000000000004 in floating point, and a metric exactly at
# its threshold passes.
TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class BiasThresholds:
    """What a check allows; a None threshold is not checked."""

    min_selection_rate_ratio: float | None = FOUR_FIFTHS
    max_demographic_parity_difference: float | None = DEFAULT_MAX_DIFFERENCE
    max_equalized_odds_difference: float | None = DEFAULT_MAX_DIFFERENCE
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "min_group_size":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise FairnessError(
                        f"bias threshold min_group_size must be a whole number ≥ 1: {value!r}"
                    )
            elif value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
            ):
                raise FairnessError(f"bias threshold {field.name} must be between 0 and 1: {value!r}")

    def as_dict(self) -> dict[str, Any]:
        """The thresholds as plain JSON."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Violation:
    """A metric of one attribute past its threshold (or groups too few to measure anything)."""

    attribute: str
    metric: str
    value: float | int | None
    threshold: float | int

    def message(self) -> str:
        """One line naming attribute, metric, value and threshold."""
        if self.metric == "compared_groups":
            return (
                f"{self.attribute}: {self.value} group(s) with at least {self.threshold} rows, "
                "two are needed to compare"
            )
        bound = "at least" if self.metric == "selection_rate_ratio" else "at most"
        return f"{self.attribute}: {self.metric} {_fmt(self.value)} (allowed: {bound} {self.threshold})"


def _fmt(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


@dataclasses.dataclass(frozen=True)
class GroupReport:
    """One group: its label (as the catalog allows it to be shown), size and rates (None when small)."""

    label: str
    counts: GroupCounts
    small: bool

    def as_dict(self) -> dict[str, Any]:
        """The group as plain JSON; a small group shows its size only."""
        data: dict[str, Any] = {"group": self.label, "n": self.counts.n, "small": self.small}
        if not self.small:
            data["selection_rate"] = self.counts.selection_rate
            data["true_positive_rate"] = self.counts.true_positive_rate
            data["false_positive_rate"] = self.counts.false_positive_rate
        return data


@dataclasses.dataclass(frozen=True)
class AttributeReport:
    """The metrics of one protected attribute, and what they break."""

    attribute: str
    labelled: bool
    groups: list[GroupReport]
    skipped_rows: int
    metrics: dict[str, float | None]
    violations: list[Violation]
    warnings: list[str]

    @property
    def compared(self) -> list[GroupReport]:
        """The groups large enough to be compared."""
        return [g for g in self.groups if not g.small]

    def as_dict(self) -> dict[str, Any]:
        """The attribute's report as plain JSON."""
        return {
            "attribute": self.attribute,
            "labelled": self.labelled,
            "groups": [g.as_dict() for g in self.groups],
            "compared_groups": len(self.compared),
            "small_groups": len(self.groups) - len(self.compared),
            "skipped_rows": self.skipped_rows,
            "metrics": dict(self.metrics),
            "passed": not self.violations,
            "violations": [v.message() for v in self.violations],
            "warnings": list(self.warnings),
        }


def _spread(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) - min(known) if len(known) >= 2 else None


def attribute_metrics(groups: list[GroupCounts], labelled: bool) -> dict[str, float | None]:
    """The metrics over ``groups`` (the ones compared); equalized odds only with labels."""
    rates = [g.selection_rate for g in groups]
    known = [r for r in rates if r is not None]
    ratio = min(known) / max(known) if len(known) >= 2 and max(known) > 0 else None
    metrics: dict[str, float | None] = {
        "selection_rate_ratio": ratio,
        "demographic_parity_difference": _spread(rates),
    }
    if labelled:
        tpr = _spread([g.true_positive_rate for g in groups])
        fpr = _spread([g.false_positive_rate for g in groups])
        both = [d for d in (tpr, fpr) if d is not None]
        metrics["true_positive_rate_difference"] = tpr
        metrics["false_positive_rate_difference"] = fpr
        metrics["equalized_odds_difference"] = max(both) if both else None
    return metrics


_LIMITS = (
    ("selection_rate_ratio", "min_selection_rate_ratio", False),
    ("demographic_parity_difference", "max_demographic_parity_difference", True),
    ("equalized_odds_difference", "max_equalized_odds_difference", True),
)


def _violations(
    attribute: str, metrics: dict[str, float | None], thresholds: BiasThresholds
) -> list[Violation]:
    found = []
    for metric, name, is_max in _LIMITS:
        limit, value = getattr(thresholds, name), metrics.get(metric)
        if limit is None or value is None:
            continue
        if (value > limit + TOLERANCE) if is_max else (value < limit - TOLERANCE):
            found.append(Violation(attribute, metric, value, limit))
    return found


def evaluate(
    counts: AttributeCounts, thresholds: BiasThresholds, label: Callable[[str], str] = str
) -> AttributeReport:
    """The report of one attribute: each group under ``label(value)``, the metrics over the groups of at
    least ``min_group_size`` rows, and the thresholds they pass."""
    size = thresholds.min_group_size
    groups = sorted(
        (GroupReport(label(value), c, c.n < size) for value, c in counts.groups.items()),
        key=lambda g: g.label,
    )
    compared = [g.counts for g in groups if not g.small]
    metrics = attribute_metrics(compared, counts.labelled)
    violations = _violations(counts.attribute, metrics, thresholds)
    warnings = []
    small = len(groups) - len(compared)
    if small:
        warnings.append(
            f"{counts.attribute}: {small} group(s) with fewer than {size} rows left out of the comparison"
        )
    if len(compared) < 2:
        violations.append(Violation(counts.attribute, "compared_groups", len(compared), size))
    elif metrics["selection_rate_ratio"] is None:
        warnings.append(f"{counts.attribute}: no group has a positive prediction, so no selection-rate ratio")
    if counts.skipped:
        warnings.append(f"{counts.attribute}: {counts.skipped} row(s) with a null value left out")
    return AttributeReport(
        counts.attribute, counts.labelled, groups, counts.skipped, metrics, violations, warnings
    )

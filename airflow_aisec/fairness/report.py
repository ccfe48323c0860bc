"""The result of a bias check: what was read, each attribute's metrics, and whether the thresholds hold."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from airflow_aisec.fairness.metrics import AttributeReport, BiasThresholds, Violation


@dataclasses.dataclass(frozen=True)
class BiasReport:
    """A bias check of one dataset: the files and rows read, and a report per protected attribute.

    ``as_dict`` is what XCom, ``aisec bias check --json`` and the audit entry's details carry: group labels
    as the catalog allows them to be shown, sizes, rates and metrics; never a row.
    """

    dataset: str
    uri: str
    files: int
    rows: int
    prediction: str
    label: str | None
    positive_label: Any
    thresholds: BiasThresholds
    attributes: list[AttributeReport]

    @property
    def violations(self) -> list[Violation]:
        """Every threshold passed, attribute by attribute."""
        return [v for report in self.attributes for v in report.violations]

    @property
    def passed(self) -> bool:
        """Whether every attribute is within every threshold."""
        return not self.violations

    def summary(self) -> str:
        """One line for logs and errors: dataset, outcome and each violation."""
        if self.passed:
            names = ", ".join(r.attribute for r in self.attributes)
            return f"dataset {self.dataset}: bias check passed for {names} ({self.rows} rows)"
        problems = "; ".join(v.message() for v in self.violations)
        return f"dataset {self.dataset}: bias check failed: {problems}"

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON."""
        return {
            "dataset": self.dataset,
            "uri": self.uri,
            "files": self.files,
            "rows": self.rows,
            "prediction": self.prediction,
            "label": self.label,
            "positive_label": _plain(self.positive_label),
            "thresholds": self.thresholds.as_dict(),
            "passed": self.passed,
            "violations": [v.message() for v in self.violations],
            "attributes": [a.as_dict() for a in self.attributes],
        }

    def audit_fields(self, outcome: str | None = None) -> dict[str, Any]:
        """The ``bias.check`` audit entry's fields."""
        columns = [
            self.prediction,
            *([self.label] if self.label else []),
            *(a.attribute for a in self.attributes),
        ]
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "columns": list(dict.fromkeys(columns)),
            "outcome": outcome or ("success" if self.passed else "failure"),
            "details": self.as_dict(),
        }


def _plain(value: Any) -> Any:
    """``value`` if JSON can carry it, else its text (a positive label may be any scalar)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value

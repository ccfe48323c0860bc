"""What a drift or input anomaly check found, as plain data: per column, and for the dataset as a whole.

Only aggregate statistics go in here (test statistics, shares, counts), never a value of the data, so the
result may go to XCom, the audit log and a report as it is.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["drift", "anomaly"]


@dataclass(frozen=True)
class ColumnCheck:
    """One test of one column: the method, its statistic, the threshold, and whether the column drifted.

    ``drifted`` means "statistic on the drifted side of the threshold": below it for p-values (``ks``,
    ``chisquare``, ``z``), at or above it for distances and anomaly shares.
    """

    column: str
    method: str
    statistic: float | None
    threshold: float
    drifted: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        statistic = self.statistic
        doc["statistic"] = None if statistic is None or not math.isfinite(statistic) else statistic
        if statistic is not None and math.isinf(statistic):
            doc["detail"] = {**self.detail, "statistic": "inf"}
        return doc


@dataclass(frozen=True)
class CheckResult:
    """The columns checked, the share that drifted, and whether that share stays under the limit.

    For drift, the dataset drifted when ``drifted_share >= drift_share`` (Evidently's dataset-drift rule). For
    anomalies, ``drift_share`` is the allowed share of anomalous columns: it passes while
    ``drifted_share <= drift_share`` (0: any anomaly fails).
    """

    kind: Kind
    reference: str
    current: str
    reference_rows: int
    current_rows: int
    columns: list[ColumnCheck]
    drift_share: float
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not checked

    @property
    def checked(self) -> list[str]:
        return sorted({c.column for c in self.columns})

    @property
    def drifted_columns(self) -> list[str]:
        return sorted({c.column for c in self.columns if c.drifted})

    @property
    def drifted_share(self) -> float:
        checked = self.checked
        return len(self.drifted_columns) / len(checked) if checked else 0.0

    @property
    def passed(self) -> bool:
        if self.kind == "drift":
            return not self.columns or self.drifted_share < self.drift_share
        return self.drifted_share <= self.drift_share

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reference": self.reference,
            "current": self.current,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": [c.to_dict() for c in self.columns],
            "skipped": dict(self.skipped),
            "checked_columns": len(self.checked),
            "drifted_columns": self.drifted_columns,
            "drifted_share": self.drifted_share,
            "drift_share": self.drift_share,
            "passed": self.passed,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """One line: what was checked and what drifted (column names and counts only)."""
        word = "drifted" if self.kind == "drift" else "anomalous"
        names = ", ".join(self.drifted_columns) or "none"
        return (
            f"{self.kind} check of {self.current!r} against {self.reference!r}: "
            f"{len(self.drifted_columns)}/{len(self.checked)} columns {word} "
            f"({self.drifted_share:.0%}, limit {self.drift_share:.0%}): {names}"
        )

    def audit_fields(self) -> dict[str, Any]:
        """What the audit entry of the check records: the outcome, counts and per-column decisions."""
        return {
            "outcome": "success" if self.passed else "failure",
            "details": {
                "reference": self.reference,
                "current": self.current,
                "reference_rows": self.reference_rows,
                "current_rows": self.current_rows,
                "drifted_share": self.drifted_share,
                "drift_share": self.drift_share,
                "columns": {
                    c.column + ("" if self.kind == "drift" else f"/{c.method}"): {
                        "method": c.method,
                        "drifted": c.drifted,
                    }
                    for c in self.columns
                },
            },
        }

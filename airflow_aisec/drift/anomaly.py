"""Input anomaly checks of inference inputs against a reference profile, per column.

- ``schema``: a column added, removed, or of another type than in the reference (statistic 1.0);
- ``null_rate``: the current null rate minus the reference's; anomalous at ``max_null_increase`` or more;
- ``out_of_range``: the share of current values below the reference's min or above its max (numeric);
- ``unseen_categories``: the share of current rows whose category the reference never had (categorical);
  the count of such categories is in ``detail``, never the categories themselves.

Each is a ``ColumnCheck`` of a ``CheckResult`` of kind ``anomaly``: the result passes while the share of
anomalous columns is at most ``max_anomalous_share`` (default 0: any anomaly fails).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airflow_aisec.drift.dataset import DatasetProfile
from airflow_aisec.drift.profile import CategoricalProfile, ColumnProfile, NumericProfile
from airflow_aisec.drift.result import CheckResult, ColumnCheck
from airflow_aisec.exceptions import DriftError


@dataclass(frozen=True)
class AnomalyLimits:
    """When a column counts as anomalous; shares are fractions of the current rows (or values)."""

    max_null_increase: float = 0.1
    max_out_of_range: float = 0.01
    max_unseen: float = 0.01

    def validate(self) -> None:
        for name in ("max_null_increase", "max_out_of_range", "max_unseen"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise DriftError(f"{name} must be between 0 and 1, got {value!r}")


def schema_changes(reference: DatasetProfile, current: DatasetProfile) -> list[ColumnCheck]:
    """Columns added, removed or retyped between the reference's schema and the current one."""
    checks = []
    for name in sorted(set(reference.schema) | set(current.schema)):
        before, after = reference.schema.get(name), current.schema.get(name)
        if before == after:
            continue
        change = "added" if before is None else "removed" if after is None else "retyped"
        detail = {"change": change, "reference_type": before, "current_type": after}
        checks.append(ColumnCheck(name, "schema", 1.0, 1.0, True, detail))
    return checks


def null_rate(name: str, ref: ColumnProfile, cur: ColumnProfile, limit: float) -> ColumnCheck:
    ref_rate = ref.nulls / max(ref.count + ref.nulls, 1)
    cur_rate = cur.nulls / max(cur.count + cur.nulls, 1)
    increase = cur_rate - ref_rate
    detail = {"reference_null_rate": ref_rate, "current_null_rate": cur_rate}
    return ColumnCheck(name, "null_rate", increase, limit, increase >= limit and increase > 0, detail)


def out_of_range(name: str, ref: NumericProfile, cur: NumericProfile, limit: float) -> ColumnCheck:
    """The share of current values outside the reference's [min, max] (from the current sketch's CDF)."""
    if not cur.count or not ref.count:
        return ColumnCheck(name, "out_of_range", 0.0, limit, False, {"values": cur.count})
    below = float(cur.sketch.get_cdf([ref.minimum], False)[0])
    above = 1.0 - float(cur.sketch.get_cdf([ref.maximum], True)[0])
    share = below + above
    detail = {"below": below, "above": above}
    return ColumnCheck(name, "out_of_range", share, limit, share > 0 and share >= limit, detail)


def unseen_categories(
    name: str, ref: CategoricalProfile, cur: CategoricalProfile, limit: float
) -> ColumnCheck:
    """The share of current rows whose category the reference does not have; approximate (only frequent
    categories compared) once the reference had more values than profiles count exactly."""
    known = ref.items()
    unseen = {key: n for key, n in cur.items().items() if key not in known}
    share = sum(unseen.values()) / max(cur.count, 1)
    detail = {"unseen_categories": len(unseen), "exact": ref.exact and cur.exact}
    return ColumnCheck(name, "unseen_categories", share, limit, share > 0 and share >= limit, detail)


def check_anomalies(
    reference: DatasetProfile,
    current: DatasetProfile,
    *,
    columns: Sequence[str] | None = None,
    limits: AnomalyLimits | None = None,
    max_anomalous_share: float = 0.0,
) -> CheckResult:
    """Schema changes, null-rate spikes, out-of-range values and unseen categories, per column."""
    limits = limits or AnomalyLimits()
    limits.validate()
    if not 0 <= max_anomalous_share <= 1:
        raise DriftError(f"max_anomalous_share must be between 0 and 1, got {max_anomalous_share!r}")
    wanted = set(columns) if columns is not None else None
    missing = sorted((wanted or set()) - set(reference.schema) - set(current.schema))
    if missing:
        raise DriftError(f"column {missing[0]!r} is in neither the reference nor the current data")
    checks = [c for c in schema_changes(reference, current) if wanted is None or c.column in wanted]
    skipped: dict[str, str] = {}
    names = sorted(set(reference.columns) & set(current.columns))
    for name in names if wanted is None else [n for n in names if n in wanted]:
        ref, cur = reference.columns[name], current.columns[name]
        checks.append(null_rate(name, ref, cur, limits.max_null_increase))
        if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
            checks.append(out_of_range(name, ref, cur, limits.max_out_of_range))
        elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
            checks.append(unseen_categories(name, ref, cur, limits.max_unseen))
    return CheckResult(
        "anomaly",
        reference.dataset,
        current.dataset,
        reference.rows,
        current.rows,
        checks,
        max_anomalous_share,
        skipped,
    )

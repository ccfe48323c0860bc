"""Drift tests between a reference and a current profile, with Evidently's choice of method by default.

``method="auto"`` picks, per column (the rule of Evidently's default stat test):

- reference of at most 1,000 non-null values: a numeric column with more than 5 distinct values (both
  sides together) gets Kolmogorov–Smirnov; any other column chi² when it has more than 2 values, else the
  two-proportion z-test;
- a larger reference: a numeric column with more than 5 distinct values gets the normed Wasserstein
  distance; any other column Jensen–Shannon.

Default thresholds: 0.05 for p-values (``ks``, ``chisquare``, ``z``: drift when p < threshold) and 0.1 for
distances (``wasserstein``, ``jensenshannon``, ``psi``: drift when distance ≥ threshold). A method can also be
named for every column (``method="psi"``), with its own threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_aisec.drift import stats
from airflow_aisec.drift.dataset import DatasetProfile
from airflow_aisec.drift.profile import CategoricalProfile, ColumnProfile, NumericProfile
from airflow_aisec.drift.result import CheckResult, ColumnCheck
from airflow_aisec.exceptions import DriftError

P_VALUE_METHODS = ("ks", "chisquare", "z")
DISTANCE_METHODS = ("wasserstein", "jensenshannon", "psi")
METHODS = ("auto", *P_VALUE_METHODS, *DISTANCE_METHODS)
NUMERIC_ONLY = ("ks", "wasserstein")
SMALL_REFERENCE = 1000
FEW_VALUES = 5
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1}
DEFAULT_THRESHOLDS["psi"] = 0.1


def distinct_values(ref: ColumnProfile, cur: ColumnProfile) -> int:
    """Distinct values of both sides together (exact up to the profiles' caps; beyond, at least the cap)."""
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        if ref.small is None or cur.small is None:
            return FEW_VALUES + 1 + max(len(ref.small or {}), len(cur.small or {}))
        return len(set(ref.small) | set(cur.small))
    assert isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile)
    return len(set(ref.items()) | set(cur.items()))


def auto_method(ref: ColumnProfile, cur: ColumnProfile) -> str:
    """The method Evidently's defaults pick for this column (see the module docstring)."""
    values = distinct_values(ref, cur)
    many_numeric = isinstance(ref, NumericProfile) and values > FEW_VALUES
    if ref.count <= SMALL_REFERENCE:
        if many_numeric:
            return "ks"
        return "chisquare" if values > 2 else "z"
    return "wasserstein" if many_numeric else "jensenshannon"


def _shares(ref: ColumnProfile, cur: ColumnProfile) -> tuple[Any, Any]:
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        return stats.numeric_shares(ref, cur)
    assert isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile)
    _keys, ref_shares, cur_shares = stats.category_shares(ref, cur)
    return ref_shares, cur_shares


def _counts(ref: ColumnProfile, cur: ColumnProfile) -> tuple[Any, Any]:
    import numpy as np

    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        if ref.small is None or cur.small is None:
            raise DriftError("chisquare and z need a column with few values; use ks or wasserstein")
        keys = sorted(set(ref.small) | set(cur.small))
        return np.array([ref.small.get(k, 0) for k in keys], float), np.array(
            [cur.small.get(k, 0) for k in keys], float
        )
    assert isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile)
    _keys, ref_counts, cur_counts = stats.category_counts(ref, cur)
    return ref_counts, cur_counts


def statistic(method: str, ref: ColumnProfile, cur: ColumnProfile) -> tuple[float, dict[str, Any]]:
    """The method's statistic (a p-value or a distance) and what else it computed (the test statistic)."""
    if method in NUMERIC_ONLY:
        if not (isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile)):
            raise DriftError(f"method {method!r} needs a numeric column")
        if method == "ks":
            d, p = stats.ks_test(ref, cur)
            return p, {"ks_statistic": d}
        return stats.wasserstein_normed(ref, cur), {}
    if method in ("chisquare", "z"):
        ref_counts, cur_counts = _counts(ref, cur)
        test = stats.chi2_test if method == "chisquare" else stats.z_test
        value, p = test(ref_counts, cur_counts)
        return p, {f"{method}_statistic": value}
    ref_shares, cur_shares = _shares(ref, cur)
    if method == "psi":
        return stats.psi(ref_shares, cur_shares), {"bins": len(ref_shares)}
    return stats.jensenshannon(ref_shares, cur_shares), {"bins": len(ref_shares)}


def check_column(
    name: str, ref: ColumnProfile, cur: ColumnProfile, method: str = "auto", threshold: float | None = None
) -> ColumnCheck:
    """Test one column; ``method="auto"`` picks it as Evidently does."""
    chosen = auto_method(ref, cur) if method == "auto" else method
    limit = DEFAULT_THRESHOLDS[chosen] if threshold is None else float(threshold)
    value, detail = statistic(chosen, ref, cur)
    drifted = value < limit if chosen in P_VALUE_METHODS else value >= limit
    return ColumnCheck(name, chosen, value, limit, bool(drifted), detail)


def _validate(method: str, threshold: float | None, drift_share: float) -> None:
    if method not in METHODS:
        raise DriftError(f"unknown drift method {method!r}; expected one of {', '.join(METHODS)}")
    if threshold is not None and not threshold > 0:
        raise DriftError(f"drift threshold must be positive, got {threshold!r}")
    if not 0 <= drift_share <= 1:
        raise DriftError(f"drift_share must be between 0 and 1, got {drift_share!r}")


def check_drift(
    reference: DatasetProfile,
    current: DatasetProfile,
    *,
    columns: Sequence[str] | None = None,
    method: str = "auto",
    threshold: float | None = None,
    drift_share: float = 0.5,
) -> CheckResult:
    """Test every column both profiles share (or those named); columns of different kinds or empty on a
    side are skipped, with the reason."""
    _validate(method, threshold, drift_share)
    names = list(columns) if columns is not None else sorted(set(reference.schema) & set(current.schema))
    checks: list[ColumnCheck] = []
    skipped: dict[str, str] = {}
    for name in names:
        ref, cur = reference.columns.get(name), current.columns.get(name)
        if ref is None or cur is None:
            if name not in reference.schema or name not in current.schema:
                side = "reference" if name not in reference.schema else "current data"
                raise DriftError(f"column {name!r} is not in the {side} ({_name(reference, current, side)})")
            skipped[name] = "not a numeric or categorical column"
        elif ref.kind != cur.kind:
            skipped[name] = f"numeric on one side, categorical on the other ({ref.kind}/{cur.kind})"
        elif not ref.count or not cur.count:
            skipped[name] = "no values on one side"
        else:
            checks.append(check_column(name, ref, cur, method, threshold))
    return CheckResult(
        "drift",
        reference.dataset,
        current.dataset,
        reference.rows,
        current.rows,
        checks,
        drift_share,
        skipped,
    )


def _name(reference: DatasetProfile, current: DatasetProfile, side: str) -> str:
    return (reference if side == "reference" else current).dataset or side

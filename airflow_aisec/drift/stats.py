"""The drift statistics, computed from column profiles rather than raw data.

- Kolmogorov–Smirnov: the largest gap between the two empirical CDFs, evaluated at the union of both
  sketches' quantile points (every value, while a sketch is exact); p-value exact (scipy's ``ks_2samp`` on the
  retained values) when both sides are exact and scipy is installed, else asymptotic (the one-sample
  Kolmogorov distribution at ``n·m/(n+m)``, as scipy's ``asymp`` mode; without scipy the Kolmogorov series
  with Stephens' small-sample correction).
- Wasserstein (order 1): the area between the two CDFs, over the same points; "normed" divides it by the
  reference's population standard deviation (at least 0.001), as Evidently does.
- PSI and Jensen–Shannon on shared bins, as Evidently bins: Sturges' equal-width bins over both sides' range
  for a numeric column with more than 20 values in the reference (``numpy.histogram`` semantics, from the
  sketches' CDFs), else its values, and the union of categories for a categorical column; for PSI an empty
  bin counts as share 0.0001.
- Chi² goodness of fit of the current counts against the reference shares scaled to the current size, and
  the two-proportion z-test for a column with two values.

p-values use scipy when it is installed; otherwise the chi² tail is the regularized upper incomplete gamma
function and the normal tail ``erfc``, computed here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from airflow_aisec.drift.profile import CategoricalProfile, NumericProfile

BIN_VALUES = 20  # a numeric reference with at most this many values is binned by value
MIN_SHARE = 1e-4
GRID = 5000  # quantile points taken from an approximate (estimation-mode) sketch


def _scipy_stats() -> Any:
    try:
        import scipy.stats
    except ImportError:
        return None
    return scipy.stats


def _points(profile: NumericProfile) -> np.ndarray:
    """Every retained value of an exact sketch, or ``GRID`` evenly spaced quantiles of an approximate one."""
    sketch = profile.sketch
    size = profile.count if not sketch.is_estimation_mode() else GRID
    ranks = (np.arange(size) + 0.5) / size  # mid-ranks: the i-th order statistic, free of rounding
    return np.asarray(sketch.get_quantiles(ranks), dtype=float)


def _support(ref: NumericProfile, cur: NumericProfile) -> np.ndarray:
    return np.unique(np.concatenate([_points(ref), _points(cur)]))


def _cdf(profile: NumericProfile, points: np.ndarray, inclusive: bool = True) -> np.ndarray:
    return np.asarray(profile.sketch.get_cdf(points, inclusive)[:-1], dtype=float)


def ks_statistic(ref: NumericProfile, cur: NumericProfile) -> float:
    """The two-sample KS statistic D = sup |F_ref - F_cur|."""
    points = _support(ref, cur)
    return float(np.max(np.abs(_cdf(ref, points) - _cdf(cur, points))))


def ks_test(ref: NumericProfile, cur: NumericProfile) -> tuple[float, float]:
    """(D, two-sided p-value) of the two-sample KS test."""
    d = ks_statistic(ref, cur)
    stats = _scipy_stats()
    exact = not ref.sketch.is_estimation_mode() and not cur.sketch.is_estimation_mode()
    if stats is not None and exact:
        result = stats.ks_2samp(_points(ref), _points(cur))
        return float(result.statistic), float(result.pvalue)
    return d, ks_pvalue(d, ref.count, cur.count)


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of a two-sample KS statistic ``d`` for sample sizes ``n`` and ``m``."""
    en = n * m / (n + m)
    stats = _scipy_stats()
    if stats is not None:
        return float(stats.kstwo.sf(d, round(en)))
    return kolmogorov_sf((math.sqrt(en) + 0.12 + 0.11 / math.sqrt(en)) * d)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) of the Kolmogorov distribution: 2 Σ (-1)^(k-1) exp(-2 k² x²), clipped to [0, 1]."""
    if x <= 0.0:
        return 1.0
    if x < 0.2:  # the alternating series converges slowly here, and the value is 1 to double precision
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-16:
            break
    return min(1.0, max(0.0, 2.0 * total))


def wasserstein(ref: NumericProfile, cur: NumericProfile) -> float:
    """The order-1 Wasserstein distance: ∫ |F_ref(x) - F_cur(x)| dx."""
    points = _support(ref, cur)
    if len(points) < 2:
        return 0.0
    gaps = np.abs(_cdf(ref, points[:-1]) - _cdf(cur, points[:-1]))
    return float(np.sum(gaps * np.diff(points)))


def wasserstein_normed(ref: NumericProfile, cur: NumericProfile) -> float:
    """Wasserstein distance over the reference's standard deviation (at least 0.001)."""
    return wasserstein(ref, cur) / max(ref.std, 0.001)


def numeric_shares(ref: NumericProfile, cur: NumericProfile) -> tuple[Any, Any]:
    """Each side's shares of shared bins: the values themselves when the reference has at most
    ``BIN_VALUES`` of them, else Sturges' equal-width bins over both sides' range (last bin closed)."""
    if ref.small is not None and cur.small is not None and len(ref.small) <= BIN_VALUES:
        keys = sorted(set(ref.small) | set(cur.small))
        ref_counts = np.array([ref.small.get(k, 0) for k in keys], float)
        cur_counts = np.array([cur.small.get(k, 0) for k in keys], float)
        return ref_counts / max(ref.count, 1), cur_counts / max(cur.count, 1)
    lo, hi = min(ref.minimum, cur.minimum), max(ref.maximum, cur.maximum)
    bins = 1
    if hi > lo:
        bins = math.ceil(math.log2(ref.count + cur.count) + 1.0)
    else:
        lo, hi = lo - 0.5, hi + 0.5  # numpy's range for a single value
    edges = np.linspace(lo, hi, bins + 1)
    return _bin_shares(ref, edges), _bin_shares(cur, edges)


def _bin_shares(profile: NumericProfile, edges: np.ndarray) -> np.ndarray:
    if not profile.count:
        return np.zeros(len(edges) - 1)
    below = np.asarray(profile.sketch.get_cdf(edges[1:-1], False)[:-1], dtype=float)
    cumulative = np.concatenate([[0.0], below, [1.0]])
    return np.diff(cumulative)


def category_shares(ref: CategoricalProfile, cur: CategoricalProfile) -> tuple[list[str], Any, Any]:
    """The union of both sides' categories (sorted) and each side's share of its rows in each."""
    keys, ref_counts, cur_counts = category_counts(ref, cur)
    return keys, ref_counts / max(ref.count, 1), cur_counts / max(cur.count, 1)


def category_counts(ref: CategoricalProfile, cur: CategoricalProfile) -> tuple[list[str], Any, Any]:
    """The union of both sides' categories (sorted) and each side's counts of them."""
    ref_items, cur_items = ref.items(), cur.items()
    keys = sorted(set(ref_items) | set(cur_items))
    ref_counts = np.array([ref_items.get(k, 0) for k in keys], float)
    return keys, ref_counts, np.array([cur_items.get(k, 0) for k in keys], float)


def _fill_zeros(shares: Any) -> Any:
    nonzero = shares[shares != 0]
    if not len(nonzero):
        return shares
    smallest = float(nonzero.min())
    return np.where(shares == 0, smallest / 1e6 if smallest <= MIN_SHARE else MIN_SHARE, shares)


def psi(ref_shares: Any, cur_shares: Any) -> float:
    """Population stability index Σ (cur - ref) · ln(cur / ref); an empty bin counts as share 0.0001 (or a
    millionth of the smallest share, when that is smaller)."""
    p, q = _fill_zeros(np.asarray(ref_shares, float)), _fill_zeros(np.asarray(cur_shares, float))
    return float(np.sum((q - p) * np.log(q / p)))


def jensenshannon(ref_shares: Any, cur_shares: Any) -> float:
    """The Jensen–Shannon distance (natural log) of normalized p and q: √(½ KL(p‖m) + ½ KL(q‖m)),
    m = ½ (p + q)."""
    p, q = np.asarray(ref_shares, float), np.asarray(cur_shares, float)
    if not p.sum() or not q.sum():
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    divergence = 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
    return float(math.sqrt(max(divergence, 0.0)))


def _kl(p: Any, m: Any) -> float:
    keep = p > 0
    return float(np.sum(p[keep] * np.log(p[keep] / m[keep])))


def chi2_test(ref_counts: Any, cur_counts: Any) -> tuple[float, float]:
    """Chi² goodness of fit of the current counts against the reference's shares: (statistic, p-value)."""
    observed = np.asarray(cur_counts, float)
    expected = np.asarray(ref_counts, float) * observed.sum() / max(float(np.sum(ref_counts)), 1.0)
    if np.any((expected == 0) & (observed > 0)):
        return math.inf, 0.0  # a category the reference never had
    keep = expected > 0
    statistic = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    dof = int(np.count_nonzero(keep)) - 1
    return statistic, chi2_sf(statistic, dof)


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for X ~ chi²(dof)."""
    if dof <= 0:
        return 1.0
    stats = _scipy_stats()
    if stats is not None:
        return float(stats.chi2.sf(x, dof))
    return gamma_q(dof / 2.0, x / 2.0)


def gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x): a series below a + 1, a Lentz continued
    fraction above."""
    if x <= 0.0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def z_test(ref_counts: Any, cur_counts: Any) -> tuple[float, float]:
    """Two-proportion z-test on the share of the first category: (z, two-sided p-value)."""
    ref_counts, cur_counts = np.asarray(ref_counts, float), np.asarray(cur_counts, float)
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    if not n1 or not n2:
        return 0.0, 1.0
    p1, p2 = ref_counts[0] / n1, cur_counts[0] / n2
    pooled = (ref_counts[0] + cur_counts[0]) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 0.0, 1.0
    z = float((p1 - p2) / spread)
    return z, math.erfc(abs(z) / math.sqrt(2.0))

"""Each drift statistic, computed from profiles, against scipy's exact computation on the same data."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import scipy.stats as ss
from scipy.spatial import distance

from airflow_aisec.drift import profile_batches, stats
from airflow_aisec.drift.profile import CategoricalProfile, NumericProfile

RNG = np.random.default_rng(7)
REF = RNG.normal(0.0, 1.0, 900)
CUR = RNG.normal(0.25, 1.2, 700)


def numeric(values: np.ndarray, batch: int = 100) -> NumericProfile:
    profile = profile_batches(pa.table({"x": values}).to_batches(max_chunksize=batch)).columns["x"]
    assert isinstance(profile, NumericProfile)
    return profile


def categorical(values: list[str]) -> CategoricalProfile:
    profile = profile_batches(pa.table({"c": values}).to_batches(max_chunksize=97)).columns["c"]
    assert isinstance(profile, CategoricalProfile)
    return profile


def test_ks_statistic_and_p_value_equal_scipys_exact_test() -> None:
    d, p = stats.ks_test(numeric(REF), numeric(CUR))
    expected = ss.ks_2samp(REF, CUR)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_ks_asymptotic_p_value_without_scipy_is_close_to_scipys() -> None:
    d = ss.ks_2samp(REF, CUR).statistic
    expected = ss.ks_2samp(REF, CUR, method="asymp").pvalue
    assert stats.kolmogorov_sf((math.sqrt(393.75) + 0.12 + 0.11 / math.sqrt(393.75)) * d) == pytest.approx(
        expected, rel=0.05
    )
    assert stats.ks_pvalue(d, len(REF), len(CUR)) == pytest.approx(expected, rel=1e-6)


def test_wasserstein_equals_scipys_and_is_normed_by_the_reference_std() -> None:
    ref, cur = numeric(REF), numeric(CUR)
    assert stats.wasserstein(ref, cur) == pytest.approx(ss.wasserstein_distance(REF, CUR), rel=1e-9)
    assert stats.wasserstein_normed(ref, cur) == pytest.approx(
        ss.wasserstein_distance(REF, CUR) / np.std(REF), rel=1e-9
    )


def test_shared_bins_are_numpys_sturges_histogram_of_both_sides() -> None:
    ref_shares, cur_shares = stats.numeric_shares(numeric(REF), numeric(CUR))
    edges = np.histogram_bin_edges(np.concatenate([REF, CUR]), bins="sturges")
    assert ref_shares == pytest.approx(np.histogram(REF, edges)[0] / len(REF))
    assert cur_shares == pytest.approx(np.histogram(CUR, edges)[0] / len(CUR))


def test_jensen_shannon_equals_scipys_distance() -> None:
    p, q = stats.numeric_shares(numeric(REF), numeric(CUR))
    assert stats.jensenshannon(p, q) == pytest.approx(distance.jensenshannon(p, q), rel=1e-9)
    with_zero = np.array([0.5, 0.5, 0.0]), np.array([0.2, 0.3, 0.5])
    assert stats.jensenshannon(*with_zero) == pytest.approx(distance.jensenshannon(*with_zero), rel=1e-9)


def test_psi_follows_its_formula_with_empty_bins_at_a_ten_thousandth() -> None:
    p, q = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.4, 0.3, 0.1, 0.2])
    filled = np.array([0.5, 0.3, 0.2, 1e-4])
    assert stats.psi(p, q) == pytest.approx(float(np.sum((q - filled) * np.log(q / filled))))


def test_chi_square_equals_scipys_goodness_of_fit_against_scaled_reference() -> None:
    ref = categorical(list(RNG.choice(["a", "b", "c", "d"], 800)))
    cur = categorical(list(RNG.choice(["a", "b", "c", "d"], 600, p=[0.4, 0.2, 0.2, 0.2])))
    _keys, ref_n, cur_n = stats.category_counts(ref, cur)
    statistic, p = stats.chi2_test(ref_n, cur_n)
    expected = ss.chisquare(cur_n, ref_n * cur_n.sum() / ref_n.sum())
    assert statistic == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("x", "dof"), [(0.5, 1), (3.0, 3), (12.0, 4), (40.0, 10), (150.0, 120)])
def test_chi_square_tail_without_scipy_equals_scipys(x: float, dof: int) -> None:
    assert stats.gamma_q(dof / 2, x / 2) == pytest.approx(ss.chi2.sf(x, dof), rel=1e-9, abs=1e-15)


def test_z_test_equals_the_two_proportion_normal_test() -> None:
    z, p = stats.z_test(np.array([300.0, 500.0]), np.array([350.0, 450.0]))
    pooled = 650 / 1600
    expected_z = (300 / 800 - 350 / 800) / math.sqrt(pooled * (1 - pooled) * (2 / 800))
    assert z == pytest.approx(expected_z) and p == pytest.approx(2 * ss.norm.sf(abs(expected_z)))


def test_without_scipy_the_p_values_stay_close_to_scipys(monkeypatch: pytest.MonkeyPatch) -> None:
    big = RNG.normal(0.1, 1.0, 3000)  # more values than the sketch keeps exactly: the asymptotic p-value
    ref_n, cur_n = np.array([300.0, 250.0, 250.0]), np.array([280.0, 300.0, 220.0])
    with_scipy = stats.ks_test(numeric(REF), numeric(big))[1], stats.chi2_test(ref_n, cur_n)[1]
    monkeypatch.setattr(stats, "_scipy_stats", lambda: None)
    without = stats.ks_test(numeric(REF), numeric(big))[1], stats.chi2_test(ref_n, cur_n)[1]
    assert without[0] == pytest.approx(with_scipy[0], rel=0.1)
    assert without[1] == pytest.approx(with_scipy[1], rel=1e-9)

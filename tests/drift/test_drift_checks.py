"""Method choice (Evidently's defaults), the drifted share, the anomaly rules and the report's escaping."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from airflow_aisec.drift import check_anomalies, check_drift, profile_batches, render_report
from airflow_aisec.drift.check import auto_method
from airflow_aisec.exceptions import DriftError

RNG = np.random.default_rng(3)


def profiles(ref: dict[str, object], cur: dict[str, object]):  # type: ignore[no-untyped-def]
    reference = profile_batches(pa.table(ref).to_batches(max_chunksize=500), dataset="ref")
    current = profile_batches(pa.table(cur).to_batches(max_chunksize=500), dataset="cur", salt=reference.salt)
    return reference, current


@pytest.mark.parametrize(
    ("rows", "values", "expected"),
    [
        (1000, RNG.normal(size=1000), "ks"),
        (1000, RNG.integers(0, 4, 1000), "chisquare"),
        (1000, RNG.integers(0, 2, 1000), "z"),
        (1001, RNG.normal(size=1001), "wasserstein"),
        (1001, RNG.integers(0, 5, 1001), "jensenshannon"),
    ],
)
def test_auto_picks_evidentlys_default_test(rows: int, values: np.ndarray, expected: str) -> None:
    ref, cur = profiles({"x": values}, {"x": values[:500]})
    assert ref.columns["x"].count == rows
    assert auto_method(ref.columns["x"], cur.columns["x"]) == expected


def test_auto_picks_chi_square_or_z_or_jensen_shannon_for_categories() -> None:
    three, two = RNG.choice(["a", "b", "c"], 2000), RNG.choice(["a", "b"], 2000)
    small = profiles({"c": three[:800], "b": two[:800]}, {"c": three, "b": two})
    large = profiles({"c": three}, {"c": three})
    assert auto_method(small[0].columns["c"], small[1].columns["c"]) == "chisquare"
    assert auto_method(small[0].columns["b"], small[1].columns["b"]) == "z"
    assert auto_method(large[0].columns["c"], large[1].columns["c"]) == "jensenshannon"


def test_drift_share_decides_whether_the_check_passes() -> None:
    ref = {"a": RNG.normal(0, 1, 5000), "b": RNG.normal(0, 1, 5000), "c": RNG.normal(0, 1, 5000)}
    cur = {"a": RNG.normal(2, 1, 5000), "b": RNG.normal(0, 1, 5000), "c": RNG.normal(0, 1, 5000)}
    reference, current = profiles(ref, cur)
    lenient = check_drift(reference, current)
    strict = check_drift(reference, current, drift_share=0.3)
    assert lenient.drifted_columns == ["a"] and lenient.passed
    assert strict.drifted_share == pytest.approx(1 / 3) and not strict.passed
    assert [c.method for c in lenient.columns] == ["wasserstein"] * 3


def test_a_named_method_and_threshold_apply_to_every_column() -> None:
    reference, current = profiles({"a": RNG.normal(0, 1, 3000)}, {"a": RNG.normal(0.3, 1, 3000)})
    (check,) = check_drift(reference, current, method="psi", threshold=0.5).columns
    assert check.method == "psi" and check.threshold == 0.5 and not check.drifted
    with pytest.raises(DriftError, match="unknown drift method 'magic'"):
        check_drift(reference, current, method="magic")
    with pytest.raises(DriftError, match="column 'zz' is not in the reference"):
        check_drift(reference, current, columns=["zz"])


def test_anomalies_find_null_spikes_out_of_range_values_unseen_categories_and_schema_changes() -> None:
    ref = {"x": RNG.uniform(0, 10, 2000), "c": RNG.choice(["a", "b"], 2000), "gone": np.ones(2000)}
    x = RNG.uniform(0, 10, 2000)
    x[:100] = 50.0
    cur_x = pa.array(x, mask=np.arange(2000) >= 1500)
    cur = {"x": cur_x, "c": np.where(np.arange(2000) < 200, "new", "a"), "extra": np.ones(2000)}
    result = check_anomalies(*profiles(ref, cur))
    found = {(c.column, c.method) for c in result.columns if c.drifted}
    assert found == {
        ("x", "null_rate"),
        ("x", "out_of_range"),
        ("c", "unseen_categories"),
        ("gone", "schema"),
        ("extra", "schema"),
    }
    unseen = next(c for c in result.columns if c.method == "unseen_categories")
    assert unseen.statistic == pytest.approx(0.1) and unseen.detail["unseen_categories"] == 1
    assert "new" not in result.to_json() and not result.passed


def test_inputs_like_the_reference_have_no_anomaly() -> None:
    ref = {"x": RNG.uniform(0, 10, 2000), "c": RNG.choice(["a", "b"], 2000)}
    cur = {"x": RNG.uniform(1, 9, 1000), "c": RNG.choice(["a", "b"], 1000)}
    result = check_anomalies(*profiles(ref, cur))
    assert result.passed and result.drifted_columns == []


def test_the_report_escapes_every_name_and_category_and_hides_pii_categories() -> None:
    evil = "<script>alert(1)</script>"
    ref = pa.table(
        {evil: RNG.choice(["<b>x</b>", "y"], 3000), "email": RNG.choice(["a@x.io", "b@x.io"], 3000)}
    )
    cur = pa.table({evil: RNG.choice(["<b>x</b>", "y"], 3000, p=[0.9, 0.1]), "email": ["a@x.io"] * 3000})
    reference = profile_batches(ref.to_batches(), dataset="<i>ref</i>", pii=["email"])
    current = profile_batches(cur.to_batches(), dataset="cur", pii=["email"], salt=reference.salt)
    result = check_drift(reference, current)
    page = render_report(result, reference, current)
    assert result.drifted_columns == ["<script>alert(1)</script>", "email"]
    assert "<script>" not in page and "<b>x</b>" not in page and "<i>ref</i>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "x.io" not in page and "category 1" in page and page.count("<svg") == 2

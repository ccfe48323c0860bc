"""Profiles: merging equals profiling everything at once (within the sketch's error), saving and loading,
bounded memory over many batches, and PII categories kept only as digests."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from airflow_aisec.drift import DatasetProfile, load_profile, profile_batches, save_profile
from airflow_aisec.drift.profile import KLL_K, CategoricalProfile, NumericProfile
from airflow_aisec.exceptions import DriftError

RNG = np.random.default_rng(11)


def table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    values = rng.normal(5.0, 2.0, rows)
    values[rng.random(rows) < 0.05] = np.nan
    return pa.table({"x": values, "c": rng.choice(["red", "green", "blue"], rows), "n": np.arange(rows)})


def test_merged_partial_profiles_equal_the_whole_data_profile_within_the_sketch_error() -> None:
    parts = [table(40_000, seed) for seed in range(5)]
    whole = profile_batches(pa.concat_tables(parts).to_batches())
    merged = profile_batches(parts[0].to_batches(), salt=whole.salt)
    for part in parts[1:]:
        merged.merge(profile_batches(part.to_batches(), salt=whole.salt))
    a, b = whole.columns["x"], merged.columns["x"]
    assert isinstance(a, NumericProfile) and isinstance(b, NumericProfile)
    assert (a.count, a.nulls, a.minimum, a.maximum) == (b.count, b.nulls, b.minimum, b.maximum)
    assert a.mean == pytest.approx(b.mean) and a.std == pytest.approx(b.std)
    error = a.sketch.normalized_rank_error(False)
    points = np.linspace(0, 10, 21)
    assert np.allclose(a.sketch.get_cdf(points), b.sketch.get_cdf(points), atol=2 * error)
    values = pa.concat_tables(parts)["x"].to_numpy(zero_copy_only=False)
    exact = np.mean(values[~np.isnan(values)] <= 5.0)
    assert abs(b.sketch.get_cdf([5.0])[0] - exact) <= error
    assert whole.columns["c"].to_dict() == merged.columns["c"].to_dict() and whole.rows == merged.rows


def test_a_saved_profile_loads_back_to_the_same_profile(tmp_path: Path) -> None:
    made = profile_batches(table(5_000, 1).to_batches(), dataset="orders", pii=["c"])
    written = save_profile(made, tmp_path / "ref.json")
    loaded = load_profile(written.removeprefix("file://"))
    assert loaded.to_dict() == made.to_dict() and loaded.pii == {"c"}


def test_a_file_that_is_not_a_profile_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"format": "something"}))
    with pytest.raises(DriftError, match=r"other\.json: not a drift profile"):
        load_profile(bad)


def test_pii_categories_are_kept_as_digests_and_no_min_or_max(tmp_path: Path) -> None:
    emails = pa.table({"email": ["ann@example.com", "bob@example.com"] * 50, "age": [31, 42] * 50})
    made = profile_batches(emails.to_batches(), pii=["email", "age"])
    text = json.dumps(made.to_dict())
    assert "example.com" not in text
    assert "min" not in made.to_dict()["columns"]["age"] and "small" not in made.to_dict()["columns"]["age"]
    again = profile_batches(emails.to_batches(), pii=["email"], salt=made.salt)
    assert made.columns["email"].to_dict() == again.columns["email"].to_dict()


def test_categories_past_the_cap_go_to_a_frequent_items_sketch() -> None:
    many = pa.table({"c": [f"v{i}" for i in range(12_000)] + ["top"] * 5_000})
    profile = profile_batches(many.to_batches(max_chunksize=1000)).columns["c"]
    assert isinstance(profile, CategoricalProfile) and not profile.exact
    assert profile.items()["top"] >= 5_000 and profile.count == 17_000


def test_memory_stays_bounded_over_many_batches() -> None:
    def peak(batches: int) -> int:
        profile = DatasetProfile()
        tracemalloc.start()
        for seed in range(batches):
            profile.update(table(10_000, seed).to_batches()[0])
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    small, large = peak(5), peak(60)
    assert large < small * 1.5, (small, large)
    assert profile_batches([table(10, 0).to_batches()[0]]).columns["x"].sketch.k == KLL_K

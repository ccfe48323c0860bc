"""Per-group counts: one pass over any batching gives the same counts, files merge, nulls and odd columns."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from bias_data import random_scores

from airflow_aisec.exceptions import FairnessError
from airflow_aisec.fairness import AttributeCounts, BiasCounter, GroupCounts


def _table(seed: int = 3, rows: int = 1000) -> pa.Table:
    data = random_scores(seed, rows, ["a", "b", "c"], [0.2, 0.5, 0.8])
    return pa.table({"g": data["group"], "y": data["label"], "p": data["prediction"]})


def _counts(batches: list[pa.RecordBatch]) -> AttributeCounts:
    return BiasCounter("p", ["g"], label="y").add_all(batches).counts["g"]


def test_streaming_over_many_batches_counts_as_one_pass() -> None:
    table = _table()
    whole = _counts(table.combine_chunks().to_batches())
    assert len(table.to_batches(max_chunksize=7)) > 100
    assert _counts(table.to_batches(max_chunksize=7)) == whole
    assert whole.rows == 1000 and sum(g.tp + g.fp + g.tn + g.fn for g in whole.groups.values()) == 1000


def test_counts_of_files_merge_into_the_counts_of_the_whole() -> None:
    table = _table()
    parts = [_counts(table.slice(start, 250).to_batches()) for start in range(0, 1000, 250)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged == _counts(table.to_batches())


def test_counts_travel_as_json_and_merge_after() -> None:
    counts = _counts(_table().to_batches())
    again = AttributeCounts.from_dict(json.loads(json.dumps(counts.as_dict())))
    assert again == counts
    assert again.merge(again).groups["a"].n == 2 * counts.groups["a"].n


def test_counts_of_another_attribute_do_not_merge() -> None:
    with pytest.raises(FairnessError, match="attribute h"):
        AttributeCounts("g", True).merge(AttributeCounts("h", True))


def test_confusion_counts_of_a_small_example() -> None:
    batch = pa.record_batch({"g": ["a", "a", "a", "b", "b"], "y": [1, 1, 0, 0, 1], "p": [1, 0, 1, 0, 1]})
    groups = _counts([batch]).groups
    assert groups["a"] == GroupCounts(n=3, selected=2, tp=1, fp=1, tn=0, fn=1)
    assert groups["b"] == GroupCounts(n=2, selected=1, tp=1, fp=0, tn=1, fn=0)
    assert groups["b"].false_positive_rate == 0 and GroupCounts(n=1).true_positive_rate is None


def test_rows_with_a_null_are_skipped_and_counted() -> None:
    batch = pa.record_batch({"g": ["a", None, "a", "b"], "y": [1, 1, None, 0], "p": [1, 1, 1, None]})
    counts = _counts([batch])
    assert counts.skipped == 3 and counts.rows == 1 and set(counts.groups) == {"a"}


def test_without_labels_only_selections_are_counted() -> None:
    batch = pa.record_batch({"g": [1, 1, 2], "p": [True, False, True]})
    counts = BiasCounter("p", ["g"], positive_label=True).add_all([batch]).counts["g"]
    assert not counts.labelled
    assert counts.groups == {"1": GroupCounts(n=2, selected=1), "2": GroupCounts(n=1, selected=1)}


@pytest.mark.parametrize(
    ("values", "positive"),
    [(["yes", "no", "yes"], "yes"), ([True, False, True], 1), ([1.0, 0.0, 1.0], 1), ([1, 0, 1], "1")],
)
def test_the_positive_label_is_read_as_the_columns_type(values: list[object], positive: object) -> None:
    batch = pa.record_batch({"g": ["a", "a", "a"], "p": values})
    counts = BiasCounter("p", ["g"], positive_label=positive).add_all([batch]).counts["g"]
    assert counts.groups["a"].selected == 2


def test_dictionary_encoded_columns_are_counted_by_value() -> None:
    batch = pa.record_batch(
        {
            "g": pa.array(["a", "b", "a"]).dictionary_encode(),
            "p": pa.array(["1", "0", "1"]).dictionary_encode(),
        }
    )
    counts = BiasCounter("p", ["g"], positive_label="1").add_all([batch]).counts["g"]
    assert counts.groups == {"a": GroupCounts(n=2, selected=2), "b": GroupCounts(n=1, selected=0)}


def test_an_attribute_with_too_many_values_is_refused_without_naming_one() -> None:
    batch = pa.record_batch({"name": [f"person-{i}" for i in range(50)], "p": [1] * 50})
    with pytest.raises(FairnessError, match="more than 10 distinct values") as e:
        BiasCounter("p", ["name"], max_groups=10, where="dataset x").add(batch)
    assert "person-" not in str(e.value)


def test_missing_columns_and_unusable_columns_are_named() -> None:
    batch = pa.record_batch({"g": [[1], [2]], "p": ["a", "b"]})
    with pytest.raises(FairnessError, match="no column y"):
        BiasCounter("p", ["g"], label="y").add(batch)
    with pytest.raises(FairnessError, match=r"protected attribute g \(list<item: int64>\)"):
        BiasCounter("p", ["g"], positive_label="a").add(batch)
    with pytest.raises(FairnessError, match="cannot hold the positive label"):
        BiasCounter("p", ["g"], positive_label="maybe").add(pa.record_batch({"g": ["a"], "p": [1]}))

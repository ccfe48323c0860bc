"""Per-group confusion counts of predictions, streamed from Arrow record batches.

One pass over the batches, memory bounded by the number of groups (capped by ``max_groups``), never by the
rows. Counts of different files or tasks merge by addition, so a dataset fanned out per file gives the same
result as one pass over all of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_aisec.exceptions import FairnessError

DEFAULT_MAX_GROUPS = 1000
"""More distinct values than this and a column is not a protected attribute (a name, an id): refused."""


@dataclasses.dataclass
class GroupCounts:
    """The rows of one group: how many, how many selected (predicted positive), and the confusion matrix
    against the labels (zero without labels)."""

    n: int = 0
    selected: int = 0
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, other: GroupCounts) -> None:
        """Add ``other``'s counts to these."""
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def selection_rate(self) -> float | None:
        """Share of the group's rows predicted positive."""
        return self.selected / self.n if self.n else None

    @property
    def true_positive_rate(self) -> float | None:
        """TP / (TP + FN); None when the group has no positive label."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def false_positive_rate(self) -> float | None:
        """FP / (FP + TN); None when the group has no negative label."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None

    def as_dict(self) -> dict[str, int]:
        """The counts as plain JSON."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class AttributeCounts:
    """The counts of every group of one protected attribute; ``skipped``: rows with a null prediction, label
    or attribute, left out of every group."""

    attribute: str
    labelled: bool
    groups: dict[str, GroupCounts] = dataclasses.field(default_factory=dict)
    skipped: int = 0

    def merge(self, other: AttributeCounts) -> AttributeCounts:
        """The counts of both (the same attribute, both with or both without labels), as a new object."""
        if (other.attribute, other.labelled) != (self.attribute, self.labelled):
            raise FairnessError(
                f"cannot merge the counts of attribute {other.attribute} into those of {self.attribute}"
                " (or counts with labels into counts without)"
            )
        merged = AttributeCounts(self.attribute, self.labelled, skipped=self.skipped + other.skipped)
        for source in (self.groups, other.groups):
            for group, counts in source.items():
                merged.groups.setdefault(group, GroupCounts()).add(counts)
        return merged

    @property
    def rows(self) -> int:
        """Rows counted in a group (the skipped ones not included)."""
        return sum(g.n for g in self.groups.values())

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON that ``from_dict`` reads back (group values included: keep it out of logs and XCom when
        the attribute is personal data)."""
        return {
            "attribute": self.attribute,
            "labelled": self.labelled,
            "skipped": self.skipped,
            "groups": {group: counts.as_dict() for group, counts in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttributeCounts:
        """The counts ``as_dict`` wrote."""
        groups = {str(g): GroupCounts(**counts) for g, counts in data["groups"].items()}
        return cls(str(data["attribute"]), bool(data["labelled"]), groups, int(data["skipped"]))


class BiasCounter:
    """Counts predictions per group of each protected attribute, one record batch at a time.

    A prediction is *selected* when it equals ``positive_label``; so is a label. Group values are compared
    as text (``true``, ``42``, ``F``), so a column read as integers from one file and as text from another
    still gives one group per value.
    """

    def __init__(
        self,
        prediction: str,
        attributes: Sequence[str],
        *,
        label: str | None = None,
        positive_label: object = 1,
        max_groups: int = DEFAULT_MAX_GROUPS,
        where: str = "data",
    ) -> None:
        if not attributes:
            raise FairnessError(f"{where}: no protected attribute to compare groups of")
        self.prediction = prediction
        self.label = label
        self.positive_label = positive_label
        self.max_groups = max_groups
        self.where = where
        self.rows = 0
        self.counts = {name: AttributeCounts(name, label is not None) for name in attributes}

    @property
    def columns(self) -> list[str]:
        """The columns a batch must have: the prediction, the label if any, and the attributes."""
        names = [self.prediction, *([self.label] if self.label else []), *self.counts]
        return list(dict.fromkeys(names))

    def add_all(self, batches: Iterable[pa.RecordBatch]) -> BiasCounter:
        """Count every batch; returns this counter."""
        for batch in batches:
            self.add(batch)
        return self

    def add(self, batch: pa.RecordBatch) -> None:
        """Count one batch."""
        missing = [name for name in self.columns if name not in batch.schema.names]
        if missing:
            raise FairnessError(f"{self.where}: no column {', '.join(missing)} in the data")
        self.rows += batch.num_rows
        selected = self._positive(batch, self.prediction)
        actual = self._positive(batch, self.label) if self.label else None
        for name, counts in self.counts.items():
            self._count(counts, self._groups(batch, name), selected, actual)
            if len(counts.groups) > self.max_groups:
                raise FairnessError(
                    f"{self.where}: protected attribute {name} has more than {self.max_groups} distinct "
                    "values; a protected attribute names a few groups (gender, age band), not individuals"
                )

    def _positive(self, batch: pa.RecordBatch, column: str) -> pa.Array:
        values = batch.column(column)
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        try:
            positive = pa.scalar(self.positive_label).cast(values.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise FairnessError(
                f"{self.where}: column {column} ({values.type}) cannot hold the positive label "
                f"{self.positive_label!r}"
            ) from None
        return pc.equal(values, positive)

    def _groups(self, batch: pa.RecordBatch, column: str) -> pa.Array:
        values = batch.column(column)
        try:
            return pc.cast(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise FairnessError(
                f"{self.where}: protected attribute {column} ({values.type}) is not a column of group values"
            ) from None

    @staticmethod
    def _count(
        counts: AttributeCounts, groups: pa.Array, selected: pa.Array, actual: pa.Array | None
    ) -> None:
        valid = pc.and_(groups.is_valid(), selected.is_valid())
        if actual is not None:
            valid = pc.and_(valid, actual.is_valid())
        kept = pc.sum(pc.cast(valid, pa.int64())).as_py() or 0
        counts.skipped += len(groups) - kept
        if not kept:
            return
        columns = {"group": groups, "selected": pc.cast(selected, pa.int64())}
        if actual is not None:
            columns["tp"] = pc.cast(pc.and_(selected, actual), pa.int64())
            columns["fp"] = pc.cast(pc.and_(selected, pc.invert(actual)), pa.int64())
            columns["fn"] = pc.cast(pc.and_(pc.invert(selected), actual), pa.int64())
        table = pa.table(columns).filter(valid)
        sums = [(name, "sum") for name in columns if name != "group"]
        grouped = table.group_by("group").aggregate([*sums, ("group", "count")]).to_pylist()
        for row in grouped:
            n, chosen = row["group_count"], row["selected_sum"]
            tp, fp, fn = (row.get(f"{name}_sum") or 0 for name in ("tp", "fp", "fn"))
            tn = n - tp - fp - fn if actual is not None else 0
            counts.groups.setdefault(row["group"], GroupCounts()).add(
                GroupCounts(n=n, selected=chosen, tp=tp, fp=fp, tn=tn, fn=fn)
            )

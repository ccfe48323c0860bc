"""What a step read and wrote, column by column: recorded in the audit log and emitted as OpenLineage.

Plain data, no Airflow import: operators fill a ``StepLineage`` while they work, the audit helper turns it
into entry fields, and the OpenLineage adapter turns it into datasets with column-lineage facets.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections.abc import Collection, Mapping
from typing import Any, Final

# Masking strategies after which a column no longer holds personal data; any other (pseudonymize, encrypt,
# partial, generalize) leaves data that can still be linked to the person, which is still personal data.
ANONYMIZING: Final = frozenset({"redact", "replace", "drop"})

# The namespace of the symlink naming a dataset by its catalog name (OpenLineage ``symlinks`` facet).
CATALOG_NAMESPACE: Final = "aisec-catalog"


def openlineage_name(uri: str) -> tuple[str, str]:
    """A location named as OpenLineage's dataset naming spec says: ``s3://bucket`` + key, or ``file`` + the
    absolute path; no trailing slash, so a folder has one name however it was written."""
    if uri.startswith(("s3://", "s3a://")):
        bucket, _, key = uri.split("://", 1)[1].partition("/")
        return f"s3://{bucket}", key.strip("/")
    path = uri.removeprefix("file://") if uri.startswith("file://") else uri.removeprefix("file:")
    # A relative path (a catalog's lake given as "lake") names the same folder as its absolute form would.
    return "file", posixpath.normpath(posixpath.join(os.getcwd(), path)) if path else path


@dataclasses.dataclass(frozen=True)
class ColumnClass:
    """The personal data one column holds: its entity type, and whether and how it is masked.

    Names and strategies only, never a value: this is what lineage tools are shown.
    """

    column: str
    entity: str | None
    masked: bool = False
    strategy: str | None = None

    @property
    def personal(self) -> bool:
        """Whether the column still holds personal data (unmasked, or masked in a linkable way)."""
        return not self.masked or self.strategy not in ANONYMIZING

    def tags(self) -> list[tuple[str, str]]:
        """``(key, value)`` tags of the column: ``pii.entity``, ``pii.masked``, ``pii.strategy``."""
        tags = [("pii.entity", self.entity)] if self.entity else []
        tags.append(("pii.masked", "true" if self.masked else "false"))
        if self.strategy:
            tags.append(("pii.strategy", self.strategy))
        return tags


def classify(
    entities: Mapping[str, str | None],
    masked: Mapping[str, str] | None = None,
    present: Collection[str] | None = None,
) -> tuple[ColumnClass, ...]:
    """The classification of a dataset's columns: ``entities`` (column → entity type), ``masked`` (column
    → strategy) and, when given, the columns ``present`` in it (a dropped column is not)."""
    masked = masked or {}
    columns = list(entities) + [c for c in masked if c not in entities]
    return tuple(
        ColumnClass(c, entities.get(c), c in masked, masked.get(c))
        for c in columns
        if present is None or c in present or _top_level(c) in present
    )


def _top_level(path: str) -> str:
    # ``payload.ip`` and ``items[].email`` are fields of the columns ``payload`` and ``items``.
    return path.split(".", 1)[0].split("[", 1)[0]


@dataclasses.dataclass(frozen=True)
class DatasetRef:
    """A dataset (or one file of it) as an input or output of a step.

    ``classification`` says which columns hold personal data (None: not known, nothing is claimed).
    """

    uri: str
    dataset: str | None = None
    sha256: str | None = None
    columns: tuple[str, ...] = ()
    classification: tuple[ColumnClass, ...] | None = None
    location: str | None = None  # the dataset's folder or prefix, when ``uri`` is one file of it

    @property
    def holds_pii(self) -> bool | None:
        """Whether any column still holds personal data (None when the classification is not known)."""
        if self.classification is None:
            return None
        return any(c.personal for c in self.classification)

    def as_entry(self) -> dict[str, Any]:
        """The form stored in audit entries (no column values, only names and digests)."""
        fields = {"uri": self.uri, "dataset": self.dataset, "sha256": self.sha256, "location": self.location}
        return {k: v for k, v in fields.items() if v}

    @property
    def namespace_and_name(self) -> tuple[str, str]:
        """The OpenLineage name of the dataset (its location, else the file): ``openlineage_name``."""
        return openlineage_name(self.location or self.uri)


@dataclasses.dataclass(frozen=True)
class ColumnFlow:
    """Output column ``column`` of ``output`` derives from ``source_column`` of ``source``."""

    output: str
    column: str
    source: str
    source_column: str
    masking: bool = False
    description: str = ""


@dataclasses.dataclass
class StepLineage:
    """Everything one step read and wrote, filled in as it runs."""

    inputs: list[DatasetRef] = dataclasses.field(default_factory=list)
    outputs: list[DatasetRef] = dataclasses.field(default_factory=list)
    columns: list[ColumnFlow] = dataclasses.field(default_factory=list)

    def entry_fields(self) -> dict[str, Any]:
        """``inputs``/``outputs``/``columns`` for an audit entry; masked columns are flagged."""
        fields: dict[str, Any] = {}
        if self.inputs:
            fields["inputs"] = [ref.as_entry() for ref in self.inputs]
        if self.outputs:
            fields["outputs"] = [ref.as_entry() for ref in self.outputs]
        masked = sorted({flow.column for flow in self.columns if flow.masking})
        if masked:
            fields["columns"] = masked
        return fields

    def classify(
        self,
        inputs: tuple[ColumnClass, ...] | None = None,
        outputs: tuple[ColumnClass, ...] | None = None,
    ) -> None:
        """Set the classification of every input and of every output (None leaves it as it is)."""
        if inputs is not None:
            self.inputs = [dataclasses.replace(ref, classification=inputs) for ref in self.inputs]
        if outputs is not None:
            self.outputs = [dataclasses.replace(ref, classification=outputs) for ref in self.outputs]

    def locate(
        self,
        inputs: tuple[str | None, str] | None = None,
        outputs: tuple[str | None, str] | None = None,
    ) -> None:
        """Name every input (every output) as ``(dataset, location)``: the catalog dataset, or None to keep
        the name it has, and the folder or prefix its files are in."""
        for side, given in (("inputs", inputs), ("outputs", outputs)):
            if given is None:
                continue
            name, where = given
            refs = getattr(self, side)
            setattr(
                self, side, [dataclasses.replace(r, dataset=name or r.dataset, location=where) for r in refs]
            )

    def identity(self, source: DatasetRef, output: DatasetRef, masked: dict[str, str]) -> None:
        """Record that ``output`` keeps every column of ``source``, those in ``masked`` transformed."""
        for column in output.columns or source.columns:
            how = masked.get(column)
            self.columns.append(
                ColumnFlow(
                    output.uri, column, source.uri, column, masking=how is not None, description=how or ""
                )
            )

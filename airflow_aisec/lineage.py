"""What a step read and wrote, column by column: recorded in the audit log and emitted as OpenLineage.

Plain data, no Airflow import: operators fill a ``StepLineage`` while they work, the audit helper turns it
into entry fields, and the OpenLineage adapter turns it into datasets with column-lineage facets.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class DatasetRef:
    """A dataset (or one file of it) as an input or output of a step."""

    uri: str
    dataset: str | None = None
    sha256: str | None = None
    columns: tuple[str, ...] = ()

    def as_entry(self) -> dict[str, Any]:
        """The form stored in audit entries (no column values, only names and digests)."""
        return {
            k: v for k, v in {"uri": self.uri, "dataset": self.dataset, "sha256": self.sha256}.items() if v
        }

    @property
    def namespace_and_name(self) -> tuple[str, str]:
        """OpenLineage naming: ``s3://bucket`` + key, or ``file`` + absolute path."""
        if self.uri.startswith("s3://"):
            bucket, _, key = self.uri[len("s3://") :].partition("/")
            return f"s3://{bucket}", key
        return "file", self.uri


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

    def identity(self, source: DatasetRef, output: DatasetRef, masked: dict[str, str]) -> None:
        """Record that ``output`` keeps every column of ``source``, those in ``masked`` transformed."""
        for column in output.columns or source.columns:
            how = masked.get(column)
            self.columns.append(
                ColumnFlow(
                    output.uri, column, source.uri, column, masking=how is not None, description=how or ""
                )
            )

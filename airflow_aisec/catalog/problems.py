"""Problems found in a catalog, each located by file, field path and line."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog

FieldPath = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One error or warning; ``str()`` gives ``file: dotted.path: message (line N)``."""

    source: str
    path: FieldPath
    message: str
    severity: Literal["error", "warning"] = "error"
    line: int | None = None

    def __str__(self) -> str:
        where = f"{'.'.join(self.path)}: " if self.path else ""
        line = f" (line {self.line})" if self.line else ""
        return f"{self.source}: {where}{self.message}{line}"

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form for ``--json`` output."""
        return {
            "file": self.source,
            "path": ".".join(self.path),
            "message": self.message,
            "severity": self.severity,
            "line": self.line,
        }


@dataclasses.dataclass
class Report:
    """Everything validation found; ``catalog`` is None when it could not be built at all."""

    source: str
    catalog: Catalog | None = None
    errors: list[Problem] = dataclasses.field(default_factory=list)
    warnings: list[Problem] = dataclasses.field(default_factory=list)
    lines: dict[FieldPath, int] = dataclasses.field(default_factory=dict)
    dataset_names: set[str] = dataclasses.field(default_factory=set)
    # Fields of a dataset that failed validation and were left out of ``catalog`` to check the rest.
    dropped: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the catalog was built and has no errors (warnings allowed)."""
        return self.catalog is not None and not self.errors

    def error(self, path: FieldPath, message: str) -> None:
        """Record an error at ``path``."""
        self.errors.append(Problem(self.source, path, message, "error", self._line(path)))

    def warning(self, path: FieldPath, message: str) -> None:
        """Record a warning at ``path``."""
        self.warnings.append(Problem(self.source, path, message, "warning", self._line(path)))

    def _line(self, path: FieldPath) -> int | None:
        # Fall back to the nearest enclosing field that was written in the file.
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

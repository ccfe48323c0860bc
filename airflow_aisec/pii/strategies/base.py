"""What a masking strategy is: a name, every option it takes with its default, and a function on Arrow
columns; and what masking a column gives back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from airflow_aisec.crypto.keyring import KeyVersion
from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.row_context import RowNeedles
from airflow_aisec.pii.types import SpanFinder

# An Arrow column: ``pa.Array`` or ``pa.ChunkedArray`` (pyarrow has no type stubs, so this is ``Any``).
Values = Any


class Drop:
    """The marker a strategy returns when its column must be removed from the output."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = Drop()


@dataclass(frozen=True)
class MaskRule:
    """A strategy and its options, like the catalog's ``MaskSpec`` (which cannot name ``free_text``)."""

    strategy: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Masked:
    """A masked column (or ``DROP``) and how many values were masked per entity type."""

    values: Values
    counts: dict[str, int]


@dataclass(frozen=True)
class Target:
    """The column a strategy masks: its name and entity, and the key or span finder the strategy may need.

    ``context`` (one entry per row, see ``row_context``) serves free text only.
    """

    column: str
    entity: str | None = None
    key: KeyVersion | None = None
    find_spans: SpanFinder | None = None
    context: RowNeedles | None = None


# The values of a column, the options set for it, the column → the masked values, ``DROP``, or a ``Masked``
# when the strategy counts what it masked itself.
MaskFunction = Callable[[Values, Mapping[str, Any], Target], Any]


@dataclass(frozen=True, eq=False)
class Strategy:
    """A masking strategy: its name, every option it accepts with its default, and how it masks a column.

    A default of ``None`` means the option has none: ``replace`` without ``value`` writes the entity tag,
    ``generalize`` needs one of ``to``, ``bucket`` and ``prefix``. ``mask`` gets the options as they were
    set, so it can tell a default from a choice, and reads each with ``option``.
    """

    name: str
    defaults: Mapping[str, Any]
    mask: MaskFunction

    def option(self, options: Mapping[str, Any], name: str) -> Any:
        """The option ``name`` as set in ``options``, else its default."""
        return options.get(name, self.defaults[name])

    def check(self, options: Mapping[str, Any], column: str) -> None:
        """Refuse an option this strategy does not know: a misspelt one must fail loudly, not mask nothing."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            allowed = ", ".join(sorted(self.defaults)) or "none"
            raise PIIError(
                f"column {column!r}: unknown option(s) {', '.join(unknown)} for strategy {self.name} "
                f"(allowed: {allowed})"
            )

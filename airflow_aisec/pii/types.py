"""Types shared by detection and masking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# The catalog's word for a column of running text, defined once there.
from airflow_aisec.catalog.models import FREE_TEXT

__all__ = ["FREE_TEXT", "Span", "SpanFinder"]


@dataclass(frozen=True)
class Span:
    """An entity found in a text: ``text[start:end]`` is a ``entity`` with ``score`` in [0, 1]."""

    entity: str
    start: int
    end: int
    score: float


# Finds the entities of each text, in order; masking of free text takes one of these.
SpanFinder = Callable[[Sequence[str]], list[list[Span]]]

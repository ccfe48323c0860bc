"""The lineage page: datasets and the recorded operations between them, for the whole lake or around one.

The graph is the audit log's lineage summary (``airflow_aisec.audit.lineage_index``), read through the log's
search terms; this adds what the page marks: which flows masked or encrypted the data, the newest entries
and DAG runs behind each edge, and a neighbourhood of a given depth around one dataset.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_aisec.audit.lineage_index import COUNT_CAP, LineageSummary
from airflow_aisec.review.layout import Layout, layered_layout

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog, Entry

MASKING_ACTIONS = frozenset({"pii.mask"})
ENCRYPTING_ACTIONS = frozenset({"dataset.encrypt", "key.rotate"})
MAX_DEPTH = 10


@dataclass(frozen=True)
class Run:
    """A DAG run behind a lineage edge."""

    dag_id: str
    run_id: str


@dataclass
class LineageEdge:
    """Every recorded operation from one dataset to another."""

    source: str
    target: str
    actions: list[str]
    entries: list[int]
    """The newest entries (at most five), oldest first."""
    runs: list[Run] = field(default_factory=list)
    count: int = 0
    """How many entries recorded the flow, up to ``COUNT_CAP``."""

    @property
    def more(self) -> bool:
        """True when more entries than ``COUNT_CAP`` may have recorded the flow."""
        return self.count >= COUNT_CAP

    @property
    def kind(self) -> str:
        """``masked``, ``encrypted`` or ``plain``: what the flow did to the data (masking wins)."""
        if MASKING_ACTIONS.intersection(self.actions):
            return "masked"
        if ENCRYPTING_ACTIONS.intersection(self.actions):
            return "encrypted"
        return "plain"


@dataclass
class LineageView:
    """The datasets shown, their edges and their layout."""

    datasets: list[str]
    edges: list[LineageEdge]
    layout: Layout
    focus: str | None = None
    depth: int | None = None
    masked: set[str] = field(default_factory=set)
    encrypted: set[str] = field(default_factory=set)
    operations: dict[str, int] = field(default_factory=dict)


@dataclass
class LakeLineage:
    """The whole lake's lineage, summarized (``airflow_aisec.audit.lineage_index``)."""

    summary: LineageSummary

    @property
    def datasets(self) -> set[str]:
        """Every dataset an entry names."""
        return self.summary.nodes

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> LakeLineage:
        """Read every entry once."""
        return cls(LineageSummary.from_entries(entries))

    @classmethod
    def from_log(cls, log: AuditLog) -> LakeLineage:
        """Through the log's search terms (a few index reads per dataset and flow); by reading every entry
        when its terms do not hold lineage yet (a log written before, not opened for writing since)."""
        summary = LineageSummary.from_index(log.store)
        return cls(summary) if summary is not None else cls.from_entries(log.entries())

    def edges(self) -> list[LineageEdge]:
        """Every edge of the graph, with its actions, newest entries and the newest DAG runs behind it."""
        return [
            LineageEdge(
                source,
                target,
                sorted(flow.counts),
                sorted(flow.newest),
                [Run(*run) for run in flow.runs],
                count=flow.count,
            )
            for (source, target), flow in sorted(self.summary.flows.items())
        ]

    def view(self, focus: str | None = None, depth: int = 2) -> LineageView:
        """The whole lake, or the datasets within ``depth`` edges of ``focus`` (either direction)."""
        edges = self.edges()
        names = set(self.summary.nodes)
        if focus is not None:
            names = _around(focus, edges, max(1, min(depth, MAX_DEPTH)))
            edges = [e for e in edges if e.source in names and e.target in names]
        datasets = sorted(names)
        operations = self.summary.operations
        return LineageView(
            datasets=datasets,
            edges=edges,
            layout=layered_layout(datasets, [(e.source, e.target) for e in edges]),
            focus=focus,
            depth=depth if focus is not None else None,
            masked={e.target for e in edges if e.kind == "masked"},
            encrypted={e.target for e in edges if e.kind == "encrypted"}
            | {n for n in datasets if ENCRYPTING_ACTIONS.intersection(operations.get(n, {}))},
            operations={n: min(sum(operations.get(n, {}).values()), COUNT_CAP) for n in datasets},
        )


def _around(focus: str, edges: list[LineageEdge], depth: int) -> set[str]:
    near: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        near[edge.source].add(edge.target)
        near[edge.target].add(edge.source)
    seen, frontier = {focus}, {focus}
    for _ in range(depth):
        frontier = {n for node in frontier for n in near[node]} - seen
        seen |= frontier
    return seen

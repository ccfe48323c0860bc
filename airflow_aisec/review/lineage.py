"""The lineage page: datasets and the recorded operations between them, for the whole lake or around one.

The graph is the audit log's own (``airflow_aisec.audit.lineage.LineageGraph``); this adds what the page
marks: which flows masked or encrypted the data, the entries and DAG runs behind each edge, and a
neighbourhood of a given depth around one dataset.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit.lineage import LineageGraph
from airflow_aisec.review.layout import Layout, layered_layout

if TYPE_CHECKING:
    from airflow_aisec.audit import Entry

MASKING_ACTIONS = frozenset({"pii.mask"})
ENCRYPTING_ACTIONS = frozenset({"dataset.encrypt", "key.rotate"})
MAX_DEPTH = 10
_RUNS_PER_EDGE = 5


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
    runs: list[Run] = field(default_factory=list)

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
    """The whole graph with, per entry, the DAG run that recorded it."""

    graph: LineageGraph
    runs: dict[int, Run]

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> LakeLineage:
        """Read every entry once."""
        graph, runs = LineageGraph(), {}
        for entry in entries:
            graph.add(entry)
            actor: Any = entry.data.get("actor") or {}
            if isinstance(actor, dict) and actor.get("dag_id") and actor.get("run_id"):
                runs[entry.index] = Run(str(actor["dag_id"]), str(actor["run_id"]))
        return cls(graph, runs)

    def edges(self) -> list[LineageEdge]:
        """Every edge of the graph, with its actions, entries and the newest DAG runs behind it."""
        found = []
        for (source, target), labels in sorted(self.graph.edges.items()):
            pairs = [_label(label) for label in labels]
            indices = sorted({i for _, i in pairs if i is not None})
            runs = list(dict.fromkeys(self.runs[i] for i in reversed(indices) if i in self.runs))
            actions = sorted({a for a, _ in pairs})
            found.append(LineageEdge(source, target, actions, indices, runs[:_RUNS_PER_EDGE]))
        return found

    def view(self, focus: str | None = None, depth: int = 2) -> LineageView:
        """The whole lake, or the datasets within ``depth`` edges of ``focus`` (either direction)."""
        edges = self.edges()
        names = set(self.graph.nodes)
        if focus is not None:
            names = _around(focus, edges, max(1, min(depth, MAX_DEPTH)))
            edges = [e for e in edges if e.source in names and e.target in names]
        datasets = sorted(names)
        operations: dict[str, int] = defaultdict(int)
        for name in datasets:
            operations[name] = len(self.graph.operations.get(name, []))
        return LineageView(
            datasets=datasets,
            edges=edges,
            layout=layered_layout(datasets, [(e.source, e.target) for e in edges]),
            focus=focus,
            depth=depth if focus is not None else None,
            masked={e.target for e in edges if e.kind == "masked"},
            encrypted={e.target for e in edges if e.kind == "encrypted"}
            | {n for n in datasets if _encrypted_in_place(self.graph, n)},
            operations=dict(operations),
        )


def _label(label: str) -> tuple[str, int | None]:
    """``("pii.mask", 12)`` from the graph's edge label ``"pii.mask #12"``."""
    action, _, index = label.rpartition(" #")
    return (action, int(index)) if action and index.isdigit() else (label, None)


def _encrypted_in_place(graph: LineageGraph, name: str) -> bool:
    return any(_label(label)[0] in ENCRYPTING_ACTIONS for label in graph.operations.get(name, []))


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

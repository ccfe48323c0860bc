"""Lineage from the audit log: which datasets fed which, through which recorded operations."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_aisec import __version__
from airflow_aisec.audit.log import Entry

PRODUCER = f"urn:airflow-aisec:{__version__}"
RUN_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
_NAMESPACE = uuid.UUID("5b0c3c48-6c2c-4d57-9d57-8f4a5c1e2a11")


def _ref_name(ref: Any) -> str | None:
    if isinstance(ref, dict):
        return str(ref.get("dataset") or ref.get("uri") or "") or None
    return str(ref) if ref else None


@dataclass
class LineageGraph:
    """Datasets as nodes; an edge per (input, output) pair of an entry, labelled with its action."""

    nodes: set[str] = field(default_factory=set)
    edges: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    operations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> LineageGraph:
        """Build the graph from every entry's ``dataset``, ``inputs`` and ``outputs``."""
        graph = cls()
        for entry in entries:
            graph.add(entry)
        return graph

    def add(self, entry: Entry) -> None:
        """Add one entry's datasets and edges."""
        data = entry.data
        label = f"{entry.action} #{entry.index}"
        # One edge per dataset pair, however many files of each the entry lists.
        inputs = list(dict.fromkeys(n for n in map(_ref_name, data.get("inputs") or []) if n))
        outputs = list(dict.fromkeys(n for n in map(_ref_name, data.get("outputs") or []) if n))
        own = _ref_name(data.get("dataset"))
        self.nodes.update(inputs + outputs + ([own] if own else []))
        for source in inputs:
            for target in outputs:
                if source != target:
                    self.edges[(source, target)].append(label)
        for name in {own, *(o for o in outputs if o in inputs)} - {None}:
            self.operations[str(name)].append(label)

    def _walk(self, start: str, forward: bool) -> list[tuple[str, str, list[str]]]:
        seen, order, frontier = {start}, [], [start]
        while frontier:
            node = frontier.pop(0)
            for (source, target), labels in sorted(self.edges.items()):
                near, far = (source, target) if forward else (target, source)
                if near == node:
                    order.append((source, target, labels))
                    if far not in seen:
                        seen.add(far)
                        frontier.append(far)
        return order

    def upstream(self, dataset: str) -> list[tuple[str, str, list[str]]]:
        """Edges leading into ``dataset``, transitively."""
        return self._walk(dataset, forward=False)

    def downstream(self, dataset: str) -> list[tuple[str, str, list[str]]]:
        """Edges leading out of ``dataset``, transitively."""
        return self._walk(dataset, forward=True)

    def render(self, dataset: str, fmt: str) -> str:
        """The lineage of ``dataset`` as ``text``, Graphviz ``dot`` or ``mermaid``."""
        edges = self.upstream(dataset) + self.downstream(dataset)
        if fmt == "dot":
            lines = ["digraph lineage {", "  rankdir=LR;", f'  "{dataset}" [style=bold];']
            lines += [f'  "{s}" -> "{t}" [label="{", ".join(ls)}"];' for s, t, ls in edges]
            return "\n".join([*lines, "}"])
        if fmt == "mermaid":
            ids = {name: f"d{i}" for i, name in enumerate(sorted(self.nodes))}
            lines = ["flowchart LR"] + [
                f'  {ids[n]}["{n}"]' for n in sorted(self.nodes) if _touches(n, edges, dataset)
            ]
            lines += [f'  {ids[s]} -->|"{", ".join(ls)}"| {ids[t]}' for s, t, ls in edges]
            return "\n".join(lines)
        return self._text(dataset)

    def _text(self, dataset: str) -> str:
        lines = [f"dataset {dataset}"]
        ops = self.operations.get(dataset, [])
        lines.append(f"  operations: {', '.join(ops) if ops else 'none'}")
        lines.append("  upstream:")
        lines += [f"    {s} -> {t}  ({', '.join(ls)})" for s, t, ls in self.upstream(dataset)] or ["    none"]
        lines.append("  downstream:")
        lines += [f"    {s} -> {t}  ({', '.join(ls)})" for s, t, ls in self.downstream(dataset)] or [
            "    none"
        ]
        return "\n".join(lines)


def _touches(node: str, edges: list[tuple[str, str, list[str]]], dataset: str) -> bool:
    return node == dataset or any(node in (s, t) for s, t, _ in edges)


def _ol_dataset(ref: Any) -> dict[str, Any]:
    name = _ref_name(ref) or "unknown"
    uri = str(ref.get("uri", "")) if isinstance(ref, dict) else ""
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        namespace, path = f"s3://{bucket}", key
    elif uri:
        namespace, path = "file", uri
    else:
        namespace, path = "aisec", name
    facets: dict[str, Any] = {}
    if isinstance(ref, dict) and ref.get("sha256"):
        facets["aisec_digest"] = {"_producer": PRODUCER, "_schemaURL": PRODUCER, "sha256": ref["sha256"]}
    return {"namespace": namespace, "name": path, "facets": facets}


def to_openlineage(entry: Entry) -> dict[str, Any]:
    """One entry as an OpenLineage ``RunEvent`` (COMPLETE, or FAIL for failed outcomes)."""
    data = entry.data
    actor = data.get("actor") or {}
    job = f"{actor['dag_id']}.{actor['task_id']}" if actor.get("kind") == "airflow" else data.get("action")
    return {
        "eventType": "FAIL" if data.get("outcome") == "failure" else "COMPLETE",
        "eventTime": data.get("time"),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA,
        "run": {
            "runId": str(uuid.uuid5(_NAMESPACE, f"{entry.index}:{entry.leaf_hash.hex()}")),
            "facets": {
                "aisec_audit": {
                    "_producer": PRODUCER,
                    "_schemaURL": PRODUCER,
                    "index": entry.index,
                    "action": data.get("action"),
                    "leafHash": entry.leaf_hash.hex(),
                }
            },
        },
        "job": {"namespace": "airflow-aisec", "name": str(job)},
        "inputs": [_ol_dataset(ref) for ref in data.get("inputs") or []],
        "outputs": [_ol_dataset(ref) for ref in data.get("outputs") or []],
    }

"""Lineage from the audit log: which datasets fed which, through which recorded operations."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_aisec import __version__
from airflow_aisec.audit.flows import entry_flows
from airflow_aisec.audit.log import Entry
from airflow_aisec.lineage import CATALOG_NAMESPACE, openlineage_name

PRODUCER = f"urn:airflow-aisec:{__version__}"
RUN_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
SYMLINKS_SCHEMA = (
    "https://openlineage.io/spec/facets/1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet"
)
_NAMESPACE = uuid.UUID("5b0c3c48-6c2c-4d57-9d57-8f4a5c1e2a11")


@dataclass
class LineageGraph:
    """Datasets as nodes; an edge per (input, output) pair of an entry, labelled with its action."""

    nodes: set[str] = field(default_factory=set)
    edges: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    operations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    locations: dict[str, tuple[str, str]] = field(default_factory=dict)

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
        found = entry_flows(data)
        self.nodes.update(found.nodes)
        for ref in [*(data.get("inputs") or []), *(data.get("outputs") or [])]:
            if isinstance(ref, dict) and ref.get("dataset") and ref.get("location"):
                self.locations.setdefault(str(ref["dataset"]), openlineage_name(str(ref["location"])))
        for pair in found.flows:
            self.edges[pair].append(label)
        for name in found.operated:
            self.operations[name].append(label)

    def resolve(self, dataset: str) -> str | None:
        """The node ``dataset`` names: a node itself, or a location (path, ``file://`` or ``s3://`` URI,
        OpenLineage ``namespace/name``) of one; None when the graph has no such dataset."""
        if dataset in self.nodes:
            return dataset
        wanted = openlineage_name(dataset)
        for node in sorted(self.nodes):
            if openlineage_name(node) == wanted or self.locations.get(node) == wanted:
                return node
        return None

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


def _facet(schema: str = PRODUCER, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema, **fields}


def dataset_name(ref: Any, locations: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The OpenLineage ``(namespace, name)`` of an entry's input or output: its dataset's location (folder or
    prefix: recorded, or the catalog's in ``locations``, dataset → URI), else its file, else (nothing but a
    name recorded) the catalog name in ``aisec-catalog``."""
    if isinstance(ref, dict):
        known = (locations or {}).get(str(ref.get("dataset") or ""))
        uri = str(ref.get("uri") or "")
        if known and uri and not _within(uri, known):
            known = None  # a file elsewhere (a copy under the dataset's name) keeps its own name
        where = str(ref.get("location") or known or uri)
        if where.startswith(("s3://", "s3a://", "file:", "/")):
            return openlineage_name(where)
        name = str(ref.get("dataset") or where or "unknown")
    else:
        name = str(ref or "unknown")
    return CATALOG_NAMESPACE, name


def _within(uri: str, root: str) -> bool:
    (namespace, name), (root_ns, root_name) = openlineage_name(uri), openlineage_name(root)
    return namespace == root_ns and (name == root_name or name.startswith(root_name.rstrip("/") + "/"))


def openlineage_datasets(
    refs: Iterable[Any], locations: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """An entry's inputs (or outputs) as OpenLineage datasets: one per dataset however many of its files the
    entry lists (their digests in the ``aisec_files`` facet), its catalog name as a ``symlinks`` facet."""
    grouped: dict[tuple[str, str], list[Any]] = {}
    for ref in refs:
        grouped.setdefault(dataset_name(ref, locations), []).append(ref)
    found = []
    for (namespace, name), group in grouped.items():
        facets: dict[str, Any] = {}
        catalog = next((str(r["dataset"]) for r in group if isinstance(r, dict) and r.get("dataset")), None)
        if catalog and namespace != CATALOG_NAMESPACE:
            link = {"namespace": CATALOG_NAMESPACE, "name": catalog, "type": "DATASET"}
            facets["symlinks"] = _facet(SYMLINKS_SCHEMA, identifiers=[link])
        files = [
            {"uri": str(r["uri"]), "sha256": str(r["sha256"])}
            for r in group
            if isinstance(r, dict) and r.get("uri") and r.get("sha256")
        ]
        if files:
            facets["aisec_files"] = _facet(files=files)
        found.append({"namespace": namespace, "name": name, "facets": facets})
    return found


def to_openlineage(entry: Entry, locations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One entry as an OpenLineage ``RunEvent`` (COMPLETE, or FAIL for failed outcomes); ``locations``
    (catalog dataset → URI) names the datasets of entries that recorded only their files."""
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
        "inputs": openlineage_datasets(data.get("inputs") or [], locations),
        "outputs": openlineage_datasets(data.get("outputs") or [], locations),
    }

"""What an entry says about lineage: the datasets it names, the flows it records and what it operated on.

One reading of an entry's ``dataset``, ``inputs`` and ``outputs``, shared by the lineage graph
(``LineageGraph``) and the ``lineage`` search terms that let the lineage page read a large log through its
index (``audit.lineage_index``). A term's value is compact JSON, so no dataset name can be mistaken for
another: ``["flow", source, target, action]`` (an edge), ``["op", dataset, action]`` (an operation on a
dataset) and ``["node", name]`` (a dataset named only by its location or file: the names in ``dataset``
fields are already ``dataset`` terms).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LINEAGE = "lineage"
"""The search-term kind of lineage terms."""


def ref_name(ref: Any) -> str | None:
    """A node of the graph: the catalog dataset, else the location of the files, else the file."""
    if isinstance(ref, dict):
        return str(ref.get("dataset") or ref.get("location") or ref.get("uri") or "") or None
    return str(ref) if ref else None


@dataclass(frozen=True)
class EntryFlows:
    """The datasets an entry names, its (input, output) flows and the datasets it operated on."""

    nodes: tuple[str, ...]
    flows: tuple[tuple[str, str], ...]
    operated: tuple[str, ...]


def entry_flows(data: Mapping[str, Any]) -> EntryFlows:
    """The lineage of one entry: one flow per distinct (input, output) pair however many files of each it
    lists; it operated on what it wrote, and on its own dataset when it read or wrote that one or lists
    nothing else (an encryption of a masked copy under a dataset's rules does not touch the dataset)."""
    inputs = list(dict.fromkeys(n for n in map(ref_name, _list(data.get("inputs"))) if n))
    outputs = list(dict.fromkeys(n for n in map(ref_name, _list(data.get("outputs"))) if n))
    own = ref_name(data.get("dataset"))
    nodes = tuple(dict.fromkeys(inputs + outputs + ([own] if own else [])))
    flows = tuple((s, t) for s in inputs for t in outputs if s != t)
    mine = {own} if own and (own in inputs + outputs or not inputs + outputs) else set()
    return EntryFlows(nodes, flows, tuple(sorted(mine | set(outputs))))


def lineage_terms(data: Mapping[str, Any], dataset_terms: set[str]) -> set[tuple[str, str]]:
    """The ``lineage`` search terms of an entry; ``dataset_terms`` are the names it is already found by."""
    action = data.get("action")
    if not isinstance(action, str):
        return set()
    found = entry_flows(data)
    values: list[list[str]] = [["flow", s, t, action] for s, t in found.flows]
    values += [["op", name, action] for name in found.operated]
    values += [["node", name] for name in found.nodes if name not in dataset_terms]
    return {(LINEAGE, term_value(value)) for value in values}


def term_value(parts: list[str]) -> str:
    """A lineage term's value: ``parts`` as compact JSON."""
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []

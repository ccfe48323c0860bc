"""The lineage of a whole lake, summarized, from every entry or through the ``lineage`` search terms.

The summary is what a lineage page shows: every dataset, every flow between two datasets with its actions,
how many entries recorded it (up to ``COUNT_CAP``), its newest entries and the newest DAG runs among its
newest ``RUN_SCAN`` entries, and the operations recorded on each dataset. ``from_index`` computes the same
summary as ``from_entries`` with a few index seeks per dataset and flow, so it costs the same on a million
entries as on a hundred; ``from_entries`` reads every entry.

What ``from_index`` relies on: the datasets, actions and counts come from the terms table; each flow's
newest entries and runs are read from the entries' own bytes, and a flow that no entry's bytes carry is not
shown. An altered terms table can therefore hide a dataset or a flow (or miscount one), never invent one
from an entry; ``aisec audit verify --index`` proves that every entry's terms match its bytes.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit.flows import LINEAGE, entry_flows

if TYPE_CHECKING:
    from airflow_aisec.audit.derived import StoredEntry
    from airflow_aisec.audit.log import Entry
    from airflow_aisec.audit.store import Store

COUNT_CAP = 100
"""Entries are counted up to this many per flow, action and dataset (more shows as ``100+``): counting reads
the terms one by one, and a flow recorded by a million entries would cost as much as reading them."""
RUN_SCAN = 200
"""A flow's DAG runs are looked for among its newest this many entries."""
NEWEST = 5
"""Newest entries and runs kept per flow."""
_CHUNK = 20

Run = tuple[str, str]
"""A DAG run: (dag id, run id)."""


@dataclass
class FlowSummary:
    """The entries that recorded a flow from one dataset to another."""

    counts: dict[str, int]
    """Entries per action, each counted up to ``COUNT_CAP``."""
    newest: list[int]
    """The newest entries' indices, newest first (at most ``NEWEST``)."""
    runs: list[Run] = field(default_factory=list)
    """The distinct DAG runs among the newest ``RUN_SCAN`` entries, newest first (at most ``NEWEST``)."""

    @property
    def count(self) -> int:
        """Entries recorded, up to ``COUNT_CAP``."""
        return min(sum(self.counts.values()), COUNT_CAP)


@dataclass
class LineageSummary:
    """Datasets, flows between them and the operations recorded on each."""

    nodes: set[str] = field(default_factory=set)
    flows: dict[tuple[str, str], FlowSummary] = field(default_factory=dict)
    operations: dict[str, dict[str, int]] = field(default_factory=dict)
    """Dataset → action → entries, each counted up to ``COUNT_CAP``."""

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> LineageSummary:
        """Read every entry once (oldest first)."""
        nodes: set[str] = set()
        counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        recent: dict[tuple[str, str], deque[tuple[int, Run | None]]] = {}
        operations: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for entry in entries:
            action = entry.data.get("action")
            if not isinstance(action, str):
                continue
            found = entry_flows(entry.data)
            nodes.update(found.nodes)
            for pair in found.flows:
                counts[pair][action] += 1
                recent.setdefault(pair, deque(maxlen=RUN_SCAN)).append((entry.index, _run(entry.data)))
            for name in found.operated:
                operations[name][action] += 1
        flows = {}
        for pair, seen in recent.items():
            newest = [index for index, _ in reversed(seen)]
            runs = list(dict.fromkeys(run for _, run in reversed(seen) if run is not None))
            flows[pair] = FlowSummary(_capped(counts[pair]), newest[:NEWEST], runs[:NEWEST])
        return cls(nodes, flows, {name: _capped(by) for name, by in operations.items()})

    @classmethod
    def from_index(cls, store: Store) -> LineageSummary | None:
        """The same summary through the search terms; None when the log's terms do not hold lineage for
        every entry yet (a log written before, not opened for writing since: read every entry instead)."""
        if not store.indexes(LINEAGE):
            return None
        summary = cls(nodes=set(store.values("dataset")))
        ops: list[tuple[str, str, tuple[str, str]]] = []
        flows: list[tuple[tuple[str, str], str, tuple[str, str]]] = []
        for value in store.values(LINEAGE):
            parts = _parts(value)
            if len(parts) == 2 and parts[0] == "node":
                summary.nodes.add(parts[1])
            elif len(parts) == 3 and parts[0] == "op":
                ops.append((parts[1], parts[2], (LINEAGE, value)))
            elif len(parts) == 4 and parts[0] == "flow":
                flows.append(((parts[1], parts[2]), parts[3], (LINEAGE, value)))
        for (name, action, _), (count, _) in zip(
            ops, store.newest_by_term([t for _, _, t in ops], 0, COUNT_CAP), strict=True
        ):
            summary.operations.setdefault(name, {})[action] = count
            summary.nodes.add(name)
        of_pair: dict[tuple[str, str], dict[str, tuple[int, tuple[str, str], list[StoredEntry]]]] = {}
        for (pair, action, term), (count, newest) in zip(
            flows, store.newest_by_term([t for _, _, t in flows], NEWEST, COUNT_CAP), strict=True
        ):
            of_pair.setdefault(pair, {})[action] = (count, term, newest)
        for pair, by_action in of_pair.items():
            shown, runs = _walk(store, pair, {a: (term, first) for a, (_, term, first) in by_action.items()})
            if shown:
                counts = {action: count for action, (count, _, _) in by_action.items()}
                summary.flows[pair] = FlowSummary(counts, shown, runs)
                summary.nodes.update(pair)
        return summary


def _walk(
    store: Store, pair: tuple[str, str], terms: dict[str, tuple[tuple[str, str], list[StoredEntry]]]
) -> tuple[list[int], list[Run]]:
    """The newest entries whose own bytes record the flow ``pair`` under one of the actions of ``terms``
    (action → its lineage term and its newest entries, already read), and the distinct runs among the newest
    ``RUN_SCAN`` of them; stops as soon as neither can change."""
    newest: list[int] = []
    runs: list[Run] = []
    checked, last = 0, None
    # One term at a time (each read in index order off the terms' key), merged newest first.
    merged = heapq.merge(*(_newest_first(store, *known) for known in terms.values()), key=lambda e: -e.index)
    for entry in itertools.islice(merged, 4 * RUN_SCAN):
        if entry.index == last:
            continue
        last = entry.index
        data = _data(entry.body)
        if data is None or data.get("action") not in terms or pair not in entry_flows(data).flows:
            continue  # the terms table claims more than the entry says: not shown
        checked += 1
        if len(newest) < NEWEST:
            newest.append(entry.index)
        run = _run(data)
        if run is not None and run not in runs and len(runs) < NEWEST:
            runs.append(run)
        if checked >= RUN_SCAN or (len(newest) == NEWEST and len(runs) == NEWEST):
            break
    return newest, runs


def _newest_first(store: Store, term: tuple[str, str], first: list[StoredEntry]) -> Iterator[StoredEntry]:
    """The entries carrying ``term`` by the terms table, newest first: ``first`` (the newest ``NEWEST``),
    then on, read a few at a time."""
    yield from first
    found = first
    while len(found) == (NEWEST if found is first else _CHUNK):
        found = store.search([(term,)], 0, found[-1].index, _CHUNK)
        yield from found


def _run(data: dict[str, Any]) -> Run | None:
    actor = data.get("actor")
    if isinstance(actor, dict) and actor.get("dag_id") and actor.get("run_id"):
        return str(actor["dag_id"]), str(actor["run_id"])
    return None


def _capped(counts: dict[str, int]) -> dict[str, int]:
    return {action: min(n, COUNT_CAP) for action, n in counts.items()}


def _parts(value: str) -> list[str]:
    try:
        parts = json.loads(value)
    except ValueError:
        return []
    return parts if isinstance(parts, list) and all(isinstance(p, str) for p in parts) else []


def _data(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

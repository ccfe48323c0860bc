"""A layered left-to-right layout of a directed graph, for the lineage page's SVG.

Datasets flow left to right: each node goes in the column of its longest path from a source (edges that
close a cycle are laid out as if reversed), and the nodes of a column are ordered by the mean position of
their neighbours in the columns before and after (a few barycentre sweeps), which keeps most edges short
and uncrossed. Every box has the same size and every column is one box wide, so no two boxes overlap and
the picture grows by whole rows and columns: a lake of any size scrolls instead of shrinking its text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NODE_WIDTH = 200
NODE_HEIGHT = 34
COLUMN_GAP = 90
ROW_GAP = 14
MARGIN = 16
SWEEPS = 4


@dataclass(frozen=True)
class PlacedNode:
    """A node's box: top-left corner, size and column."""

    name: str
    x: int
    y: int
    width: int
    height: int
    column: int


@dataclass(frozen=True)
class PlacedEdge:
    """An edge as an SVG path from the right side of its source to the left side of its target."""

    source: str
    target: str
    path: str


@dataclass(frozen=True)
class Layout:
    """Every node placed, every edge routed, and the size of the picture."""

    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    width: int
    height: int

    def node(self, name: str) -> PlacedNode:
        """The box of ``name``."""
        return next(n for n in self.nodes if n.name == name)


def layered_layout(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> Layout:
    """Place ``nodes`` in columns by ``edges`` (pairs of node names; self-loops are ignored)."""
    names = sorted(set(nodes))
    pairs = sorted({(s, t) for s, t in edges if s != t and s in names and t in names})
    forward = _acyclic(names, pairs)
    columns = _columns(names, forward)
    order = _ordered(columns, forward)
    placed = {
        name: PlacedNode(
            name,
            MARGIN + column * (NODE_WIDTH + COLUMN_GAP),
            MARGIN + row * (NODE_HEIGHT + ROW_GAP),
            NODE_WIDTH,
            NODE_HEIGHT,
            column,
        )
        for column, members in enumerate(order)
        for row, name in enumerate(members)
    }
    routed = [PlacedEdge(s, t, _path(placed[s], placed[t])) for s, t in pairs]
    rows = max((len(members) for members in order), default=0)
    width = 2 * MARGIN + max(len(order), 1) * NODE_WIDTH + max(len(order) - 1, 0) * COLUMN_GAP
    height = 2 * MARGIN + max(rows, 1) * NODE_HEIGHT + max(rows - 1, 0) * ROW_GAP
    return Layout([placed[n] for n in names], routed, width, height)


def _acyclic(names: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The edges with those closing a cycle (back edges of a depth-first search) reversed."""
    out: dict[str, list[str]] = defaultdict(list)
    for s, t in pairs:
        out[s].append(t)
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    back: set[tuple[str, str]] = set()
    for root in names:
        if root in state:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(out[child])))
    return [(t, s) if (s, t) in back else (s, t) for s, t in pairs]


def _columns(names: Sequence[str], forward: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Each node's column: the length of its longest path from a node without inputs."""
    incoming: dict[str, list[str]] = defaultdict(list)
    outgoing: dict[str, list[str]] = defaultdict(list)
    for s, t in forward:
        incoming[t].append(s)
        outgoing[s].append(t)
    remaining = {n: len(incoming[n]) for n in names}
    column = dict.fromkeys(names, 0)
    ready = [n for n in names if remaining[n] == 0]
    while ready:
        node = ready.pop()
        for target in outgoing[node]:
            column[target] = max(column[target], column[node] + 1)
            remaining[target] -= 1
            if remaining[target] == 0:
                ready.append(target)
    return column


def _ordered(columns: dict[str, int], forward: Sequence[tuple[str, str]]) -> list[list[str]]:
    """The nodes of each column, top to bottom, after barycentre sweeps left-to-right and back."""
    count = max(columns.values(), default=-1) + 1
    order = [sorted(n for n, c in columns.items() if c == i) for i in range(count)]
    neighbours: dict[str, list[str]] = defaultdict(list)
    for s, t in forward:
        neighbours[s].append(t)
        neighbours[t].append(s)
    for sweep in range(SWEEPS):
        indices = range(1, count) if sweep % 2 == 0 else range(count - 2, -1, -1)
        for i in indices:
            position = {n: row for members in order for row, n in enumerate(members)}
            side = i - 1 if sweep % 2 == 0 else i + 1
            order[i] = _by_barycentre(order[i], neighbours, position, columns, side)
    return order


def _by_barycentre(
    members: list[str],
    neighbours: dict[str, list[str]],
    position: dict[str, int],
    columns: dict[str, int],
    side: int,
) -> list[str]:
    def key(name: str) -> tuple[float, str]:
        near = [position[n] for n in neighbours[name] if columns[n] == side]
        return (sum(near) / len(near) if near else float(position[name]), name)

    return sorted(members, key=key)


def _path(source: PlacedNode, target: PlacedNode) -> str:
    """A cubic curve from the source's right side to the target's left side (backwards edges loop round)."""
    x1, y1 = source.x + source.width, source.y + source.height // 2
    x2, y2 = target.x, target.y + target.height // 2
    bend = max(COLUMN_GAP // 2, abs(x2 - x1) // 3)
    if x2 <= x1:  # an edge closing a cycle, or within a column: leave right, come back from the left
        bend = COLUMN_GAP
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"

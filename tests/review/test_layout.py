"""The lineage layout stays readable: no two boxes overlap, columns are one box wide, edges go rightwards."""

from __future__ import annotations

import itertools
import random

import pytest

from airflow_aisec.review.layout import COLUMN_GAP, NODE_HEIGHT, NODE_WIDTH, ROW_GAP, layered_layout


def _lake(datasets: int, seed: int = 7) -> tuple[list[str], list[tuple[str, str]]]:
    """A lake of ``datasets`` in chains of copies (raw -> clean -> masked -> ...) with some joins."""
    rng = random.Random(seed)
    names = [f"dataset_{i:03d}" for i in range(datasets)]
    edges = [(names[i], names[i + 1]) for i in range(datasets - 1) if i % 5 != 4]
    edges += [(rng.choice(names), rng.choice(names)) for _ in range(datasets // 2)]
    return names, edges


def _overlap(a: object, b: object) -> bool:
    ax, ay, bx, by = a.x, a.y, b.x, b.y  # type: ignore[attr-defined]
    return ax < bx + NODE_WIDTH and bx < ax + NODE_WIDTH and ay < by + NODE_HEIGHT and by < ay + NODE_HEIGHT


@pytest.mark.parametrize("datasets", [1, 7, 100])
def test_no_two_boxes_overlap(datasets: int) -> None:
    names, edges = _lake(datasets)
    layout = layered_layout(names, edges)
    assert sorted(n.name for n in layout.nodes) == names
    for a, b in itertools.combinations(layout.nodes, 2):
        assert not _overlap(a, b), (a, b)
    for node in layout.nodes:
        assert node.x + node.width <= layout.width and node.y + node.height <= layout.height


def test_a_hundred_datasets_keep_full_size_boxes_in_one_box_wide_columns() -> None:
    names, edges = _lake(100)
    layout = layered_layout(names, edges)
    assert {n.width for n in layout.nodes} == {NODE_WIDTH} and {n.height for n in layout.nodes} == {
        NODE_HEIGHT
    }
    columns = {n.column for n in layout.nodes}
    for column in columns:
        xs = {n.x for n in layout.nodes if n.column == column}
        assert len(xs) == 1  # one box wide: the picture scrolls, the text never shrinks
    assert layout.width == 32 + len(columns) * NODE_WIDTH + (len(columns) - 1) * COLUMN_GAP
    tallest = max(sum(1 for n in layout.nodes if n.column == c) for c in columns)
    assert layout.height == 32 + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP


def test_flows_go_left_to_right_and_cycles_do_not_hang() -> None:
    layout = layered_layout(
        ["raw", "clean", "masked"], [("raw", "clean"), ("clean", "masked"), ("masked", "raw")]
    )
    assert len({n.column for n in layout.nodes}) == 3 and len(layout.edges) == 3
    rightwards = [e for e in layout.edges if layout.node(e.source).x < layout.node(e.target).x]
    assert len(rightwards) == 2  # the one edge closing the cycle loops back


def test_a_join_sits_right_of_both_inputs_and_self_loops_are_dropped() -> None:
    layout = layered_layout(["a", "b", "c"], [("a", "c"), ("b", "c"), ("c", "c")])
    assert layout.node("c").column == 1 and {layout.node("a").column, layout.node("b").column} == {0}
    assert [(e.source, e.target) for e in layout.edges] == [("a", "c"), ("b", "c")]
    assert all(e.path.startswith("M") for e in layout.edges)

"""The reference graph: which datasets hold a subject's rows, and in which order to visit them.

A dataset with an ``identity`` column for an identity type holds the subject directly. A dataset that
``references`` another holds the subject's rows through the referenced values, so it is visited after the
dataset it points to (dependency order) and its rows are matched against the values found there.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog


class ReferenceCycleError(ValueError):
    """Datasets reference each other in a loop, so there is no dependency order."""

    def __init__(self, datasets: list[str]) -> None:
        self.datasets = datasets
        super().__init__(f"reference cycle between datasets: {' -> '.join(datasets)}")


@dataclasses.dataclass(frozen=True)
class Link:
    """``column`` of this dataset holds values of ``dataset.target_column``."""

    column: str
    dataset: str
    target_column: str

    def __str__(self) -> str:
        return f"{self.column} -> {self.dataset}.{self.target_column}"


@dataclasses.dataclass(frozen=True)
class Step:
    """How a subject's rows are found in one dataset: by its identity column and/or through links."""

    dataset: str
    identity_column: str | None
    links: tuple[Link, ...]


class ReferenceGraph:
    """Datasets and the references between them, in dependency order (referenced datasets first)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.links: dict[str, list[Link]] = defaultdict(list)
        self.children: dict[str, list[str]] = defaultdict(list)
        for name, dataset in catalog.datasets.items():
            for column, (target, target_column) in dataset.reference_targets().items():
                if target in catalog.datasets and target_column in catalog.datasets[target].columns:
                    self.links[name].append(Link(column, target, target_column))
                    if target != name:
                        self.children[target].append(name)
        self.order = self._topological_order()

    def _topological_order(self) -> list[str]:
        parents = {
            name: {ln.dataset for ln in self.links[name] if ln.dataset != name}
            for name in self.catalog.datasets
        }
        order: list[str] = []
        ready = sorted(name for name, deps in parents.items() if not deps)
        while ready:
            name = ready.pop(0)
            order.append(name)
            for child in sorted(self.children[name]):
                parents[child].discard(name)
                if not parents[child] and child not in order and child not in ready:
                    ready.append(child)
        if len(order) != len(parents):
            raise ReferenceCycleError(sorted(set(parents) - set(order)))
        return order

    def plan(self, identity_type: str) -> list[Step]:
        """The datasets holding subjects found by ``identity_type``, in dependency order."""
        reached: set[str] = set()
        steps: list[Step] = []
        for name in self.order:
            identity_column = self.catalog.datasets[name].identity.get(identity_type)
            links = tuple(ln for ln in self.links[name] if ln.dataset in reached and ln.dataset != name)
            if identity_column is None and not links:
                continue
            reached.add(name)
            steps.append(Step(name, identity_column, links))
        return steps

    def reachable_datasets(self) -> set[str]:
        """Every dataset reachable from at least one identity type."""
        return {step.dataset for identity in self.catalog.subjects.identities for step in self.plan(identity)}

"""Purposes: the Fides data uses plus the catalog's own, their hierarchy, and the catalog's checks of them.

A purpose allows itself and every purpose below it: a dataset whose ``purposes`` say ``essential`` may be read
for ``essential.service.payment_processing``, and for a catalog purpose whose ``parent`` is below
``essential``. Nothing allows a broader purpose than the one named.

A catalog written before purposes were declared (dataset purposes such as ``billing`` and no top-level
``purposes:``) stays valid: each name it uses is a purpose of its own, with no parent, and validation warns
that it is not declared. Once a catalog declares ``purposes:``, an unknown purpose anywhere is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Literal

from airflow_aisec.catalog.fides import data_uses

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog
    from airflow_aisec.catalog.problems import Report

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
Origin = Literal["fides", "catalog", "undeclared"]


@dataclasses.dataclass(frozen=True)
class Purpose:
    """One purpose: a Fides data use, a purpose the catalog declares, or a name a dataset uses undeclared."""

    key: str
    origin: Origin
    parent: str | None = None
    description: str = ""
    replaced_by: str | None = None


class Taxonomy:
    """The purposes known to one catalog, and which purpose allows which."""

    def __init__(self, purposes: Mapping[str, Purpose]) -> None:
        self.purposes = dict(purposes)

    @classmethod
    def fides(cls) -> Taxonomy:
        """The Fides data uses alone."""
        return cls(
            {
                key: Purpose(key, "fides", use.parent, use.description, use.replaced_by)
                for key, use in data_uses().items()
            }
        )

    @classmethod
    def of(cls, catalog: Catalog) -> Taxonomy:
        """The Fides data uses, the catalog's ``purposes:``, and the undeclared names its datasets use."""
        found = cls.fides().purposes
        for key, spec in catalog.purposes.items():
            found.setdefault(key, Purpose(key, "catalog", spec.parent, spec.description))
        for dataset in catalog.datasets.values():
            for key in dataset.purposes:
                found.setdefault(key, Purpose(key, "undeclared"))
        return cls(found)

    def __contains__(self, key: object) -> bool:
        return key in self.purposes

    def lineage(self, key: str) -> list[str]:
        """``key`` and every purpose above it, nearest first (a loop in parents is cut where it closes)."""
        chain: list[str] = []
        current: str | None = key
        while current is not None and current not in chain:
            chain.append(current)
            purpose = self.purposes.get(current)
            current = purpose.parent if purpose is not None else None
        return chain

    def allows(self, allowed: str, requested: str) -> bool:
        """Whether a dataset allowing ``allowed`` may be read for ``requested`` (the same, or below it)."""
        return requested in self.purposes and allowed in self.lineage(requested)

    def suggest(self, key: str) -> str:
        """`` (did you mean 'x'?)`` for the nearest declared purpose or data use, or nothing."""
        known = [k for k, p in self.purposes.items() if p.origin != "undeclared" and k != key]
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        return f" (did you mean {near[0]!r}?)" if near else ""


def check_purposes(catalog: Catalog, report: Report) -> None:
    """Record the problems of the catalog's ``purposes:`` and of every dataset's ``purposes``."""
    taxonomy = Taxonomy.of(catalog)
    fides = data_uses()
    for key, spec in catalog.purposes.items():
        path = ("purposes", key)
        if not _NAME.fullmatch(key):
            report.error(path, f"{key!r}: a purpose is lower-case words joined by '.' or '_' (e.g. billing)")
        if key in fides:
            report.error(path, f"{key!r} is a Fides data use already: remove it from purposes")
        if spec.parent is not None and spec.parent not in fides and spec.parent not in catalog.purposes:
            report.error(
                (*path, "parent"),
                f"unknown parent {spec.parent!r}: name a Fides data use or a purpose declared here"
                f"{taxonomy.suggest(spec.parent)}",
            )
        elif spec.parent is not None and key in taxonomy.lineage(spec.parent):
            report.error((*path, "parent"), f"{key!r} is above itself through its parents")
    for name, key, i in _dataset_purposes(catalog):
        _check_dataset_purpose(catalog, taxonomy, report, ("datasets", name, "purposes", str(i)), key)


def _dataset_purposes(catalog: Catalog) -> Iterator[tuple[str, str, int]]:
    for name, dataset in catalog.datasets.items():
        for i, key in enumerate(dataset.purposes):
            yield name, key, i


def _check_dataset_purpose(
    catalog: Catalog, taxonomy: Taxonomy, report: Report, path: tuple[str, ...], key: str
) -> None:
    purpose = taxonomy.purposes[key]
    if purpose.origin == "undeclared":
        hint = taxonomy.suggest(key) or ": declare it there, with the Fides data use it refines as parent"
        message = f"unknown purpose {key!r}: neither a Fides data use nor declared under purposes{hint}"
        # Catalogs from before declared purposes stay valid; one that declares purposes is held to them.
        (report.error if catalog.purposes else report.warning)(path, message)
    elif purpose.replaced_by is not None:
        replacement = f": use {purpose.replaced_by!r}" if purpose.replaced_by else ""
        report.warning(path, f"{key!r} is a deprecated Fides data use{replacement}")

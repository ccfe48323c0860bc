"""Checks of a catalog against the world it describes: the lake's locations and the audit log's lineage.

The field checks (``checks.py``) look at the file alone. These look further, because a catalog can be
perfectly formed and still describe nothing: a wrong path or variable (``--var lake=/data/Lake``) makes
every dataset an empty folder, which retention would purge nothing from and a data-subject request would
certify as "no data found"; and a DAG may write copies of catalog data that the catalog does not list, which
no request or retention rule then reaches.

* ``dataset_files``: a dataset's files, where none at all is an error unless the dataset says
  ``may_be_empty: true``; every reader of catalog datasets lists them through it.
* ``check_locations``: the same, for every dataset of the catalog at once.
* ``check_lineage``: every dataset that the audit log's lineage shows written from a catalog dataset holding
  personal data is itself in the catalog (by name, or by a location below a catalog dataset's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from airflow_aisec.exceptions import DatasetIOError, EmptyDatasetError
from airflow_aisec.io import FileInfo, Location, S3Options, list_dataset_files

if TYPE_CHECKING:
    from airflow_aisec.audit.lineage import LineageGraph
    from airflow_aisec.catalog.models import Catalog, Dataset
    from airflow_aisec.catalog.problems import Report

# Parsing an s3:// URI only to compare paths must not look up credentials.
_NO_S3 = S3Options()
_OWN_OUTPUTS = ("dsr.",)


def dataset_files(
    dataset: Dataset, s3: S3Options | None = None, *, may_be_empty: bool = False
) -> list[FileInfo]:
    """The files of ``dataset`` now; none at all (a missing or empty location) is an ``EmptyDatasetError``
    naming the dataset and location, unless the dataset, or the caller with ``may_be_empty``, allows it."""
    return list_dataset_files(
        Location.parse(dataset.uri, s3), dataset.format, dataset=dataset.name,
        may_be_empty=may_be_empty or dataset.may_be_empty,
    )  # fmt: skip


def check_locations(
    report: Report, variables: Mapping[str, str] | None = None, s3: S3Options | None = None
) -> None:
    """Record an error for each dataset whose location is missing or holds no file of its format.

    The message names the dataset, the resolved location and the catalog variables it was made of.
    """
    catalog = report.catalog
    if catalog is None or report.errors:
        return
    for name, dataset in catalog.datasets.items():
        try:
            dataset_files(dataset, s3)
            continue
        except EmptyDatasetError as e:
            message = str(e)
        except DatasetIOError as e:
            message = f"dataset {name}: cannot list {dataset.uri}: {e}"
        report.error(("datasets", name, "uri"), message + _made_of(dataset.uri, variables or {}))


def _made_of(uri: str, variables: Mapping[str, str]) -> str:
    used = sorted(n for n, v in variables.items() if v and v in uri)
    if not used:
        return ""
    return " (the location uses " + ", ".join(f"{{{n}}}={variables[n]}" for n in used) + ")"


def covers(catalog: Catalog, node: str) -> bool:
    """Whether a lineage node (a dataset name or a file/folder URI) is one of the catalog's datasets."""
    if node in catalog.datasets:
        return True
    if "://" not in node and not node.startswith("/"):
        return False  # a name the catalog does not know
    try:
        location = Location.parse(node, _NO_S3)
    except DatasetIOError:
        return False
    for dataset in catalog.datasets.values():
        try:
            root = Location.parse(dataset.uri, _NO_S3)
        except DatasetIOError:
            continue
        if root.scheme == location.scheme and (
            location.path == root.path or location.path.startswith(root.path.rstrip("/") + "/")
        ):
            return True
    return False


def uncovered(catalog: Catalog, graph: LineageGraph, sources: Iterable[str]) -> dict[str, list[str]]:
    """Lineage nodes reached from ``sources`` (catalog datasets) that the catalog does not cover: node →
    the recorded operations (``action #index``) that wrote it.

    Data-subject requests' own outputs (``dsr.*``: the subject's access package) are not copies to cover.
    """
    found: dict[str, list[str]] = {}
    seen = set(sources)
    frontier = sorted(seen)
    while frontier:
        node = frontier.pop(0)
        for (source, target), labels in sorted(graph.edges.items()):
            kept = [label for label in labels if not label.startswith(_OWN_OUTPUTS)]
            if source != node or not kept:
                continue
            if not covers(catalog, target):
                written = found.setdefault(target, [])
                written += [label for label in kept if label not in written]
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return dict(sorted(found.items()))


def check_lineage(report: Report, graph: LineageGraph) -> None:
    """Record an error for each dataset the lineage shows written from a catalog dataset holding personal
    data, but that the catalog does not list (no request nor retention rule would reach it)."""
    catalog = report.catalog
    if catalog is None:
        return
    for name, dataset in catalog.datasets.items():
        if not dataset.pii_columns:
            continue
        for node, labels in uncovered(catalog, graph, [name]).items():
            report.error(
                ("datasets", name),
                f"lineage: {node} was written from dataset {name} ({', '.join(labels)}) but is not in the "
                "catalog: data-subject requests and retention do not reach it (add it as a dataset)",
            )

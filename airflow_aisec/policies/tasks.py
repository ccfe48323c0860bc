"""What the policies see of a task at parse time: the catalog datasets it reads and writes, the Assets it
publishes that the catalog does not describe, its purpose and its owner.

An Asset is a catalog dataset when its name is the dataset's name (``Asset(name="customers")``) or its URI is
the dataset's location or inside it (``Asset("s3://lake/customers/part-0.parquet")``), compared by their
OpenLineage names as the audit log and the listener compare them. aisec's catalog operators also read the
dataset given as ``dataset=``. Asset aliases are resolved only when the task runs and are not judged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from airflow_aisec.catalog import Catalog

PURPOSE_KEY = "aisec_purpose"
CATALOG_OPERATOR = "airflow_aisec.operators.base.AisecCatalogOperator"


def catalog_dataset_of(asset: Any, catalog: Catalog) -> str | None:
    """The catalog dataset an Asset stands for (by name, else by location), or None."""
    name, uri = getattr(asset, "name", None), getattr(asset, "uri", None)
    if isinstance(name, str) and name in catalog.datasets:
        return name
    if not isinstance(uri, str) or "://" not in uri:
        return None
    return catalog.dataset_at(uri)


def _is_asset(obj: Any) -> bool:
    # Assets have a name and a URI; aliases (resolved at run time) and other lineage objects do not both.
    return isinstance(getattr(obj, "name", None), str) and isinstance(getattr(obj, "uri", None), str)


def asset_label(asset: Any) -> str:
    """How a message names an Asset: its name, or its URI when it has no name of its own."""
    name, uri = str(getattr(asset, "name", "")), str(getattr(asset, "uri", ""))
    return name or uri


def task_value(task: Any, name: str) -> Any:
    """An argument of a task, also of a mapped task's ``partial()`` (None when it has none)."""
    partial = getattr(task, "partial_kwargs", None)
    if isinstance(partial, dict) and name in partial:
        return partial[name]
    try:
        return getattr(task, name, None)
    except Exception:  # a mapped task answers only for what it was given
        return None


def is_a(task: Any, qualified_name: str) -> bool:
    """Whether ``task`` is an instance of the operator class named ``module.Class`` (or of a subclass).

    By name, not ``isinstance``: the CLI's compliance gate sits below the operators and imports this package.
    """
    # A mapped task stands for instances of its ``operator_class``; an operator names its own class there.
    cls = getattr(task, "operator_class", None)
    mro = cls.__mro__ if isinstance(cls, type) else type(task).__mro__
    return any(f"{c.__module__}.{c.__qualname__}" == qualified_name for c in mro)


def _named_dataset(task: Any) -> str | None:
    """The dataset an aisec catalog operator is given as ``dataset=`` (None when templated or absent)."""
    if not is_a(task, CATALOG_OPERATOR):
        return None
    value = task_value(task, "dataset")
    return value if isinstance(value, str) and value and "{{" not in value else None


@dataclasses.dataclass(frozen=True)
class TaskData:
    """The catalog datasets a task reads (Asset inlets apart) and writes, and the Assets it publishes that the
    catalog does not describe."""

    inlet_datasets: tuple[str, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    outside: tuple[str, ...]

    @property
    def touches(self) -> tuple[str, ...]:
        """Every catalog dataset the task reads or writes."""
        return tuple(dict.fromkeys((*self.reads, *self.writes)))


def names_data(task: Any) -> bool:
    """Whether a task names any Asset or any dataset, so the catalog is needed to judge it."""
    assets = [*(task_value(task, "inlets") or ()), *(task_value(task, "outlets") or ())]
    return any(_is_asset(a) for a in assets) or _named_dataset(task) is not None


def task_data(task: Any, catalog: Catalog) -> TaskData:
    """What ``task`` reads and writes, by the catalog."""
    inlets = [a for a in task_value(task, "inlets") or () if _is_asset(a)]
    outlets = [a for a in task_value(task, "outlets") or () if _is_asset(a)]
    inlet_datasets = [d for d in (catalog_dataset_of(a, catalog) for a in inlets) if d]
    named = _named_dataset(task)
    reads = [*inlet_datasets, *([named] if named and named in catalog.datasets else [])]
    writes = [d for d in (catalog_dataset_of(a, catalog) for a in outlets) if d]
    outside = [asset_label(a) for a in outlets if catalog_dataset_of(a, catalog) is None]
    return TaskData(*(tuple(dict.fromkeys(x)) for x in (inlet_datasets, reads, writes, outside)))


def task_purpose(task: Any) -> str | None:
    """The purpose a task declares, in the order a run takes it: the operator's ``purpose`` (or
    ``aisec_purpose``), then ``aisec_purpose`` in the DAG's ``default_args``, then in its params' defaults."""
    dag = getattr(task, "dag", None)
    default_args = getattr(dag, "default_args", None) or {}
    params = task_value(task, "params") or {}
    for value in (
        task_value(task, "purpose"),
        task_value(task, PURPOSE_KEY),
        default_args.get(PURPOSE_KEY),
        params.get(PURPOSE_KEY) if hasattr(params, "get") else None,
    ):
        if value:
            return str(value)
    return None

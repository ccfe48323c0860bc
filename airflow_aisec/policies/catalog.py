"""The catalog the policies judge by: ``[aisec] catalog`` with ``[aisec] catalog_vars``, loaded once per
version of the file in a parsing process, and a problem loading it reported as a violation, not raised."""

from __future__ import annotations

import os
from collections.abc import Mapping

from airflow_aisec import config
from airflow_aisec.catalog import Catalog, load_catalog
from airflow_aisec.exceptions import AisecError

_Key = tuple[str, tuple[tuple[str, str], ...], int, int]
_loaded: dict[_Key, Catalog] = {}


class CatalogProblem(Exception):
    """The catalog cannot be loaded; the message says why (file, field and line, no data)."""


def policy_catalog(path: str | None = None, variables: Mapping[str, str] | None = None) -> Catalog:
    """The catalog at ``path`` (default ``[aisec] catalog``) with ``variables`` over ``[aisec] catalog_vars``;
    ``CatalogProblem`` when it cannot be loaded."""
    try:
        resolved = config.catalog_path(path)
        merged = config.catalog_vars(variables)
        stat = os.stat(resolved)
    except AisecError as e:
        raise CatalogProblem(str(e)) from None
    except OSError as e:
        raise CatalogProblem(f"catalog {path or resolved}: cannot be read ({e.strerror})") from None
    # Each DAG file is parsed against the same catalog: load it once per version of the file.
    key = (resolved, tuple(sorted(merged.items())), stat.st_mtime_ns, stat.st_size)
    if key not in _loaded:
        try:
            catalog = load_catalog(resolved, merged)
        except AisecError as e:
            raise CatalogProblem(" ".join(str(e).split("\n"))) from None
        _loaded.clear()
        _loaded[key] = catalog
    return _loaded[key]

"""The policies over a whole DAGs folder, without a running Airflow: what a CI gate calls."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from airflow_aisec import config
from airflow_aisec.policies.catalog import CatalogProblem, policy_catalog
from airflow_aisec.policies.violations import CATALOG, IMPORT_ERROR, Violation

_MAX_ERROR = 300


def _relative(path: str, folder: Path) -> str:
    try:
        return Path(path).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path


def _import_error(path: str, error: str, folder: Path) -> Violation:
    # The error's last line says what went wrong; the traceback above it is the file's own code.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = (lines[-1] if lines else "import error")[:_MAX_ERROR]
    return Violation(_relative(path, folder), "", None, IMPORT_ERROR, f"{last}: fix the file so it imports")


def check_dags_folder(
    folder: Path, catalog_path: str | None = None, catalog_vars: Mapping[str, str] | None = None
) -> list[Violation]:
    """Every violation of every DAG in ``folder``, whatever ``[aisec] policies`` says (parsed with a
    DagBag; Airflow's examples are not part of it), plus one per DAG file that does not import
    (``AISEC-P000``) and one when the catalog (default ``[aisec] catalog``, ``catalog_vars`` over
    ``[aisec] catalog_vars``) does not load (``AISEC-P004``). Files are named relative to ``folder``."""
    from airflow.dag_processing.dagbag import DagBag

    from airflow_aisec.policies.plugin import suspended
    from airflow_aisec.policies.rules import check_dag

    token = suspended.set(True)
    try:
        # Airflow 3's DagBag reads the folder alone: the example DAGs are a bundle of their own.
        bag = DagBag(dag_folder=os.fspath(folder))
    finally:
        suspended.reset(token)
    found = [_import_error(path, error, folder) for path, error in sorted(bag.import_errors.items())]
    try:
        catalog = policy_catalog(catalog_path, catalog_vars)
    except CatalogProblem as e:
        where = catalog_path or config.get_setting("catalog")
        return [*found, Violation(where, "", None, CATALOG, f"{e}: fix the catalog")]
    for dag_id in sorted(bag.dags):
        for violation in check_dag(bag.dags[dag_id], catalog):
            found.append(dataclasses.replace(violation, file=_relative(violation.file, folder)))
    return found

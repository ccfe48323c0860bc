"""The lake of the bias-check tests: biased scores in three Parquet files, their catalog, an audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bias_data import biased_table, write_lake


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A lake of biased scores, its catalog and a fresh audit log."""
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    table = biased_table()
    catalog = write_lake(tmp_path / "lake", table)
    return {
        "root": tmp_path / "lake",
        "catalog": catalog,
        "table": table,
        "vars": {"lake": str(tmp_path / "lake")},
    }

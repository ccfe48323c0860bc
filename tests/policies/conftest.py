"""A DAGs folder of the test's own, judged against the example catalog with the policies switched on."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "dags" / "catalog.yaml"

HEADER = """\
import datetime as dt

from airflow.sdk import DAG, Asset, task

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Where the example catalog's datasets are said to be (no file is read at parse time)."""
    return tmp_path / "lake"


@pytest.fixture
def policies_on(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``[aisec] policies = True`` over the example catalog."""
    monkeypatch.setenv("AIRFLOW__AISEC__POLICIES", "True")
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(CATALOG))
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={lake}")


@pytest.fixture
def dags_folder(tmp_path: Path) -> Callable[..., Path]:
    """Write DAG files (name → body, after a common header of imports) into a fresh folder; the folder."""
    folder = tmp_path / "dags"
    folder.mkdir()

    def write(**files: str) -> Path:
        for name, body in files.items():
            (folder / f"{name}.py").write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
        return folder

    return write

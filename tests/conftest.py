"""Test-wide setup: one migrated Airflow home per test run, shared by every test that needs Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
EXAMPLE_CATALOG = DAGS / "catalog.yaml"

# Airflow reads its configuration at import time, so the home must be set before any test imports it.
_HOME = Path(tempfile.mkdtemp(prefix="aisec-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ["AIRFLOW__AISEC__CATALOG"] = str(EXAMPLE_CATALOG)
os.environ.pop("AISEC_KEYRING", None)
for _key in [k for k in os.environ if k.startswith("AISEC_VAR_")]:
    os.environ.pop(_key)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The Airflow home of this test run (configuration only, no database)."""
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """Airflow's SQLite metadata database, migrated once per test run."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [str(Path(bin_dir) / "airflow"), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def sample_lake_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sample lake shared (read-only) by the tests of a run."""
    from airflow_aisec.samples import SampleLake, write_sample_lake

    out = tmp_path_factory.mktemp("lake")
    write_sample_lake(SampleLake(customers=120, seed=3), str(out))
    return out


@pytest.fixture
def lake_vars(sample_lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Point the configured catalog variables at the shared sample lake."""
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={sample_lake_dir}")
    yield {"lake": str(sample_lake_dir)}

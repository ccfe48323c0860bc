"""Unit tests of the operators: ``execute`` called directly, outside a DAG run, on a lake and an audit log
of the test's own.

The context is a ``TaskRun``'s (``task_runs.py``): what the operators read of Airflow's task instance is small
(its identity, which is the audit actor, and XCom).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import EXAMPLE, lake_copy
from task_runs import AuditReader, TaskRun

from airflow_aisec.crypto.keyring import LocalKeyring


@pytest.fixture
def run() -> TaskRun:
    """A DAG run of this test."""
    return TaskRun()


@pytest.fixture
def lake(tmp_path: Path, sample_lake_dir: Path) -> Path:
    """A copy of the sample lake this test may change."""
    return lake_copy(sample_lake_dir, tmp_path)


@pytest.fixture(autouse=True)
def settings(tmp_path: Path, lake: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The ``[aisec]`` settings of this test: the example catalog over its lake, its own keyring, audit log,
    holds, DSR state, exports and subject index."""
    values = {
        "CATALOG": str(EXAMPLE),
        "CATALOG_VARS": f"lake={lake}",
        "AUDIT_LOG": f"sqlite:///{tmp_path / 'audit.db'}",
        "HOLDS": str(tmp_path / "holds.json"),
        "DSR_STATE": str(tmp_path / "state"),
        "DSR_EXPORTS": str(tmp_path / "exports"),
        "DSR_INDEX": str(tmp_path / "index"),
        "TRUSTED_CHECKPOINT": str(tmp_path / "trusted.txt"),
    }
    for name, value in values.items():
        monkeypatch.setenv(f"AIRFLOW__AISEC__{name}", value)
    monkeypatch.setenv("AISEC_KEYRING", str(tmp_path / "keyring.json"))
    return values


@pytest.fixture
def ring(tmp_path: Path) -> LocalKeyring:
    """The keyring the operators use."""
    return LocalKeyring(tmp_path / "keyring.json")


@pytest.fixture
def audit(settings: dict[str, str]) -> AuditReader:
    """The audit log of this test, read back."""
    return AuditReader(settings["AUDIT_LOG"])

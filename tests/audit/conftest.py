"""Audit-log fixtures; `log_uri` (tests/conftest.py) runs each test on SQLite and on the PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    """A keyring file path (created on first use)."""
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture(autouse=True)
def own_trusted_checkpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Writers and `aisec audit verify` read [aisec] trusted_checkpoint: never another test's."""
    monkeypatch.setenv("AIRFLOW__AISEC__TRUSTED_CHECKPOINT", str(tmp_path / "trusted-checkpoint.txt"))

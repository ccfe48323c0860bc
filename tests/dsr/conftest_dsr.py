"""Data-subject-request fixtures: a private copy of the sample lake, a keyring and an audit log (the module
shared by `tests/dsr` and `tests/security`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring


@pytest.fixture
def lake(tmp_path: Path, sample_lake_dir: Path) -> Path:
    """A copy of the shared sample lake that a test may change."""
    copy = tmp_path / "lake"
    shutil.copytree(sample_lake_dir, copy)
    return copy


@pytest.fixture
def ring(tmp_path: Path) -> LocalKeyring:
    """A keyring of this test only."""
    return LocalKeyring(tmp_path / "ring.json")


@pytest.fixture
def log(tmp_path: Path, ring: LocalKeyring) -> Iterator[AuditLog]:
    """An empty audit log (SQLite) of this test, signed with ``ring``."""
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=ring) as opened:
        yield opened

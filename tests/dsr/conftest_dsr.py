"""Data-subject-request fixtures: a private copy of the sample lake, a keyring and an audit log (the module
shared by `tests/dsr` and `tests/security`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import lake_copy, open_log

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring


@pytest.fixture
def lake(tmp_path: Path, sample_lake_dir: Path) -> Path:
    """A copy of the shared sample lake that a test may change."""
    return lake_copy(sample_lake_dir, tmp_path)


@pytest.fixture
def ring(tmp_path: Path) -> LocalKeyring:
    """A keyring of this test only."""
    return LocalKeyring(tmp_path / "ring.json")


@pytest.fixture
def log(tmp_path: Path, ring: LocalKeyring) -> Iterator[AuditLog]:
    """An empty audit log (SQLite) of this test, signed with ``ring``."""
    with open_log(tmp_path, ring) as opened:
        yield opened

"""A small audit log of hand-made entries for the view-model tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring


@pytest.fixture
def ring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(str(tmp_path / "keyring.json"))


@pytest.fixture
def log(tmp_path: Path, ring: LocalKeyring) -> Iterator[AuditLog]:
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=ring) as opened:
        yield opened

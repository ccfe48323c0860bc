"""Audit-log fixtures: every test runs against SQLite and against the PostgreSQL server on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("AISEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_database() -> Iterator[str]:
    import psycopg

    name = f"aisec_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def log_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty audit log URI on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        yield from _pg_database()


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    """A keyring file path (created on first use)."""
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture(autouse=True)
def outside_airflow_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """dag.test() runs tasks in this process and leaves their AIRFLOW_CTX_* variables behind."""
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CTX_")]:
        monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def own_trusted_checkpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Writers and `aisec audit verify` read [aisec] trusted_checkpoint: never another test's."""
    monkeypatch.setenv("AIRFLOW__AISEC__TRUSTED_CHECKPOINT", str(tmp_path / "trusted-checkpoint.txt"))

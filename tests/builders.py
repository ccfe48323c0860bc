"""Test data the test folders share: the example catalog (as is or edited) over a lake, private copies of the
sample lake, a test's own audit log, and what a lake's files hold.

Plain functions, so any test, fixture or helper module builds the same data the same way.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog, load_catalog
from airflow_aisec.samples import SampleLake

if TYPE_CHECKING:
    from airflow_aisec.crypto.keyring import LocalKeyring

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
EXAMPLE = DAGS / "catalog.yaml"
SAMPLE = SampleLake(customers=120, seed=3)  # the same lake as the `sample_lake_dir` fixture


def lake_copy(sample_lake_dir: Path, tmp_path: Path, name: str = "lake") -> Path:
    """A copy of the shared sample lake, ``tmp_path / name``, that a test may change."""
    copy = tmp_path / name
    shutil.copytree(sample_lake_dir, copy)
    return copy


def catalog_file(tmp_path: Path, edit: Callable[[Any], None]) -> Path:
    """The example catalog with ``edit(data)`` applied to its YAML data, written to
    ``tmp_path / "catalog.yaml"``."""
    data = yaml.safe_load(EXAMPLE.read_text())
    edit(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def catalog_for(
    lake: Path | str, tmp_path: Path | None = None, edit: Callable[[Any], None] | None = None
) -> Catalog:
    """The example catalog over ``lake``; ``edit(data)`` may change its YAML data first."""
    if edit is None:
        return load_catalog(EXAMPLE, {"lake": str(lake)})
    assert tmp_path is not None
    return load_catalog(catalog_file(tmp_path, edit), {"lake": str(lake)})


def open_log(folder: Path, keyring: LocalKeyring | str, name: str = "audit.db") -> AuditLog:
    """An audit log (SQLite) of this test in ``folder``, signed with ``keyring``; close it when done."""
    return AuditLog.open(f"sqlite:///{folder / name}", keyring=keyring)


def visible(root: Path) -> Iterator[Path]:
    """The data files below ``root`` (hidden and ``_`` files are not part of a dataset)."""
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and not any(p.startswith((".", "_")) for p in parts):
            yield path


def digests(root: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every data file below ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in visible(root)}


def keys_cli() -> typer.Typer:
    """``aisec`` with only its global options and the ``keys`` commands."""
    from airflow_aisec.cli import keys
    from airflow_aisec.cli.common import GlobalOptions

    root = typer.Typer()

    @root.callback()
    def main(
        ctx: typer.Context, keyring: str | None = typer.Option(None), log: str | None = typer.Option(None)
    ) -> None:
        ctx.obj = GlobalOptions(keyring=keyring, log=log)

    root.add_typer(keys.app, name="keys")
    return root

"""Modules stay small enough to read in one sitting: none of the package is over 500 lines.

The dependency rules (adapters above core, core packages in their order, no import cycle, no Airflow in
core) are import-linter contracts in pyproject.toml, checked by ``make lint``; function complexity is ruff's
C901 (at most 10).
"""

from __future__ import annotations

from pathlib import Path

import airflow_aisec

PACKAGE = Path(airflow_aisec.__file__).resolve().parent
MAX_LINES = 500


def test_no_module_is_over_500_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 100  # the whole package was found
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}

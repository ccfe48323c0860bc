"""The benchmarks package lives at the repository root, beside the tests: make it importable."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def restored_log_levels() -> Iterator[None]:
    """A benchmark run quiets the loggers of Presidio and of this package for its own output; a test that
    runs one in-process puts them back, so later tests still see every record they capture."""
    names = ("presidio-analyzer", "presidio-anonymizer", "presidio-structured", "airflow_aisec")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)

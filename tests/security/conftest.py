"""Attack tests: each reproduces a way to make the evidence lie, then shows it is refused or detected.

They reuse the data-subject-request fixtures and helpers (a private copy of the sample lake, a keyring and
an audit log of the test's own).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dsr"))

from conftest_dsr import lake, log, ring  # noqa: F401

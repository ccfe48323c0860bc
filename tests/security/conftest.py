"""Attack tests: each reproduces a way to make the evidence lie, then shows it is refused or detected.

They reuse the data-subject-request fixtures and helpers (a private copy of the sample lake, a keyring and
an audit log of the test's own) and the KMS fault proxy of the crypto tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

for _folder in ("dsr", "crypto"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / _folder))

from conftest_dsr import lake, log, ring  # noqa: E402,F401
from test_kms import proxy  # noqa: E402,F401

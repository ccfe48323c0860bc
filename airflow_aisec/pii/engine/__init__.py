"""Offline PII detection with Presidio: spaCy NER plus pattern recognizers, never touching the network.

Presidio's defaults reach the internet in two places, and both are closed here:

* ``SpacyNlpEngine.load`` downloads a missing spaCy model. We load the model ourselves (after checking it
  is installed, ``models``) and hand the loaded pipeline to Presidio (``nlp_engine``), so its ``load``
  never runs.
* ``EmailRecognizer`` validates matches with ``tldextract.extract``, which fetches the public-suffix list
  on first use and caches it in the user's home. It is replaced by a recognizer that uses the snapshot
  bundled with tldextract, in memory only (``registry``).

presidio and spaCy are imported inside functions: importing this package stays cheap, and the classes that
extend Presidio's are built on first use by cached factories.

Modules: ``config`` (modes, thresholds, batch and window sizes, spaCy labels), ``models`` (loading spaCy
models), ``nlp_engine`` (Presidio's NLP engine over a loaded model), ``registry`` (the recognizers),
``analyzer`` (Presidio's analyzer assembled), ``spans`` (results to non-overlapping spans), ``pool``
(worker processes) and ``pii_engine`` (``PIIEngine`` and the shared engines of ``get_engine``).
"""

from __future__ import annotations

from airflow_aisec.catalog.models import PatternSpec, RecognizerSpec
from airflow_aisec.pii.engine.config import DEFAULT_SCORE_THRESHOLD, MODES, WINDOW_CHARS, Mode
from airflow_aisec.pii.engine.pii_engine import PIIEngine, get_engine
from airflow_aisec.pii.engine.pool import available_cpus
from airflow_aisec.pii.engine.spans import entity_rank, resolve_overlaps, windows

# The catalog's recognizer model, under the name the engine has always given it.
CustomRecognizerSpec = RecognizerSpec

__all__ = [
    "DEFAULT_SCORE_THRESHOLD",
    "MODES",
    "WINDOW_CHARS",
    "CustomRecognizerSpec",
    "Mode",
    "PIIEngine",
    "PatternSpec",
    "RecognizerSpec",
    "available_cpus",
    "entity_rank",
    "get_engine",
    "resolve_overlaps",
    "windows",
]

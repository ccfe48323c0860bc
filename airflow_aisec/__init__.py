"""airflow-aisec: secure, privacy-compliant data and ML pipelines on Apache Airflow."""

from __future__ import annotations

__version__ = "0.1.0"

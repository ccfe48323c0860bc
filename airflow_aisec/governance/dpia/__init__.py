"""Data protection impact assessment (GDPR Art. 35) and records of processing (Art. 30), from the catalog and
the audit log.

``build_assessment`` makes one ``Assessment`` from the catalog, the audit log (indexed searches), the review
views' ``Evidence`` and optional compliance ``Findings``; ``airflow_aisec.review.assessment.assess`` does all
of it. The assessment is then rendered as Markdown and HTML (``render``), PDF (``pdf``), the CNIL PIA tool's
import JSON (``cnil``) and the Art. 30 record (``ropa``), and written to a folder with what changed since the
last run (``output``). No Airflow import.
"""

from __future__ import annotations

from airflow_aisec.governance.dpia.assessment import build_assessment, load_findings
from airflow_aisec.governance.dpia.model import (
    SCALE,
    Assessment,
    Controller,
    DatasetFacts,
    Evidence,
    Finding,
    Findings,
    Measure,
    PurposeUse,
    RetentionState,
    Risk,
    Verification,
)

__all__ = [
    "SCALE",
    "Assessment",
    "Controller",
    "DatasetFacts",
    "Evidence",
    "Finding",
    "Findings",
    "Measure",
    "PurposeUse",
    "RetentionState",
    "Risk",
    "Verification",
    "build_assessment",
    "load_findings",
]

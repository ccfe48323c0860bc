"""Governance: purpose limitation enforced when catalog datasets are read.

A task declares why it reads (a Fides data use such as ``essential.service``, or a purpose the catalog
declares); every read of a catalog dataset through aisec checks that purpose against the dataset's
``purposes``, records the decision in the audit log, and refuses a purpose the dataset does not serve. A
purpose that needs consent also keeps only the rows of subjects with a current consent (``consent``), which
the privacy office records and withdraws (``consent_store``).
"""

from __future__ import annotations

from airflow_aisec.catalog.purposes import Purpose, Taxonomy
from airflow_aisec.exceptions import ConsentError, PurposeError
from airflow_aisec.governance.consent import ConsentFilter, ConsentReader, consent_filter
from airflow_aisec.governance.consent_store import record_consent, subject_consents
from airflow_aisec.governance.purpose import (
    ACTION,
    PurposeDecision,
    check_purpose,
    decide_purpose,
    record_purpose,
)
from airflow_aisec.governance.read import dataset_reader, read_dataset

__all__ = [
    "ACTION",
    "ConsentError",
    "ConsentFilter",
    "ConsentReader",
    "Purpose",
    "PurposeDecision",
    "PurposeError",
    "Taxonomy",
    "check_purpose",
    "consent_filter",
    "dataset_reader",
    "decide_purpose",
    "read_dataset",
    "record_consent",
    "record_purpose",
    "subject_consents",
]

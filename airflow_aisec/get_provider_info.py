"""Provider metadata that Airflow discovers through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_aisec import __version__
from airflow_aisec.config import OPTIONS, SECTION


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow: package, hooks, connection types and the ``[aisec]`` config."""
    return {
        "package-name": "airflow-aisec",
        "name": "AI Security & Privacy (aisec)",
        "description": (
            "PII detection and masking, dataset encryption, retention enforcement, data-subject requests "
            "and a tamper-evident lineage audit log for Airflow pipelines."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "aisec",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "aisec",
                "python-modules": [
                    "airflow_aisec.operators.catalog",
                    "airflow_aisec.operators.audit",
                    "airflow_aisec.operators.pii",
                    "airflow_aisec.operators.crypto",
                    "airflow_aisec.operators.retention",
                    "airflow_aisec.operators.fanout",
                    "airflow_aisec.operators.fanout_retention",
                    "airflow_aisec.operators.dsr",
                    "airflow_aisec.operators.model",
                ],
            },
        ],
        "hooks": [
            {
                "integration-name": "aisec",
                "python-modules": [
                    "airflow_aisec.hooks.lake",
                    "airflow_aisec.hooks.audit",
                    "airflow_aisec.hooks.kms",
                ],
            },
        ],
        "connection-types": [
            {"connection-type": "aisec_audit", "hook-class-name": "airflow_aisec.hooks.audit.AuditLogHook"},
        ],
        "config": {
            SECTION: {
                "description": "Settings of the airflow-aisec provider.",
                "options": {
                    option.name: {
                        "description": option.description,
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": option.example,
                        "default": option.default,
                    }
                    for option in OPTIONS
                },
            }
        },
    }

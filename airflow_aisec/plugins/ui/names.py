"""Where the Privacy pages live and what they are called in Airflow's navigation."""

from __future__ import annotations

URL_PREFIX = "/aisec"
"""Where the API server mounts the pages (outside Airflow's reserved prefixes)."""
VERIFY_DAG_ID = "aisec_audit_verify"
"""The DAG whose runs do what "verify now" does: who may trigger it may verify now."""
NAV_CATEGORY = "Privacy"

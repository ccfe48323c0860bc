"""The Airflow plugin of airflow-aisec: the audit listener and the Privacy pages of the UI."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_aisec.plugins import listener
from airflow_aisec.plugins.ui import EXTERNAL_VIEWS, FASTAPI_APP


class AisecPlugin(AirflowPlugin):
    """Records the outcome of every task that reads or writes Assets in the audit log, and adds the Privacy
    pages (audit log, integrity, lineage, data-subject requests, retention) to the Airflow UI."""

    name = "aisec"
    # The plugin API reads class attributes.
    listeners = [listener]  # noqa: RUF012
    fastapi_apps = [FASTAPI_APP]  # noqa: RUF012
    external_views = EXTERNAL_VIEWS

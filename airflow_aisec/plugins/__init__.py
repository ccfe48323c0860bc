"""The Airflow plugin of airflow-aisec: registers the audit listener."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_aisec.plugins import listener


class AisecPlugin(AirflowPlugin):
    """Records the outcome of every task that reads or writes Assets in the audit log."""

    name = "aisec"
    listeners = [listener]  # noqa: RUF012  (the plugin API reads a class attribute)

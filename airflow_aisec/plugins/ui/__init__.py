"""The Privacy section of the Airflow UI: server-rendered pages over the audit log, catalog and requests.

The API server mounts the app at ``/aisec``; Airflow's navigation gets a top-level "Privacy" entry that
shows the pages inside the UI, and each DAG a "Privacy" tab listing the datasets it touched, each linked
to its classification and lineage. The app itself is built on the first request, so the other Airflow
processes that load the plugin (scheduler, workers) never import FastAPI routes or templates.
"""

from __future__ import annotations

from typing import Any

from airflow_aisec.plugins.ui.names import NAV_CATEGORY, URL_PREFIX


class LazyApp:
    """An ASGI app that builds the real one (``app.create_app``) when the first request arrives."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from airflow_aisec.plugins.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


FASTAPI_APP = {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "aisec privacy pages"}
EXTERNAL_VIEWS = [
    {
        "name": NAV_CATEGORY,
        "href": f"{URL_PREFIX}/audit",
        "url_route": "privacy",
        "destination": "nav",
        "nav_top_level": True,
    },
    {
        # Airflow 3.3 has no Asset-page destination: the DAG tab lists the DAG's datasets instead.
        "name": NAV_CATEGORY,
        "href": f"{URL_PREFIX}/dags/{{DAG_ID}}",
        "url_route": "privacy-dag",
        "destination": "dag",
    },
]

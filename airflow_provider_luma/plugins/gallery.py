"""The plugin class (registered as entry point ``airflow.plugins`` ``luma_gallery``)."""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_luma.plugins import NAV_ROUTE, REVIEW_ROUTE, TAB_ROUTE, URL_PREFIX


class LazyApp:
    """An ASGI app that builds :func:`airflow_provider_luma.plugins._app.create_app` on first use."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_provider_luma.plugins._app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry point."""
        await self._get()(scope, receive, send)


class LumaGalleryPlugin(AirflowPlugin):
    """Registers the gallery app, the DAG-run tab, the task-instance review tab and the nav entry."""

    name = "luma_gallery"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "Luma renders gallery"}]
    external_views = [
        {
            "name": "Luma renders",
            "href": "luma/runs/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": TAB_ROUTE,
        },
        {
            "name": "Luma review",
            "href": "luma/review/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}",
            "destination": "task_instance",
            "url_route": REVIEW_ROUTE,
        },
        {
            "name": "Luma renders",
            "href": "luma/runs",
            "destination": "nav",
            "category": "browse",
            "url_route": NAV_ROUTE,
        },
    ]

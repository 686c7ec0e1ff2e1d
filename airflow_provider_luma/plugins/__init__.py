"""The "Luma renders" gallery: an Airflow plugin shipped with the provider (entry point ``airflow.plugins``).

* a FastAPI app on the api-server under ``/luma`` (pages, JSON, video; see :mod:`._app`),
* a **"Luma renders" tab on every DAG run** (an external view, ``destination="dag_run"``, shown in an iframe),
* a **"Luma review" tab on every task instance**: the latest take's player and every take with its decision,
  who made it and when (``review=LumaReview(...)``),
* a **"Luma renders" entry in Browse** listing recent runs that rendered.

Plugins are imported by every Airflow process that loads them, so nothing here imports a web framework: the
FastAPI app is built on the api-server's first request to ``/luma`` (:class:`.gallery.LazyApp`). This package
module imports nothing from Airflow (the "Luma video" link uses :func:`gallery_url` in workers).
"""

from __future__ import annotations

from urllib.parse import quote

URL_PREFIX = "/luma"
TAB_ROUTE = "luma_renders"
NAV_ROUTE = "luma_runs"
REVIEW_ROUTE = "luma_review"


def clip_key(task_id: str, map_index: int) -> str:
    """The clip's anchor in the page (``#clip=<key>``) and its id in the chain graph."""
    return f"{task_id}[{map_index}]" if map_index >= 0 else task_id


def gallery_url(base_url: str, dag_id: str, run_id: str, task_id: str | None = None, map_index: int = -1) -> str:
    """The gallery page of a run (``#clip=<key>`` scrolls to one clip); ``base_url`` is ``[api] base_url``."""
    url = f"{base_url.rstrip('/')}{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"
    return f"{url}#clip={quote(clip_key(task_id, map_index), safe='')}" if task_id else url


def still_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """A JPEG of the first frame of a task instance's latest stored take (read at view time, so one URL follows
    every take); ``base_url`` is ``[api] base_url``."""
    parts = "/".join(quote(p, safe="") for p in (dag_id, run_id, task_id))
    return f"{base_url.rstrip('/')}{URL_PREFIX}/still/{parts}/{map_index}"

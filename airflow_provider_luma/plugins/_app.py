"""The gallery's FastAPI app, mounted on the api-server at :data:`URL_PREFIX` by :class:`LumaGalleryPlugin`.

==============================================  ===========================================  ==================
route                                           what                                         access (403/401)
==============================================  ===========================================  ==================
``GET /luma/runs``                              page: recent runs with renders (nav entry)   logged in
``GET /luma/api/runs``                          JSON of that list (only DAGs you may read)   logged in
``GET /luma/runs/{dag_id}/{run_id}``            page: the run's clips and chain ("tab")      read the DAG's runs
``GET /luma/api/runs/{dag_id}/{run_id}``        JSON: every clip of the run, the chain       read the DAG's XComs
``GET /luma/video/{dag}/{run}/{task}/{index}``  the stored MP4 (Range) or a 307 to a fresh   read the DAG's XComs
                                                presigned URL
``GET /luma/static/{name}``                     the page's JS/CSS (no CDN)                   logged in
==============================================  ===========================================  ==================

Authentication is Airflow's own (the ``_token`` cookie the UI sets, or ``Authorization: Bearer``) through the
dependencies of :mod:`airflow.api_fastapi.core_api.security`, so the deployment's auth manager decides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse

from airflow_provider_luma.plugins import _db, _media
from airflow_provider_luma.plugins._model import XCOM_KEYS, assemble

STATIC = Path(__file__).parent / "static"
ASSETS = {"gallery.js": "text/javascript", "gallery.css": "text/css", "runs.js": "text/javascript"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' https: http://127.0.0.1:* http://localhost:*; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
NO_STORE = {"Cache-Control": "no-store"}

ReadRuns = Depends(requires_access_dag("GET", DagAccessEntity.RUN))
ReadXcoms = Depends(requires_access_dag("GET", DagAccessEntity.XCOM))


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers={"Content-Security-Policy": CSP, **NO_STORE})


def create_app() -> FastAPI:
    """Build the gallery app (called once, on the api-server's first request to it)."""
    app = FastAPI(title="Luma renders", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.get("/runs")
    def runs_page(user: GetUserDep) -> FileResponse:
        return _page("runs.html")

    @app.get("/api/runs")
    def runs_json(user: GetUserDep, session: SessionDep) -> JSONResponse:
        from airflow.api_fastapi.app import get_auth_manager

        allowed = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
        return JSONResponse({"runs": _db.recent_runs(session, allowed)}, headers=NO_STORE)

    @app.get("/runs/{dag_id}/{run_id}", dependencies=[ReadRuns])
    def run_page(dag_id: str, run_id: str) -> FileResponse:
        return _page("gallery.html")

    @app.get("/api/runs/{dag_id}/{run_id}", dependencies=[ReadXcoms])
    def run_json(dag_id: str, run_id: str, session: SessionDep) -> JSONResponse:
        state, rows = _db.task_rows(session, dag_id, run_id)
        if not rows and not _db.run_state(session, dag_id, run_id)[0]:
            raise HTTPException(404, "DAG run not found")
        _db.add_failure_reasons(session, dag_id, run_id, rows)
        data = assemble(dag_id, run_id, state, rows, _db.xcom_values(session, dag_id, run_id), datetime.now(UTC))
        return JSONResponse(data.to_json(), headers=NO_STORE)

    @app.get("/video/{dag_id}/{run_id}/{task_id}/{map_index}", dependencies=[ReadXcoms])
    def video(
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        session: SessionDep,
        range_header: Annotated[str | None, Depends(_range_header)],
    ) -> Response:
        return _video_response(session, dag_id, run_id, task_id, map_index, range_header)

    @app.get("/static/{name}")
    def static(name: str, user: GetUserDep) -> FileResponse:
        if name not in ASSETS:  # a fixed list: nothing from the client reaches the filesystem
            raise HTTPException(404, "Not found")
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "private, max-age=300"})

    return app


def _range_header(request: Request) -> str | None:
    return request.headers.get("range")


def _video_response(
    session: Any, dag_id: str, run_id: str, task_id: str, map_index: int, range_header: str | None
) -> Response:
    """Stream the stored copy recorded in this task instance's result, else redirect to a fresh presigned URL."""
    values = _db.xcom_values(session, dag_id, run_id, XCOM_KEYS, task=(task_id, map_index))
    result = values.get((task_id, map_index), {}).get("return_value")
    if not isinstance(result, dict):
        raise HTTPException(404, "This task instance has no finished Luma render")
    path = result.get("video_path")
    if isinstance(path, str) and path:
        try:
            stored, size = _media.open_stored(path)
        except (FileNotFoundError, OSError, ValueError):
            stored = None
        if stored is not None:
            return _stream(stored, size, range_header)
    request_id = result.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise HTTPException(404, "The render has no stored copy and no request id to fetch a fresh URL with")
    fields = _db.task_fields(session, dag_id, run_id, task_id, map_index)
    conn_id = str(fields.get("luma_conn_id") or "luma_default")
    from airflow_provider_luma.core.errors import LumaError

    try:
        url = _media.fresh_video_url(conn_id, request_id, result.get("model"))
    except LumaError as exc:
        raise HTTPException(502, f"Could not fetch a fresh video URL from Luma ({type(exc).__name__})") from None
    if url is None:
        raise HTTPException(410, "Luma no longer offers this video and no stored copy exists")
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, max-age=60"})


def _stream(path: Any, size: int, range_header: str | None) -> Response:
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=300"}
    try:
        wanted = _media.parse_range(range_header, size)
    except _media.RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        body = _media.iter_file(path, 0, size)
        return StreamingResponse(body, media_type="video/mp4", headers={**headers, "Content-Length": str(size)})
    headers.update({"Content-Range": wanted.content_range(), "Content-Length": str(wanted.length)})
    body = _media.iter_file(path, wanted.start, wanted.length)
    return StreamingResponse(body, status_code=206, media_type="video/mp4", headers=headers)

"""The gallery's FastAPI app, mounted on the api-server at :data:`URL_PREFIX` by :class:`LumaGalleryPlugin`.

==============================================  ===========================================  ==================
route                                           what                                         access (403/401)
==============================================  ===========================================  ==================
``GET /luma/runs``                              page: recent runs with renders (nav entry)   logged in
``GET /luma/api/runs``                          JSON of that list (only DAGs you may read)   logged in
``GET /luma/runs/{dag_id}/{run_id}``            page: the run's clips and chain ("tab")      read the DAG's runs
``GET /luma/api/runs/{dag_id}/{run_id}``        JSON: every clip of the run, the chain       read the DAG's XComs
``GET /luma/video/{dag}/{run}/{task}/{index}``  the stored MP4 (Range) or a 307 to a fresh   read the DAG's XComs
                                                presigned URL, from the task instance's
                                                delivery record only (never an XCom)
``GET /luma/still/{dag}/{run}/{task}/{index}``  a JPEG of the stored copy's first frame,     read the DAG's XComs
                                                from the delivery record only (the review
                                                body's image; 404 without PyAV)
``GET /luma/review/{dag}/{run}/{task}/{index}`` page: a task instance's takes ("Luma review"  read the DAG's runs
                                                tab): the latest one plays, every decision
``GET /luma/api/review/{dag}/{run}/{task}/{i}`` JSON of that page                             read the DAG's XComs
``GET /luma/static/{name}``                     the page's JS/CSS (no CDN)                   logged in
==============================================  ===========================================  ==================

Authentication is Airflow's own (the ``_token`` cookie the UI sets, or ``Authorization: Bearer``) through the
dependencies of :mod:`airflow.api_fastapi.core_api.security`, so the deployment's auth manager decides.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse

from airflow_provider_luma.plugins import _db, _media, _review, _still
from airflow_provider_luma.plugins._model import DELIVERY_FIELD, assemble, video_route

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "gallery.js": "text/javascript",
    "gallery.css": "text/css",
    "runs.js": "text/javascript",
    "review.js": "text/javascript",
    "common.js": "text/javascript",
}
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
        now = datetime.now(timezone.utc)
        data = assemble(dag_id, run_id, state, rows, _db.xcom_values(session, dag_id, run_id), now)
        takes = _review.review_takes(session, dag_id, run_id)
        for clip in data.clips:
            clip["takes"] = takes.get((clip["task_id"], clip["map_index"]), [])
        return JSONResponse(data.to_json(), headers=NO_STORE)

    # The UI fills {MAP_INDEX} only on a mapped task instance's page; an unmapped one sends it literally (-1).
    @app.get("/review/{dag_id}/{run_id}/{task_id}/{map_index}", dependencies=[ReadRuns])
    def review_page(dag_id: str, run_id: str, task_id: str, map_index: str) -> FileResponse:
        return _page("review.html")

    @app.get("/api/review/{dag_id}/{run_id}/{task_id}/{map_index}", dependencies=[ReadXcoms])
    def review_json(dag_id: str, run_id: str, task_id: str, map_index: int, session: SessionDep) -> JSONResponse:
        found, state, fields = _db.delivery_fields(session, dag_id, run_id, task_id, map_index)
        if not found:
            raise HTTPException(404, "No such task instance")
        record = fields.get(DELIVERY_FIELD)
        record = record if isinstance(record, dict) else {}
        has_video = bool(record.get("video_path")) or (
            bool(record.get("request_id")) and (state == "success" or _review.awaiting_review(state, record))
        )
        takes = _review.review_takes(session, dag_id, run_id, (task_id, map_index)).get((task_id, map_index), [])
        body = {
            "dag_id": dag_id,
            "run_id": run_id,
            "task_id": task_id,
            "map_index": map_index,
            "state": state,
            "awaiting_review": _review.awaiting_review(state, record),
            "generation_id": record.get("generation_id"),
            "video": video_route(dag_id, run_id, task_id, map_index) if has_video else None,
            "takes": takes,
        }
        return JSONResponse(body, headers=NO_STORE)

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

    @app.get("/still/{dag_id}/{run_id}/{task_id}/{map_index}", dependencies=[ReadXcoms])
    def still(dag_id: str, run_id: str, task_id: str, map_index: int, session: SessionDep) -> Response:
        return _still_response(session, dag_id, run_id, task_id, map_index)

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
    """Stream the stored copy named by the task instance's delivery record (its rendered template fields), else
    redirect to a fresh presigned URL for the request it records. XComs are never read here (see :mod:`._media`)."""
    found, state, fields = _db.delivery_fields(session, dag_id, run_id, task_id, map_index)
    if not found:
        raise HTTPException(404, "No such task instance")
    try:
        plan = _media.plan_video(fields, state)
        if plan.path is not None:
            try:
                handle, size = _media.open_stored(plan.path)
            except FileNotFoundError:
                if plan.request_id is None:
                    raise _media.VideoRefused(404, "The stored copy of this clip is gone") from None
            else:
                return _stream(handle, size, range_header)
        if plan.request_id is None or plan.conn_id is None:  # plan_video names a path, a request, or both
            raise _media.VideoRefused(404, "This clip has no video to show")
        return _fresh_url(plan.conn_id, plan.request_id, plan.model, plan.backend)
    except _media.VideoRefused as refused:
        raise HTTPException(refused.status, refused.message) from None


def _still_response(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> Response:
    """A JPEG of the first frame of the stored copy the task instance's delivery record names now (its latest
    take). Only a stored copy: the api-server never downloads a presigned URL to make a still."""
    found, _, fields = _db.delivery_fields(session, dag_id, run_id, task_id, map_index)
    if not found:
        raise HTTPException(404, "No such task instance")
    record = fields.get(DELIVERY_FIELD)
    path = record.get("video_path") if isinstance(record, dict) else None
    if not isinstance(path, str) or not path.strip():
        raise HTTPException(404, "No still: this task instance records no stored copy (it has no output_path)")
    try:
        handle, _size = _media.open_stored(path)
        jpeg = _still.make_still(handle)
    except FileNotFoundError:
        raise HTTPException(404, "No still: the stored copy of this clip is gone") from None
    except _media.VideoRefused as refused:
        raise HTTPException(refused.status, refused.message) from None
    # Not cached by the browser: the same URL shows the next take once one is stored.
    return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)


def _fresh_url(conn_id: str, request_id: str, model: str | None, backend: str | None) -> Response:
    from airflow_provider_luma.core.errors import LumaError

    try:
        url = _media.fresh_video_url(conn_id, request_id, model, backend)
    except LumaError as exc:
        raise HTTPException(502, f"Could not fetch a fresh video URL from Luma ({type(exc).__name__})") from None
    if url is None:
        raise HTTPException(410, "Luma no longer offers this video and no stored copy exists")
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, max-age=60"})


def _stream(handle: Any, size: int, range_header: str | None) -> Response:
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=300"}
    try:
        wanted = _media.parse_range(range_header, size)
    except _media.RangeNotSatisfiable:
        handle.close()
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        body = _media.iter_file(handle, 0, size)
        return StreamingResponse(body, media_type="video/mp4", headers={**headers, "Content-Length": str(size)})
    headers.update({"Content-Range": wanted.content_range(), "Content-Length": str(wanted.length)})
    body = _media.iter_file(handle, wanted.start, wanted.length)
    return StreamingResponse(body, status_code=206, media_type="video/mp4", headers=headers)

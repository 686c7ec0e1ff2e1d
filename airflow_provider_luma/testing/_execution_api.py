"""Airflow's in-process Execution API for the ``luma_airflow`` fixture: started once per process, for one version.

``dag.test()`` (Airflow 3.0 → 3.3) runs every task through an in-process Execution API: a Cadwyn (FastAPI) app
behind a WSGI transport. Starting it is most of a user's first DAG test: its first request makes Cadwyn build the
routes of **every** API version Airflow still serves (nine on 3.3: ~4 s on a 2-core machine), although the only
client in the process, this Airflow's own Task SDK, speaks one: ``API_VERSION``, the newest. The older versions
serve Task SDKs of older releases talking to a newer API server, which never happens in-process.

So the fixture builds the app with a version bundle of that one version (:func:`_newest_version_only`): the routes
and schemas a task sees are the same (``tests/testing/test_execution_api.py`` compares the OpenAPI documents of
both apps), and starting it takes ~0.5 s instead of ~4 s. Where the installed Airflow does not fit the assumption
(the Task SDK speaks an older version than the API's newest, the head version carries changes, a name moved) the
full bundle is used, as ``dag.test()`` itself would.

Imported by the fixture only (it imports Airflow's API server).
"""

from __future__ import annotations

import copy
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

JWT_SECRET_VAR = "AIRFLOW__API_AUTH__JWT_SECRET"
"""Airflow 3.2's in-process Execution API fails to start without ``[api_auth] jwt_secret`` (3.3 generates one)."""

DELETED_ROUTE_TAG = "_CADWYN_DELETED_ROUTE"
"""The tag Cadwyn (5.x → 7.x) puts on a route that only older API versions serve
(``@VersionedAPIRouter.only_exists_in_older_versions``)."""

_STARTED_API: list[Any] = []  # the process's one started in-process Execution API (see execution_api)


def warm_up() -> None:
    """Start Airflow's in-process Execution API (what ``dag.test()`` runs tasks through) once per process.

    The session fixture pays this (~1-2 s: importing the API server, building its one version, the first request)
    once, so that every test's ``dag.test()`` reuses the started app (3.3 caches the one it is given; on older
    versions :func:`shared_execution_api` makes ``dag.test()`` use it).
    """
    import httpx

    api = execution_api()
    with httpx.Client(transport=api.transport, base_url="http://in-process.invalid") as client:
        client.get("/health")


def execution_api() -> Any:
    """The process's in-process Execution API, built for the Task SDK's version, its lifespan finished."""
    if not _STARTED_API:
        from airflow.sdk.execution_time import supervisor

        # 3.3's in_process_api_server() is cached for the process: the instance made here is what dag.test() uses.
        api = supervisor.in_process_api_server()
        with _newest_version_only(), _lifespan_secret():
            _ = api.app  # builds the app while the bundle and router are the one-version ones
            _ = api.transport  # starts the lifespan
            _wait_for_lifespan(api.app)  # 3.0 → 3.2 read the secret on the lifespan's loop, after transport
        _STARTED_API.append(api)
    return _STARTED_API[0]


@contextmanager
def _newest_version_only() -> Iterator[None]:
    """While the in-process API's app is built, Airflow's version bundle holds only the Task SDK's version.

    ``create_task_execution_api_app`` (3.0 → 3.3) reads ``versions.bundle`` and ``routes.execution_api_router``
    when called, so swapping the two module attributes for the duration of the build changes only that app. The
    router given to Cadwyn leaves out the routes that exist only in older versions (Cadwyn removes them from the
    newest version anyway, and refuses a bundle that never restores them).
    """
    try:
        from airflow.api_fastapi.execution_api import routes, versions
        from airflow.sdk.api.datamodels._generated import API_VERSION
        from cadwyn import HeadVersion, Version, VersionBundle
    except ImportError:  # pragma: no cover - an Airflow that moved these: build every version, as dag.test() does
        yield
        return
    full_bundle, full_router = versions.bundle, routes.execution_api_router
    newest = full_bundle.versions[0]
    if str(newest.value) != API_VERSION or full_bundle.head_version.changes:  # pragma: no cover - see docstring
        yield
        return
    router = copy.copy(full_router)  # the same routes (objects), minus those of older versions only
    router.routes = [r for r in full_router.routes if DELETED_ROUTE_TAG not in (getattr(r, "tags", None) or ())]
    versions.bundle = VersionBundle(HeadVersion(), Version(newest.value))
    routes.execution_api_router = router
    try:
        yield
    finally:
        versions.bundle, routes.execution_api_router = full_bundle, full_router


@contextmanager
def shared_execution_api() -> Iterator[None]:
    """Make ``dag.test()`` run every task through the one started in-process Execution API, as 3.3 does.

    3.0 → 3.2 build a new in-process API for each task and send it the task's first request without waiting for
    its lifespan (3.3 caches one per process and waits). When the lifespan loses that race the request fails with
    ``KeyError: 'svcs_registry'`` (every task on 3.2, whose lifespan is slower). On 3.3 this changes nothing.
    """
    if AIRFLOW_V_3_3_PLUS:
        yield
        return
    from airflow.sdk.execution_time import supervisor

    api = execution_api()
    original = supervisor.in_process_api_server
    # 3.3's is an lru_cache wrapper; this branch runs on 3.0 → 3.2 only, whose is a plain function.
    supervisor.in_process_api_server = lambda: api  # type: ignore[assignment,unused-ignore]
    try:
        yield
    finally:
        supervisor.in_process_api_server = original


@contextmanager
def _lifespan_secret() -> Iterator[None]:
    """A throwaway ``[api_auth] jwt_secret`` while the in-process API starts, unless one is configured.

    3.2's Execution API lifespan raises without it (3.3 generates one); the in-process API's requests are never
    token-checked (it allows every request), so the secret only lets the lifespan finish.
    """
    from airflow.configuration import conf

    if conf.get("api_auth", "jwt_secret", fallback=""):
        yield
        return
    os.environ[JWT_SECRET_VAR] = secrets.token_urlsafe(32)
    try:
        yield
    finally:
        os.environ.pop(JWT_SECRET_VAR, None)


def _wait_for_lifespan(app: Any, timeout: float = 60.0) -> None:
    """Wait until the in-process API's lifespan has registered its services (``app.state.svcs_registry``).

    3.0 → 3.2 start the lifespan on a2wsgi's loop without waiting for it, and an error there is never reported:
    every request then fails with ``KeyError: 'svcs_registry'``. 3.3 waits itself (this returns at once).

    :raises RuntimeError: the lifespan did not finish within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not hasattr(app.state, "svcs_registry"):
        if time.monotonic() > deadline:
            raise RuntimeError(
                "Airflow's in-process Execution API did not start (its lifespan failed or hung); "
                "dag.test() cannot run tasks"
            )
        time.sleep(0.05)

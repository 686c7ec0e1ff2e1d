"""The ``luma_airflow`` fixture's in-process Execution API serves the Task SDK's one version, exactly as the full
app serves it (``airflow_provider_luma.testing._execution_api``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
from airflow.sdk.api.datamodels._generated import API_VERSION

from airflow_provider_luma.testing import _execution_api


def _versioned_openapi(api: Any) -> dict[str, Any]:
    """The OpenAPI document ``api`` serves for the Task SDK's version (its app started as the fixture does)."""
    with _execution_api._lifespan_secret():
        transport = api.transport
        _execution_api._wait_for_lifespan(api.app)
    with httpx.Client(transport=transport, base_url="http://in-process.invalid") as client:
        response = client.get("/openapi.json", params={"version": API_VERSION})
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def test_the_one_version_app_serves_the_sdks_version_as_the_full_app_does() -> None:
    full = InProcessExecutionAPI()
    reduced = InProcessExecutionAPI()
    with _execution_api._newest_version_only():
        _ = reduced.app

    assert [str(v.value) for v in reduced.app.versions.versions] == [API_VERSION]
    assert len(full.app.versions.versions) > 1, "the full app must still be built with every version"
    expected = _versioned_openapi(full)
    assert expected["paths"], "an empty document would compare equal to anything"
    assert _versioned_openapi(reduced) == expected  # every route, parameter and schema of that version


def test_dag_test_runs_through_the_one_version_app(luma_airflow: Any) -> None:
    api = _execution_api.execution_api()
    assert [str(v.value) for v in api.app.versions.versions] == [API_VERSION]
    with httpx.Client(transport=api.transport, base_url="http://in-process.invalid") as client:
        assert client.get("/health").status_code == 200


def test_the_swap_is_undone_after_the_build() -> None:
    from airflow.api_fastapi.execution_api import routes, versions

    bundle, router = versions.bundle, routes.execution_api_router
    with _execution_api._newest_version_only():
        assert versions.bundle is not bundle and routes.execution_api_router is not router
    assert versions.bundle is bundle and routes.execution_api_router is router
    with pytest.raises(RuntimeError), _execution_api._newest_version_only():
        raise RuntimeError("a failed build")
    assert versions.bundle is bundle and routes.execution_api_router is router

"""LumaHook: Airflow Connection → client settings, sync and async, shared async client, Test button."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.exceptions import LumaConfigurationError
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, LumaSimulatorServer


def set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str = "luma_default", **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "luma", **fields}))


def test_hook_attributes_for_providers_manager() -> None:
    assert LumaHook.conn_type == "luma"
    assert LumaHook.default_conn_name == "luma_default"
    assert LumaHook.conn_name_attr == "luma_conn_id"
    assert LumaHook.hook_name


def test_full_url_host_and_organization(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        host="http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey",
        password="k-123456",
        extra={"organization_id": "org-7"},
    )
    settings = LumaHook().get_settings()
    assert settings.base_url == "http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey"
    assert settings.api_key == "k-123456"
    assert settings.headers()["X-Organization-ID"] == "org-7"


def test_bare_host_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "luma_bare", host="console.gmicloud.ai", password="k-123456")
    set_conn(monkeypatch, "luma_nohost", password="k-123456")
    assert LumaHook("luma_bare").get_settings().base_url == "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey"
    assert LumaHook("luma_nohost").get_settings().base_url.startswith("https://console.gmicloud.ai/")


def test_missing_key_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, host="console.gmicloud.ai")
    with pytest.raises(LumaConfigurationError, match="no API key.*Password"):
        LumaHook().get_settings()


def test_sync_calls_through_the_simulator(luma_conn_env: LumaSimulatorServer) -> None:
    hook = LumaHook()
    generation = hook.submit_generation(GenerateRequest.validate_params({"prompt": "p"}))
    assert hook.get_generation(generation.request_id).request_id == generation.request_id
    ok, message = hook.test_connection()
    assert ok and luma_conn_env.base_url in message


def test_test_connection_reports_bad_key(luma_simulator: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, host=luma_simulator.base_url, password="not-the-key")
    ok, message = LumaHook().test_connection()
    assert not ok and "401" in message and "not-the-key" not in message


async def test_async_settings_and_shared_client(luma_conn_env: LumaSimulatorServer) -> None:
    hook = LumaHook()
    settings = await hook.aget_settings()
    assert settings.base_url == luma_conn_env.base_url and settings.api_key == DEFAULT_TEST_API_KEY
    async with hook.ashared_client() as first, LumaHook().ashared_client() as second:
        assert first is second  # one pool per connection per event loop
    assert first.is_closed  # closed once the last user returned it
    async with hook.ashared_client() as third:
        assert third is not first and not third.is_closed
        rid = (await third.asubmit(GenerateRequest.validate_params({"prompt": "p"}))).request_id
        results = await asyncio.gather(*(hook.aget_generation(rid) for _ in range(20)))
    assert {g.request_id for g in results} == {rid}


async def test_triggers_starting_together_share_one_connection_lookup(
    luma_conn_env: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat import connection as compat

    from airflow_provider_luma import hooks

    lookups: list[str] = []
    real = compat.get_async_connection

    async def counted(conn_id: str, **kwargs: Any) -> Any:
        lookups.append(conn_id)
        return await real(conn_id, **kwargs)

    monkeypatch.setattr(compat, "get_async_connection", counted)
    settings = await asyncio.gather(*(LumaHook().aget_settings() for _ in range(200)))  # a failover's burst
    assert lookups == ["luma_default"] and {s.api_key for s in settings} == {DEFAULT_TEST_API_KEY}

    conn = json.loads(luma_conn_env.airflow_conn_json())
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps({**conn, "password": "rotated-key"}))
    assert (await LumaHook().aget_settings()).api_key == DEFAULT_TEST_API_KEY  # within SETTINGS_TTL
    start = hooks._clock()
    monkeypatch.setattr(hooks, "_clock", lambda: start + hooks.SETTINGS_TTL + 1)
    assert (await LumaHook().aget_settings()).api_key == "rotated-key"  # triggers starting later see the change

    monkeypatch.setattr(hooks, "_clock", lambda: start + 2 * hooks.SETTINGS_TTL + 2)
    monkeypatch.delenv("AIRFLOW_CONN_LUMA_DEFAULT")
    with pytest.raises(LumaConfigurationError, match="not defined"):
        await LumaHook().aget_settings()
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps(conn))
    assert (await LumaHook().aget_settings()).api_key == DEFAULT_TEST_API_KEY  # a failed lookup is not kept
    assert len(lookups) == 4


@pytest.mark.parametrize(
    ("fields", "backend", "base_url"),
    [
        ({}, "gmi", "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey"),
        ({"extra": {"api": "gmi"}}, "gmi", "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey"),
        ({"extra": {"api": "luma_agents"}}, "luma_agents", "https://agents.lumalabs.ai/v1"),
        (
            {"extra": {"api": "LUMA_AGENTS"}, "host": "agents.example.com"},
            "luma_agents",
            "https://agents.example.com/v1",
        ),
        (
            {"extra": {"api": "luma_agents"}, "host": "http://127.0.0.1:9000/v1/"},
            "luma_agents",
            "http://127.0.0.1:9000/v1",
        ),
        ({"extra": {"api": "luma_agents"}, "host": "http://127.0.0.1:9000"}, "luma_agents", "http://127.0.0.1:9000/v1"),
    ],
)
def test_the_connection_picks_the_api(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, object], backend: str, base_url: str
) -> None:
    set_conn(monkeypatch, password="luma-api-123456", **fields)
    settings = LumaHook().get_settings()
    assert (settings.backend, settings.base_url) == (backend, base_url)


def test_an_unknown_api_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, password="k-123456", extra={"api": "openai"})
    with pytest.raises(LumaConfigurationError, match="extra 'api' is 'openai'; use \"gmi\".*\"luma_agents\""):
        LumaHook().get_settings()


def test_the_organization_header_is_gmi_only(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, password="k-123456", extra={"api": "luma_agents", "organization_id": "org-7"})
    assert "X-Organization-ID" not in LumaHook().get_settings().headers()

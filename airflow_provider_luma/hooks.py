"""``LumaHook``: an Airflow Connection turned into a Luma client, sync for workers and async for triggerers.

Connection fields (type ``luma``):

* **Extra** ``api`` — which API to speak: ``"gmi"`` (default: GMI Cloud's request queue) or ``"luma_agents"``
  (Luma's own API, with a Luma key ``luma-api-…``).
* **Password** — the API key of that service (required).
* **Host** — base URL (optional): a full URL such as ``http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey`` or a
  bare host name (``https://`` and the documented path are added). Default: GMI's public endpoint, or
  ``https://agents.lumalabs.ai/v1`` for ``luma_agents``.
* **Extra** ``organization_id`` — sent as ``X-Organization-ID`` (optional).
* **Extra** ``prices`` — the account's own prices, replacing the built-in table for each model named
  (:mod:`airflow_provider_luma.core.pricing`); GMI publishes none for edit and reframe, Luma's own API none at all.
* **Extra** ``schedule_time_factor`` — for simulators only: the poll schedule's clock speed (0-1; the simulator's
  own connection JSON sets its ``time_factor``), see :mod:`airflow_provider_luma.core.schedule`.

In the triggerer, connections are fetched with the async API only, and every trigger of one connection shares a
single ``httpx.AsyncClient`` per event loop (see :meth:`LumaHook.ashared_client`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_luma.core.backends import BACKEND_NAMES, DEFAULT_BACKEND, backend_named
from airflow_provider_luma.core.errors import LumaConfigurationError, LumaError, LumaNotFoundError
from airflow_provider_luma.core.http import AsyncLumaClient, ClientSettings, LumaClient, normalize_base_url
from airflow_provider_luma.core.pricing import PriceTable
from airflow_provider_luma.core.retry import RetryPolicy
from airflow_provider_luma.core.specs import SPECS

if TYPE_CHECKING:
    from airflow_provider_luma.core.jobs import Job
    from airflow_provider_luma.core.specs.base import RenderSpec

# event loop -> {settings fingerprint -> [client, users]}; weak so a finished loop drops its clients.
_SHARED_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, list[Any]]] = (
    weakref.WeakKeyDictionary()
)
# event loop -> {(conn id, timeout, retry) -> (started, lookup)}. A triggerer that takes over a dead peer's
# triggers starts thousands at once, and each lookup is a round trip to the API server: the ones that start
# together share one lookup, and a lookup answers for SETTINGS_TTL seconds (so a changed connection is seen
# by triggers that start after that).
_SETTINGS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, float, RetryPolicy], tuple[float, asyncio.Task[ClientSettings]]]
] = weakref.WeakKeyDictionary()
SETTINGS_TTL = 5.0
_clock = time.monotonic  # the settings cache's clock (tests move it)


def settings_from_connection(
    conn: Any, extra: dict[str, Any], *, timeout: float = 60.0, retry: RetryPolicy | None = None
) -> ClientSettings:
    """Build client settings from a Connection and its parsed extras.

    :raises LumaConfigurationError: when there is no API key or the host is not a usable URL.
    """
    backend = backend_of(conn, extra)
    api_key = (conn.password or "").strip()
    if not api_key:
        raise LumaConfigurationError(
            f"Airflow connection {conn.conn_id!r} has no API key: put the {backend_named(backend).KEY_NAME} in its "
            "Password field"
        )
    try:
        base_url = normalize_base_url(conn.host, port=conn.port, schema=conn.schema, backend=backend)
    except ValueError as exc:
        raise LumaConfigurationError(f"Airflow connection {conn.conn_id!r}: {exc}") from None
    # The UI stores extras under plain names; older forms prefixed them with extra__<type>__.
    org = extra.get("organization_id") or extra.get("extra__luma__organization_id")
    return ClientSettings(
        base_url=base_url,
        api_key=api_key,
        organization_id=str(org) if org else None,
        timeout=timeout,
        retry=retry or RetryPolicy(),
        backend=backend,
    )


def backend_of(conn: Any, extra: dict[str, Any]) -> str:
    """The API a connection speaks: its extra ``api`` (``gmi`` when absent).

    :raises LumaConfigurationError: for any other value.
    """
    raw = extra.get("api") or extra.get("extra__luma__api") or DEFAULT_BACKEND
    name = str(raw).strip().lower()
    if name not in BACKEND_NAMES:
        choices = " or ".join(f'"{n}" ({backend_named(n).TITLE})' for n in BACKEND_NAMES)
        raise LumaConfigurationError(f"Airflow connection {conn.conn_id!r}: extra 'api' is {raw!r}; use {choices}")
    return name


def _fingerprint(settings: ClientSettings) -> str:
    # Hash instead of keeping the key readable in a dict key (it would show up in debugger dumps).
    raw = "\x00".join([settings.base_url, settings.api_key, settings.organization_id or "", repr(settings.retry)])
    return hashlib.sha256(f"{raw}\x00{settings.timeout}".encode()).hexdigest()


class LumaHook(BaseHook):
    """Talk to the Luma Ray 3.2 models on GMI Cloud's request queue or the native Luma Agents API (extra ``api``).

    :param luma_conn_id: the Airflow connection id (type ``luma``).
    :param timeout: per-request HTTP timeout in seconds.
    :param retry_policy: how transient errors are retried (see :mod:`airflow_provider_luma.core.retry`).
    """

    conn_name_attr = "luma_conn_id"
    default_conn_name = "luma_default"
    conn_type = "luma"
    hook_name = "Luma AI (GMI Cloud / Luma Agents API)"

    def __init__(
        self,
        luma_conn_id: str = default_conn_name,
        *,
        timeout: float = 60.0,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.luma_conn_id = luma_conn_id
        self.timeout = timeout
        self.retry_policy = retry_policy or RetryPolicy()
        self._conn: Any = None  # one lookup per hook (the worker asks for key, prices and schedule factor)

    # -- settings ------------------------------------------------------------------------------------------

    def _connection(self) -> Any:
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        if self._conn is not None:
            return self._conn
        try:
            self._conn = self.get_connection(self.luma_conn_id)
            return self._conn
        except AirflowNotFoundException:
            raise self._undefined() from None

    def _undefined(self) -> LumaConfigurationError:
        return LumaConfigurationError(
            f"Airflow connection {self.luma_conn_id!r} is not defined: create it (type 'luma', the API key in "
            "its Password) or set luma_conn_id to the one you have"
        )

    def get_settings(self) -> ClientSettings:
        """Client settings from the connection (sync lookup; for workers).

        :raises LumaConfigurationError: the connection does not exist, has no API key or an unusable host.
        """
        conn = self._connection()
        return settings_from_connection(conn, conn.extra_dejson, timeout=self.timeout, retry=self.retry_policy)

    def price_table(self) -> PriceTable:
        """The backend's built-in prices with the connection's ``prices`` extra applied (see ``core/pricing.py``)."""
        conn = self._connection()
        extra = conn.extra_dejson
        return PriceTable.with_overrides(extra.get("prices"), self.luma_conn_id, backend=backend_of(conn, extra))

    def schedule_time_factor(self) -> float:
        """The connection's ``schedule_time_factor`` extra (1.0 unless it points at a simulator).

        :raises LumaConfigurationError: naming the connection, when it is not a number from 0 to 1.
        """
        from airflow_provider_luma.core.schedule import parse_time_factor

        try:
            return parse_time_factor(self._connection().extra_dejson.get("schedule_time_factor"))
        except ValueError as exc:
            raise LumaConfigurationError(f"Airflow connection {self.luma_conn_id!r}: extra {exc}") from None

    async def aget_settings(self) -> ClientSettings:
        """Client settings from the connection, fetched with the async API (safe on the triggerer's loop).

        Calls on one event loop within ``SETTINGS_TTL`` seconds of each other share one lookup; a failed lookup
        is not kept.
        """
        loop = asyncio.get_running_loop()
        lookups = _SETTINGS.setdefault(loop, {})
        key = (self.luma_conn_id, self.timeout, self.retry_policy)
        entry = lookups.get(key)
        if entry is None or _clock() - entry[0] > SETTINGS_TTL:
            entry = lookups[key] = (_clock(), loop.create_task(self._alookup_settings()))
        try:
            return await asyncio.shield(entry[1])  # one waiter's cancellation must not cancel the others' lookup
        except Exception:
            if lookups.get(key) is entry:
                del lookups[key]
            raise

    async def _alookup_settings(self) -> ClientSettings:
        from airflow.providers.common.compat.connection import get_async_connection
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        from airflow_provider_luma.version_compat import get_async_extra_dejson

        try:
            conn = await get_async_connection(self.luma_conn_id, hook=self)
        except AirflowNotFoundException:
            raise self._undefined() from None
        extra = await get_async_extra_dejson(conn)
        return settings_from_connection(conn, extra, timeout=self.timeout, retry=self.retry_policy)

    # -- sync (worker) ---------------------------------------------------------------------------------------

    @cached_property
    def client(self) -> LumaClient:
        """A sync client, created on first use."""
        return LumaClient(self.get_settings())

    def get_conn(self) -> LumaClient:
        """The sync client (Airflow's conventional hook accessor)."""
        return self.client

    def submit_generation(self, spec: RenderSpec) -> Job:
        """Submit a render; see :meth:`LumaClient.submit` for the no-double-spend retry rule."""
        return self.client.submit(spec)

    def get_generation(self, request_id: str, model: str | None = None) -> Job:
        """Current state of a render."""
        return self.client.get_generation(request_id, model)

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's Test button: lists models and says which Ray 3.2 models this key can use."""
        try:
            settings = self.get_settings()
            with LumaClient(settings) as client:
                if not settings.wire.LISTS_MODELS:
                    return self._probe_native(client)
                models = client.list_models()
        except LumaError as exc:
            return False, str(exc)
        missing = [m for m in SPECS if models and m not in models]
        if models and len(missing) == len(SPECS):
            return True, f"Connected, but no Ray 3.2 model is in this key's model list ({len(models)} models)"
        if missing:
            return True, f"Connected to {settings.base_url}; not in this key's model list: {', '.join(missing)}"
        return True, f"Connected to {settings.base_url}"

    @staticmethod
    def _probe_native(client: LumaClient) -> tuple[bool, str]:
        # No list endpoint (the native API): a generation that cannot exist answers 404 to a valid key, 401 else.
        try:
            client.list_models()
        except LumaNotFoundError:
            return True, f"Connected to {client.settings.wire.TITLE} at {client.settings.base_url} (key accepted)"
        return True, f"Connected to {client.settings.base_url}"

    # -- async (triggerer) -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def ashared_client(self) -> AsyncIterator[AsyncLumaClient]:
        """Borrow the event loop's shared async client for this connection.

        All triggers of one connection in one triggerer use one ``httpx.AsyncClient`` (one connection pool), which
        is what keeps a thousand concurrent renders cheap. The client is closed when its last user returns it.
        """
        settings = await self.aget_settings()
        clients = _SHARED_CLIENTS.setdefault(asyncio.get_running_loop(), {})
        key = _fingerprint(settings)
        entry = clients.get(key)
        if entry is None or entry[0].is_closed:
            entry = clients[key] = [AsyncLumaClient(settings), 0]
        entry[1] += 1
        try:
            yield entry[0]
        finally:
            entry[1] -= 1
            if entry[1] == 0 and clients.get(key) is entry:
                del clients[key]
                await entry[0].aclose()

    async def aget_generation(self, request_id: str, model: str | None = None) -> Job:
        """Async :meth:`get_generation` through the shared client."""
        async with self.ashared_client() as client:
            return await client.aget_generation(request_id, model)

    async def asubmit_generation(self, spec: RenderSpec) -> Job:
        """Async :meth:`submit_generation` through the shared client."""
        async with self.ashared_client() as client:
            return await client.asubmit(spec)

"""One module per wire format: each turns a spec'd request into an HTTP call and a body into a :class:`Job`.

A backend is a module with the attributes and functions of :class:`Backend`; :func:`backend_named` finds one by
name. GMI Cloud's request queue is :mod:`.gmi`; the native Luma Agents API is :mod:`.luma_agents`. The connection's
extra ``api`` picks one. Whatever differs between the two (default URL, auth header, price source, how a render
is looked up, how a connection is probed) is an attribute here: no code outside this package asks which backend
it is talking to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

    from airflow_provider_luma.core.backends.common import Call
    from airflow_provider_luma.core.errors import LumaAPIError
    from airflow_provider_luma.core.jobs import Job
    from airflow_provider_luma.core.specs.base import RenderSpec


class Backend(Protocol):
    """What the HTTP client needs from a wire-format module."""

    NAME: str
    """The connection extra ``api`` that picks it, also the durable record's and the XCom's ``backend``."""
    TITLE: str
    """What it is, for messages (``"GMI Cloud's request queue"``)."""
    DEFAULT_BASE_URL: str
    """The public API's base URL (a connection without a host uses it)."""
    API_PATH: str
    """The base URL's path, appended to a connection host given without one."""
    KEY_NAME: str
    """What the connection's Password must hold, for messages (``"GMI Cloud API key"``)."""
    ORGANIZATION_HEADER: str | None
    """The header that carries the connection's ``organization_id``; ``None``: the API has none (not sent)."""
    LISTS_MODELS: bool
    """``build_list_models`` lists the key's models (else it is a probe whose 404 means "key accepted")."""
    POLLS_BY_GENERATION_ID: bool
    """A generation id is the poll key (so a sensor given only a generation id can find the render)."""
    NO_PRICE: str
    """Why a model without built-in or connection prices is unpriced here; ``%s`` is the model id."""
    LINEAGE_SCHEME: str
    """The OpenLineage namespace scheme of generations bought here (``luma-gmi``)."""

    def build_submit(self, spec: RenderSpec) -> Call: ...
    def build_get(self, request_id: str, model: str | None = None) -> Call: ...
    def build_list_models(self) -> Call: ...
    def decode_response(self, response: httpx.Response, call: Call, api_key: str = "") -> Any: ...
    def error_for_response(self, response: httpx.Response, call: Call, api_key: str = "") -> LumaAPIError: ...
    def to_job(self, body: Any, call: Call, headers: Any = None) -> Job: ...
    def model_ids(self, body: Any) -> list[str]: ...
    def unsupported(self, spec: RenderSpec) -> list[str]: ...


def backend_named(name: str) -> Backend:
    """The wire-format module for ``name`` (``"gmi"`` or ``"luma_agents"``).

    :raises ValueError: for a name no module implements.
    """
    from airflow_provider_luma.core.backends import gmi, luma_agents

    backends: dict[str, Any] = {gmi.NAME: gmi, luma_agents.NAME: luma_agents}
    if name not in backends:
        raise ValueError(f"unknown Luma backend {name!r}; known: {', '.join(sorted(backends))}")
    backend: Backend = backends[name]
    return backend


BACKEND_NAMES = ("gmi", "luma_agents")
"""Every backend's :attr:`Backend.NAME`."""

DEFAULT_BACKEND = "gmi"
"""What a connection without an ``api`` extra speaks (and what 0.1 records and triggers were bought on)."""

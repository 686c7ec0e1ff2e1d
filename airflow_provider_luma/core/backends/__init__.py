"""One module per wire format: each turns a spec'd request into an HTTP call and a body into a :class:`Job`.

A backend is a module with the functions of :class:`Backend`; :data:`BACKENDS` names them. GMI Cloud's
request queue is :mod:`.gmi`; the native Luma Agents API is :mod:`.luma_agents`. The connection's extra ``api``
picks one.
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

"""The native Luma Agents API front: ``POST /v1/generations`` and ``GET /v1/generations/{id}``.

It speaks Luma's wire format over the same :class:`LumaSimulator` state as the GMI front: a request is checked
with the native tables (:mod:`._native_rules`), becomes the same internal job a GMI request would, and is shown
as a ``Generation`` object (:func:`._views.generation_view`). Errors are ``{"detail": message}``; every answer
carries ``X-Request-Id`` (the client's, echoed, or a fresh UUID) and ``X-API-Version``.
"""

from __future__ import annotations

import uuid
from typing import Final

from airflow_provider_luma.testing._faults import FaultTarget
from airflow_provider_luma.testing._reply import Call, FrontBase, Reply, json_reply, parse_body
from airflow_provider_luma.testing._types import Api

NATIVE_BASE_PATH: Final = "/v1"
"""Where the native API lives, as on ``agents.lumalabs.ai``."""

API_VERSION: Final = "2026-04-01"
"""The ``X-API-Version`` response header (informational; clients send no version)."""

_GENERATIONS: Final = NATIVE_BASE_PATH + "/generations"


class NativeFront(FrontBase):
    """Luma's native API over a :class:`LumaSimulator`; errors are ``{"detail": message}``."""

    api: Api = "luma_agents"
    base_path = NATIVE_BASE_PATH
    error_key = "detail"

    def route(self, method: str, path: str) -> tuple[FaultTarget | None, str | None]:
        """``submit`` for ``POST /v1/generations``, ``poll`` (and the generation id) for ``GET …/{id}``."""
        if path == _GENERATIONS:
            return ("submit" if method == "POST" else None), None
        generation_id = path[len(_GENERATIONS) + 1 :] if path.startswith(_GENERATIONS + "/") else ""
        if generation_id and "/" not in generation_id:
            return ("poll" if method in ("GET", "HEAD") else None), generation_id
        return None, None

    def log_id(self, path_id: str | None) -> str | None:
        """The request id of the job behind the generation id in the path (``None`` when there is none)."""
        return self.simulator.request_id_of(path_id) if path_id else None

    def process(self, call: Call) -> Reply:
        """Answer one call to the native API."""
        sim = self.simulator
        if not call.authorized:
            return json_reply(401, {"detail": "Invalid API key"})
        if call.target == "submit":
            created, headers = sim.submit_native(parse_body(call.body), owner=call.owner)
            return json_reply(201, created, headers, request_id=sim.request_id_of(created["id"]))
        if call.target == "poll" and call.path_id is not None:
            body = sim.get_generation(call.path_id, owner=call.owner, root_url=call.root_url)
            return json_reply(200, body, request_id=self.log_id(call.path_id))
        if self.route("GET", call.path)[0] or self.route("POST", call.path)[0]:
            return json_reply(405, {"detail": "Method Not Allowed"})
        return json_reply(404, {"detail": "Not Found"})

    def finish(self, reply: Reply, call: Call) -> None:
        """Add ``X-Request-Id`` and ``X-API-Version``, which Luma sends on every answer."""
        reply.headers["X-Request-Id"] = call.headers.get("X-Request-Id") or str(uuid.uuid4())
        reply.headers["X-API-Version"] = API_VERSION

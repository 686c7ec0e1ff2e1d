"""The GMI Cloud request-queue front: ``POST /requests``, ``GET /requests/{id}`` and ``GET /models``.

Routing and answers only; every decision about requests and renders is the simulator's.
"""

from __future__ import annotations

from typing import Final

from airflow_provider_luma.testing._faults import FaultTarget
from airflow_provider_luma.testing._reply import Call, FrontBase, Reply, json_reply, parse_body
from airflow_provider_luma.testing._types import Api

BASE_PATH: Final = "/api/v1/ie/requestqueue/apikey"
"""Where the request-queue API lives, as on ``console.gmicloud.ai``."""

METHODS_OF: Final[dict[FaultTarget, tuple[str, ...]]] = {
    "submit": ("POST",),
    "poll": ("GET", "HEAD"),
    "models": ("GET", "HEAD"),
    "download": ("GET", "HEAD"),
}
"""The methods each endpoint answers; another method on its path is a 405."""


class GmiFront(FrontBase):
    """GMI's request queue over a :class:`LumaSimulator`; errors are ``{"error": message}``."""

    api: Api = "gmi"
    base_path = BASE_PATH
    error_key = "error"

    def route(self, method: str, path: str) -> tuple[FaultTarget | None, str | None]:
        """The endpoint a request is for (``None`` when it names none) and the request id in its path."""
        target: FaultTarget | None = None
        request_id = None
        rest = path[len(BASE_PATH) :]
        if rest == "/requests":
            target = "submit"
        elif rest.startswith("/requests/") and rest.count("/") == 2 and len(rest) > 10:
            target, request_id = "poll", rest[len("/requests/") :]
        elif rest == "/models":
            target = "models"
        return (target if target is None or method in METHODS_OF[target] else None), request_id

    def log_id(self, path_id: str | None) -> str | None:
        """GMI's paths name the request id itself."""
        return path_id

    def process(self, call: Call) -> Reply:
        """Answer one call to the request queue."""
        sim = self.simulator
        if not call.authorized:
            return json_reply(401, {"error": "Invalid API key"}, request_id=call.path_id)
        if call.target == "submit":
            created, headers = sim.submit(parse_body(call.body), owner=call.owner)
            return json_reply(200, created, headers, request_id=created["request_id"])
        if call.target == "poll" and call.path_id is not None:
            body = sim.get_request(call.path_id, root_url=call.root_url)
            return json_reply(200, body, request_id=call.path_id)
        if call.target == "models":
            return json_reply(200, sim.models())
        if self.route("GET", call.path)[0] or self.route("POST", call.path)[0]:
            return json_reply(405, {"error": "Method not allowed"}, request_id=call.path_id)
        return json_reply(404, {"error": "Not found"})

    def finish(self, reply: Reply, call: Call) -> None:
        """GMI adds no headers of its own."""

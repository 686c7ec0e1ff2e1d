"""What the HTTP layer hands a front (:class:`Call`) and what a front hands back (:class:`Reply`).

Pure data and helpers shared by the GMI front (:mod:`._gmi`), the native front (:mod:`._native`) and the server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_luma.testing._media import MediaBody
from airflow_provider_luma.testing._types import SimulatorError

if TYPE_CHECKING:
    from airflow_provider_luma.testing._faults import FaultTarget
    from airflow_provider_luma.testing._state import LumaSimulator
    from airflow_provider_luma.testing._types import Api


@dataclass
class Reply:
    """What to send: ``status=None`` closes the connection without an answer."""

    status: int | None
    body: bytes | MediaBody = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str | None = None  # the internal request id, for the request log
    fault: str | None = None
    cut_after: int | None = None  # hang up after this many body bytes (the cut_body fault)


@dataclass(frozen=True)
class Call:
    """One API request as a front sees it.

    :param target: the endpoint it is for (``None`` when it names none); ``path_id``: the id in its path.
    :param authorized: whether it carried the server's Bearer key; ``owner``: that key's fingerprint.
    :param root_url: where media URLs minted for it must point.
    """

    method: str
    path: str
    body: bytes
    headers: Message
    target: FaultTarget | None
    path_id: str | None
    authorized: bool
    owner: str
    root_url: str


class Front(Protocol):
    """One API a server speaks over the shared state: its routes, answers and error body shape."""

    api: Api
    base_path: str
    error_key: str  # the key of a JSON error body's message
    simulator: LumaSimulator

    def route(self, method: str, path: str) -> tuple[FaultTarget | None, str | None]:
        """The endpoint a request under :attr:`base_path` is for (``None`` for none) and the id in its path."""

    def log_id(self, path_id: str | None) -> str | None:
        """The internal request id to log for the id in a path."""

    def process(self, call: Call) -> Reply:
        """The answer to an API call (auth included). May raise :class:`SimulatorError`."""

    def finish(self, reply: Reply, call: Call) -> None:
        """Add the headers this API puts on every answer (faulted ones included)."""


class FrontBase:
    """What every front shares: the simulator it serves (a :class:`Front` adds its routes and answers)."""

    def __init__(self, simulator: LumaSimulator) -> None:
        self.simulator = simulator


def json_reply(status: int, obj: Any, headers: dict[str, str] | None = None, request_id: str | None = None) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(obj).encode(), "application/json", dict(headers or {}), request_id)


def error_reply(exc: SimulatorError, key: str = "error", request_id: str | None = None) -> Reply:
    """The answer of a :class:`SimulatorError`, its message under ``key``."""
    body, content_type = exc.render(key)
    return Reply(exc.status, body, content_type, exc.headers, request_id)


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``, or ``None`` when it is empty or not JSON."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def parse_body(body: bytes) -> Any:
    """The JSON value of a create request's body.

    :raises SimulatorError: 400 "Request body is not valid JSON".
    """
    try:
        return json.loads(body)
    except ValueError:
        raise SimulatorError(400, "Request body is not valid JSON") from None

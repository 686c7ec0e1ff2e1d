"""What goes over the wire: request builders and the one response/error mapper, shared by both clients.

Pure functions of ``httpx.Response`` objects: no sockets, no sleeping, no Airflow. Server text that reaches an
exception is passed through :func:`scrub` so the API key can never leak through an echoing server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from airflow_provider_luma._retry import parse_retry_after
from airflow_provider_luma.exceptions import (
    LumaAPIError,
    LumaAuthError,
    LumaBadRequestError,
    LumaInsufficientCreditsError,
    LumaNotFoundError,
    LumaRateLimitError,
    LumaResponseError,
    LumaServerError,
    LumaSubmissionOutcomeUnknown,
)
from airflow_provider_luma.models import MODEL_ID, Generation, VideoRequest, parse_generation

# -- requests ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One API call: which retry rule applies, and what to send."""

    kind: Literal["submit", "poll"]
    method: str
    path: str
    json: dict[str, Any] | None = None
    request_id: str | None = None


def build_submit(request: VideoRequest) -> Call:
    """``POST /requests`` with the payload fields the caller set."""
    return Call("submit", "POST", "/requests", json={"model": MODEL_ID, "payload": request.to_payload()})


def build_get(request_id: str) -> Call:
    """``GET /requests/{request_id}``."""
    if not request_id or "/" in request_id:
        raise ValueError(f"invalid request id {request_id!r}")
    return Call("poll", "GET", f"/requests/{request_id}", request_id=request_id)


def build_list_models() -> Call:
    """``GET /models``, used by the connection test."""
    return Call("poll", "GET", "/models")


# -- responses and errors ------------------------------------------------------------------------------------

_STATUS_ERRORS: dict[int, type[LumaAPIError]] = {
    400: LumaBadRequestError,
    401: LumaAuthError,
    402: LumaInsufficientCreditsError,
    403: LumaAuthError,
    404: LumaNotFoundError,
    413: LumaBadRequestError,
    422: LumaBadRequestError,
}


def server_message(response: httpx.Response, api_key: str = "") -> str:
    """The server's error text (``error``/``detail``/``message``), or a short description of the body."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail")
            if value:
                text = str(value)
                break
    if not text:
        raw = response.text.strip()
        ctype = response.headers.get("content-type", "")
        if "html" in ctype or raw.lower().startswith(("<!doctype", "<html")):
            text = f"HTML error page ({len(raw)} bytes) instead of JSON"
        else:
            text = raw[:200] or response.reason_phrase or "empty body"
    return scrub(text, api_key)


def scrub(text: str, secret: str) -> str:
    """Remove a secret from text that may reach logs or exceptions."""
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def error_for_response(response: httpx.Response, call: Call, api_key: str = "") -> LumaAPIError:
    """Map an HTTP error response to the exception tree."""
    status, message = response.status_code, server_message(response, api_key)
    if status == 429:
        concurrency = "concurren" in message.lower()
        return LumaRateLimitError(
            message,
            request_id=call.request_id,
            retry_after=parse_retry_after(response.headers.get("retry-after"), time.time()),
            kind="concurrency" if concurrency else "rpm",
        )
    cls = _STATUS_ERRORS.get(status, LumaServerError)
    return cls(message, status_code=status, request_id=call.request_id)


def decode_response(response: httpx.Response, call: Call, api_key: str = "") -> Any:
    """Return the JSON of a 2xx response, or raise the mapped error."""
    if response.status_code >= 400:
        raise error_for_response(response, call, api_key)
    try:
        return response.json()
    except ValueError:
        snippet = scrub(response.text[:120], api_key)
        problem = f"{call.method} {call.path} returned HTTP {response.status_code} with a non-JSON body: {snippet!r}"
        if call.kind == "submit":
            raise LumaSubmissionOutcomeUnknown(
                problem + ". The request may have been accepted (and billed); it is not resent automatically."
            ) from None
        raise LumaResponseError(problem, status_code=response.status_code) from None


def to_generation(body: Any, call: Call) -> Generation:
    """Parse a create/get body; an unreadable one is a response error (ambiguous on submit)."""
    try:
        return parse_generation(body, request_id=call.request_id)
    except ValueError as exc:
        problem = f"{call.method} {call.path}: unreadable request record ({exc})"
        if call.kind == "submit":
            raise LumaSubmissionOutcomeUnknown(problem + "; the request may have been accepted.") from None
        raise LumaResponseError(problem) from None


def model_ids(body: Any) -> list[str]:
    """The ``model_ids`` of a ``GET /models`` body (empty when the shape is unexpected)."""
    ids = body.get("model_ids") if isinstance(body, dict) else None
    return [str(m) for m in ids] if isinstance(ids, list) else []

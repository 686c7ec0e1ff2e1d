"""What every wire format shares: the call description, streamed JSON bodies, and the HTTP error mapper.

Pure functions of ``httpx.Response`` objects: no sockets, no sleeping, no Airflow. Server text that reaches an
exception is passed through :func:`scrub` so the API key can never leak through an echoing server. GMI's queue
answers errors as ``{"error": ...}`` and Luma's own API as ``{"detail": ...}``; both map by status code alike.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final, Literal

import httpx

from airflow_provider_luma.core.errors import (
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
from airflow_provider_luma.core.retry import parse_retry_after
from airflow_provider_luma.core.specs.source import READ_CHUNK, VideoFile

# -- requests ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamedBody:
    """A JSON body whose one big string (an inline video, base64) is streamed from a file, never held in memory.

    ``prefix`` + ``"`` + base64(file) + ``"`` + ``suffix`` is the exact JSON; :meth:`chunks` can be called again
    for a retry (a create is retried only when it provably was not sent).
    """

    prefix: bytes
    suffix: bytes
    opener: Callable[[], BinaryIO]
    size: int

    @property
    def length(self) -> int:
        """Bytes on the wire (for ``Content-Length``)."""
        return len(self.prefix) + len(self.suffix) + 2 + 4 * ((self.size + 2) // 3)

    def chunks(self) -> Iterator[bytes]:
        """The body in pieces of about 1.3 MiB; the file is read in multiples of 3 bytes so pieces join."""
        yield self.prefix + b'"'
        step = (READ_CHUNK // 3) * 3
        with self.opener() as handle:
            while piece := handle.read(step):
                while len(piece) % 3 and (more := handle.read(3 - len(piece) % 3)):
                    piece += more
                yield base64.b64encode(piece)
        yield b'"' + self.suffix


@dataclass(frozen=True)
class Call:
    """One API call: which retry rule applies, and what to send.

    :param model: the GMI-style model id the call is about (the poll key alone does not say it on every wire).
    :param stream: a body streamed from a file instead of ``json``.
    :param headers: extra request headers (e.g. our own ``X-Request-Id`` on a native create).
    """

    kind: Literal["submit", "poll"]
    method: str
    path: str
    json: dict[str, Any] | None = None
    request_id: str | None = None
    model: str | None = None
    stream: StreamedBody | None = None
    headers: dict[str, str] = field(default_factory=dict)


STREAM_MARK: Final = "\u0000luma-inline-video\u0000"


def json_or_streamed(
    body: dict[str, Any], video: VideoFile | None
) -> tuple[dict[str, Any] | None, StreamedBody | None]:
    """``body`` as JSON, or, when it holds :data:`STREAM_MARK` where an inline video goes, as a streamed body."""
    if video is None:
        return body, None
    prefix, _, suffix = json.dumps(body, separators=(",", ":")).partition(json.dumps(STREAM_MARK))
    return None, StreamedBody(prefix.encode(), suffix.encode(), video.opener, video.size)


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


def url_problems(video_url: str | None, exr_url: str | None) -> list[str]:
    """Media URLs from a body that must not be opened (https only; http only to loopback), one line each."""
    from airflow_provider_luma.core.media import media_url_problem

    problems = []
    for what, url in (("video URL", video_url), ("EXR URL", exr_url)):
        problem = media_url_problem(url) if url else None
        if problem:
            problems.append(f"the {what} is not opened: {problem}")
    return problems


def first_str(*values: object) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None

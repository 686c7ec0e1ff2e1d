"""GMI Cloud's request queue: ``POST /requests {"model", "payload"}``, ``GET /requests/{request_id}``.

The request builders and the one response/error mapper, shared by the sync and async clients. Pure functions of
``httpx.Response`` objects: no sockets, no sleeping, no Airflow. Server text that reaches an exception is passed
through :func:`scrub` so the API key can never leak through an echoing server.

Parsing is strict where it matters and tolerant only where GMI's docs are silent: the status-response JSON for
Luma models is not published, so a success body's ``generation_id`` and video URL are looked for at the top level,
in ``outcome`` and in ``outcome.media_urls[]`` (every layout seen in GMI's and third-party clients). But a success
with no generation id or no video URL, a body without a ``status``, or a media URL that is not https (http only to
a loopback host) is an error, never an empty success. The status vocabulary is mapped here and nowhere else.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, Final, Literal
from urllib.parse import urlsplit

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
from airflow_provider_luma.core.jobs import Job, JobStatus
from airflow_provider_luma.core.media import media_url_problem
from airflow_provider_luma.core.retry import parse_retry_after
from airflow_provider_luma.core.specs.base import RenderSpec
from airflow_provider_luma.core.specs.source import READ_CHUNK

NAME: Final = "gmi"

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
    """One API call: which retry rule applies, and what to send."""

    kind: Literal["submit", "poll"]
    method: str
    path: str
    json: dict[str, Any] | None = None
    request_id: str | None = None
    model: str | None = None
    stream: StreamedBody | None = None


_STREAM_MARK: Final = "\u0000luma-inline-video\u0000"


def build_submit(spec: RenderSpec) -> Call:
    """``POST /requests`` with the payload fields the caller set; an inline video is streamed as ``source_data``."""
    payload = spec.payload()
    body: dict[str, Any] = {"model": spec.MODEL_ID, "payload": payload}
    video = getattr(spec, "source_video", None)
    if video is None:
        return Call("submit", "POST", "/requests", json=body, model=spec.MODEL_ID)
    payload["source_data"] = _STREAM_MARK
    prefix, _, suffix = json.dumps(body, separators=(",", ":")).partition(json.dumps(_STREAM_MARK))
    stream = StreamedBody(prefix.encode(), suffix.encode(), video.opener, video.size)
    return Call("submit", "POST", "/requests", model=spec.MODEL_ID, stream=stream)


def build_get(request_id: str, model: str | None = None) -> Call:
    """``GET /requests/{request_id}``."""
    if not request_id or "/" in request_id:
        raise ValueError(f"invalid request id {request_id!r}")
    return Call("poll", "GET", f"/requests/{request_id}", request_id=request_id, model=model)


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


# -- the status vocabulary and the job parser ----------------------------------------------------------------

_STATUSES: Final[dict[str, JobStatus]] = {
    "created": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "pending": JobStatus.QUEUED,
    "dispatched": JobStatus.QUEUED,
    "processing": JobStatus.PROCESSING,
    "running": JobStatus.PROCESSING,
    "success": JobStatus.SUCCESS,
    # Luma's own word and plausible spellings: undocumented for GMI, so map them rather than poll forever.
    "completed": JobStatus.SUCCESS,
    "succeeded": JobStatus.SUCCESS,
    "complete": JobStatus.SUCCESS,
    "failed": JobStatus.FAILED,
    "error": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "canceled": JobStatus.CANCELLED,
}


def normalize_status(raw: object) -> JobStatus:
    """Map a raw ``status`` value to :class:`JobStatus`; anything unrecognised is ``UNKNOWN``."""
    return _STATUSES.get(str(raw or "").strip().lower(), JobStatus.UNKNOWN)


def to_job(body: Any, call: Call) -> Job:
    """Parse a create or get body into a :class:`Job`; an unreadable one is a response error (ambiguous on
    submit, unless the body names its request id: then the render is ours and polling decides)."""
    try:
        return parse_job(body, request_id=call.request_id, model=call.model, strict=call.kind == "poll")
    except ValueError as exc:
        problem = f"{call.method} {call.path}: unusable request record ({exc})"
        if call.kind == "submit":
            raise LumaSubmissionOutcomeUnknown(problem + "; the request may have been accepted.") from None
        raise LumaResponseError(problem) from None


def parse_job(body: Any, *, request_id: str | None = None, model: str | None = None, strict: bool = True) -> Job:
    """Read one request-queue record.

    :param request_id: the id we asked about; used when the body does not repeat it.
    :param strict: a poll answer (``True``) must be complete; a create answer that names its request id but is
        otherwise incomplete is kept as ``unknown`` (the render is ours; the next poll is strict).
    :raises ValueError: not a JSON object, no request id, and (strict) no status, or a success without a
        generation id or a usable video URL.
    """
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    raw_outcome = body.get("outcome")
    outcome: dict[str, Any] = raw_outcome if isinstance(raw_outcome, dict) else {}
    rid = _first_str(body.get("request_id"), request_id)
    if not rid:
        raise ValueError("response has no request_id")
    raw_status = _first_str(body.get("status")) or ""
    status = normalize_status(raw_status)
    job = Job(
        request_id=rid,
        status=status,
        backend=NAME,
        model=model or _first_str(body.get("model")),
        raw_status=raw_status,
        generation_id=_first_str(body.get("generation_id"), outcome.get("generation_id"), outcome.get("id")),
        error=_error_text(body, outcome),
        failure_code=_first_str(body.get("failure_code"), outcome.get("failure_code")),
    )
    problems: list[str] = [] if raw_status else ["no status"]
    if status is JobStatus.SUCCESS:
        video_url, exr_url = _media_urls(body, outcome)
        problems += _success_problems(job.generation_id, video_url, exr_url)
        job = replace(job, video_url=video_url, exr_url=exr_url)
    if problems:
        if strict:
            raise ValueError("; ".join(problems))
        return replace(job, status=JobStatus.UNKNOWN, video_url=None, exr_url=None)
    return job


def _success_problems(generation_id: str | None, video_url: str | None, exr_url: str | None) -> list[str]:
    problems = []
    if not generation_id:
        problems.append("status success without a generation_id")
    if not video_url:
        problems.append("status success without a video URL")
    for what, url in (("video URL", video_url), ("EXR URL", exr_url)):
        problem = media_url_problem(url) if url else None
        if problem:
            problems.append(f"the {what} is not opened: {problem}")
    return problems


def model_ids(body: Any) -> list[str]:
    """The ``model_ids`` of a ``GET /models`` body (empty when the shape is unexpected)."""
    ids = body.get("model_ids") if isinstance(body, dict) else None
    return [str(m) for m in ids] if isinstance(ids, list) else []


def _first_str(*values: object) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _is_exr(url: str, kind: object = None) -> bool:
    return urlsplit(url).path.lower().endswith(".exr") or "exr" in str(kind or "").lower()


def _media_urls(body: dict[str, Any], outcome: dict[str, Any]) -> tuple[str | None, str | None]:
    """Find the MP4 and EXR URLs: top level, ``outcome.*`` or ``outcome.media_urls[].url``."""
    video = _first_str(body.get("video_url"), outcome.get("video_url"))
    exr = _first_str(body.get("exr_url"), outcome.get("exr_url"))
    entries = outcome.get("media_urls") or body.get("media_urls") or []
    for entry in entries if isinstance(entries, list) else []:
        url = entry.get("url") if isinstance(entry, dict) else entry
        if not isinstance(url, str) or not url:
            continue
        kind = entry.get("type") if isinstance(entry, dict) else None
        if _is_exr(url, kind):
            exr = exr or url
        else:
            video = video or url
    video = video or _first_str(outcome.get("url"))
    return video, exr


def _error_text(body: dict[str, Any], outcome: dict[str, Any]) -> str | None:
    for candidate in (
        body.get("error"),
        body.get("detail"),
        outcome.get("error"),
        body.get("failure_reason"),
        outcome.get("failure_reason"),
        body.get("message"),
    ):
        if isinstance(candidate, dict):
            candidate = candidate.get("message") or candidate.get("detail")
        text = _first_str(candidate)
        if text:
            return text
    return None

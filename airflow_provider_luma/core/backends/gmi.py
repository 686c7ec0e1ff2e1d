"""GMI Cloud's request queue: ``POST /requests {"model", "payload"}``, ``GET /requests/{request_id}``.

The request builders and the job parser for this wire, shared by the sync and async clients; the error mapper is
:mod:`.common`'s (GMI answers ``{"error": ...}``). Pure: no sockets, no sleeping, no Airflow.

Parsing is strict where it matters and tolerant only where GMI's docs are silent: the status-response JSON for
Luma models is not published, so a success body's ``generation_id`` and video URL are looked for at the top level,
in ``outcome`` and in ``outcome.media_urls[]`` (every layout seen in GMI's and third-party clients). But a success
with no generation id or no video URL, a body without a ``status``, or a media URL that is not https (http only to
a loopback host) is an error, never an empty success. The status vocabulary is mapped here and nowhere else.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final
from urllib.parse import urlsplit

from airflow_provider_luma.core.backends.common import (
    STREAM_MARK,
    Call,
    StreamedBody,
    decode_response,
    error_for_response,
    first_str,
    json_or_streamed,
    scrub,
    server_message,
    url_problems,
)
from airflow_provider_luma.core.errors import LumaResponseError, LumaSubmissionOutcomeUnknown
from airflow_provider_luma.core.jobs import Job, JobStatus
from airflow_provider_luma.core.specs.base import RenderSpec

__all__ = [
    "API_PATH", "DEFAULT_BASE_URL", "KEY_NAME", "LINEAGE_SCHEME", "LISTS_MODELS", "NAME", "NO_PRICE",
    "ORGANIZATION_HEADER", "POLLS_BY_GENERATION_ID", "TITLE", "Call", "StreamedBody", "build_get",
    "build_list_models", "build_submit", "decode_response", "error_for_response", "model_ids", "normalize_status",
    "parse_job", "scrub", "server_message", "to_job", "unsupported",
]  # fmt: skip

NAME: Final = "gmi"
TITLE: Final = "GMI Cloud's request queue"
DEFAULT_BASE_URL: Final = "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey"
API_PATH: Final = "/api/v1/ie/requestqueue/apikey"
KEY_NAME: Final = "GMI Cloud API key"
ORGANIZATION_HEADER: Final = "X-Organization-ID"
LISTS_MODELS: Final = True
POLLS_BY_GENERATION_ID: Final = False  # the queue documents no lookup by generation id, only by request id
NO_PRICE: Final = "GMI publishes no price for %s"
LINEAGE_SCHEME: Final = "luma-gmi"

# -- requests ----------------------------------------------------------------------------------------------


def build_submit(spec: RenderSpec) -> Call:
    """``POST /requests`` with the payload fields the caller set; an inline video is streamed as ``source_data``."""
    payload = spec.payload()
    video = getattr(spec, "source_video", None)
    if video is not None:
        payload["source_data"] = STREAM_MARK
    body, stream = json_or_streamed({"model": spec.MODEL_ID, "payload": payload}, video)
    return Call("submit", "POST", "/requests", json=body, model=spec.MODEL_ID, stream=stream)


def build_get(request_id: str, model: str | None = None) -> Call:
    """``GET /requests/{request_id}``."""
    if not request_id or "/" in request_id:
        raise ValueError(f"invalid request id {request_id!r}")
    return Call("poll", "GET", f"/requests/{request_id}", request_id=request_id, model=model)


def build_list_models() -> Call:
    """``GET /models``, used by the connection test."""
    return Call("poll", "GET", "/models")


# -- responses and errors ------------------------------------------------------------------------------------

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


def to_job(body: Any, call: Call, headers: Any = None) -> Job:
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

    :param request_id: the id we asked about; used when the body does not repeat it, and a body naming another
        request is refused (it is not the answer to our question).
    :param strict: a poll answer (``True``) must be complete; a create answer that names its request id but is
        otherwise incomplete is kept as ``unknown`` (the render is ours; the next poll is strict).
    :raises ValueError: not a JSON object, no request id or another request's, and (strict) no status, or a
        success without a generation id or a usable video URL.
    """
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    raw_outcome = body.get("outcome")
    outcome: dict[str, Any] = raw_outcome if isinstance(raw_outcome, dict) else {}
    rid = first_str(body.get("request_id"), request_id)
    if not rid:
        raise ValueError("response has no request_id")
    if request_id and rid != request_id:
        # An answer for another render (a confused proxy, a reused connection, a hostile server): never ours.
        raise ValueError(f"the answer is for request {rid!r}, not the one asked about")
    raw_status = first_str(body.get("status")) or ""
    status = normalize_status(raw_status)
    job = Job(
        request_id=rid,
        status=status,
        backend=NAME,
        model=model or first_str(body.get("model")),
        raw_status=raw_status,
        generation_id=first_str(body.get("generation_id"), outcome.get("generation_id"), outcome.get("id")),
        error=_error_text(body, outcome),
        failure_code=first_str(body.get("failure_code"), outcome.get("failure_code")),
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
    return problems + url_problems(video_url, exr_url)


def model_ids(body: Any) -> list[str]:
    """The ``model_ids`` of a ``GET /models`` body (empty when the shape is unexpected)."""
    ids = body.get("model_ids") if isinstance(body, dict) else None
    return [str(m) for m in ids] if isinstance(ids, list) else []


def _is_exr(url: str, kind: object = None) -> bool:
    return urlsplit(url).path.lower().endswith(".exr") or "exr" in str(kind or "").lower()


def _media_urls(body: dict[str, Any], outcome: dict[str, Any]) -> tuple[str | None, str | None]:
    """Find the MP4 and EXR URLs: top level, ``outcome.*`` or ``outcome.media_urls[].url``."""
    video = first_str(body.get("video_url"), outcome.get("video_url"))
    exr = first_str(body.get("exr_url"), outcome.get("exr_url"))
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
    video = video or first_str(outcome.get("url"))
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
        text = first_str(candidate)
        if text:
            return text
    return None


def unsupported(spec: RenderSpec) -> list[str]:
    """Fields of ``spec`` that GMI's queue does not document (native Luma Agents API only), one line each."""
    hint = 'needs the native Luma Agents API (set "api": "luma_agents" in the Luma connection\'s extra)'
    given = spec.model_dump(exclude_unset=True, exclude_none=True)
    problems = [
        f"{name}: {hint}; GMI's {spec.MODEL_ID} does not take it" for name in sorted(spec.NATIVE_ONLY & given.keys())
    ]
    if spec.resolution_label == "360p":
        problems.append(f"resolution: 360p (the draft tier) {hint}; GMI offers 540p, 720p and 1080p")
    return problems

"""The native Luma Agents API: ``POST {base}/generations`` (201), ``GET {base}/generations/{id}``.

The same specs as GMI's queue (fields named as GMI's payload names them) are mapped onto Luma's nested request
(``luma-api.md`` §2-3): ``model: "ray-3.2"``, ``type`` as each model registers it (``video`` / ``video_edit`` /
``video_reframe``; :mod:`airflow_provider_luma.core.specs.registry`), the prompt when the model takes one, the video
settings under ``video``, frames and sources as image refs (``{"url"}`` / ``{"generation_id"}`` /
``{"data", "media_type"}``), edit settings under ``video.edit``. The answer is a Generation object: ``id`` (both the
poll key and the id later renders chain from), ``state`` queued / processing / completed / failed, ``output[]``
entries by ``type``, ``failure_code`` + ``failure_reason``. Errors are ``{"detail": ...}`` and map like GMI's
(:mod:`.common`). We send an ``X-Request-Id`` of our own on each create; the service echoes it, so a support ticket
can name it. Pure: no sockets, no Airflow.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any, Final

from airflow_provider_luma.core.backends.common import (
    STREAM_MARK,
    Call,
    decode_response,
    error_for_response,
    first_str,
    json_or_streamed,
    url_problems,
)
from airflow_provider_luma.core.errors import LumaResponseError, LumaSubmissionOutcomeUnknown
from airflow_provider_luma.core.jobs import Job, JobStatus
from airflow_provider_luma.core.specs.base import Mode, RenderSpec
from airflow_provider_luma.core.specs.registry import model_info

__all__ = [
    "API_PATH", "DEFAULT_BASE_URL", "KEY_NAME", "LINEAGE_SCHEME", "LISTS_MODELS", "NAME", "NO_PRICE",
    "ORGANIZATION_HEADER", "POLLS_BY_GENERATION_ID", "TITLE", "build_get", "build_list_models", "build_submit",
    "decode_response", "error_for_response", "model_ids", "parse_job", "to_job", "to_request", "unsupported",
]  # fmt: skip

NAME: Final = "luma_agents"
TITLE: Final = "the native Luma Agents API"
DEFAULT_BASE_URL: Final = "https://agents.lumalabs.ai/v1"
API_PATH: Final = "/v1"
KEY_NAME: Final = "Luma API key (luma-api-…)"
ORGANIZATION_HEADER: Final = None
LISTS_MODELS: Final = False  # no list endpoint: build_list_models is a probe (see PROBE_ID)
POLLS_BY_GENERATION_ID: Final = True  # the generation id is the poll key
NO_PRICE: Final = "the Luma Agents API publishes no official video price (for %s)"
LINEAGE_SCHEME: Final = "luma-agents"
NATIVE_MODEL: Final = "ray-3.2"
# A well-formed id that cannot exist: the connection test GETs it (there is no list endpoint); a valid key gets 404.
PROBE_ID: Final = "00000000-0000-4000-8000-000000000000"

_STATES: Final = {
    "queued": JobStatus.QUEUED,
    "processing": JobStatus.PROCESSING,
    "completed": JobStatus.SUCCESS,
    "failed": JobStatus.FAILED,
}
_VIDEO_FIELDS: Final = ("resolution", "duration", "loop", "hdr", "exr_export")


def _ref(value: str) -> dict[str, str]:
    """An image ref: a URL, or a prior generation."""
    return {"url": value} if value.lower().startswith(("http://", "https://")) else {"generation_id": value}


def to_request(spec: RenderSpec) -> dict[str, Any]:
    """The native request body for ``spec`` (an inline video's data is :data:`STREAM_MARK`, streamed later)."""
    return _mapped(spec)[0]


def _mapped(spec: RenderSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """The native body, and the set fields it has no place for (:func:`unsupported` refuses those)."""
    given = spec.model_dump(mode="json", exclude_unset=True, exclude_none=True, exclude=set(spec.NON_PAYLOAD_FIELDS))
    body: dict[str, Any] = {"model": NATIVE_MODEL, "type": model_info(spec.MODEL_ID).native_type}
    for top in ("prompt", "aspect_ratio", "user_id"):
        if top in given:
            body[top] = given.pop(top)
    video: dict[str, Any] = {name: given.pop(name) for name in _VIDEO_FIELDS if name in given}
    for end in ("start", "end"):
        ref = given.pop(f"{end}_frame_url", None) or given.pop(f"{end}_frame_generation_id", None)
        if ref:
            video[f"{end}_frame"] = _ref(ref)
    if "keyframes" in given:
        video["keyframes"] = [_ref(k) for k in given.pop("keyframes")]
        video["keyframe_indexes"] = given.pop("keyframe_indexes", [])
    if "source_generation_id" in given:
        body["source"] = {"generation_id": given.pop("source_generation_id")}
    if getattr(spec, "source_video", None) is not None:
        media_type = given.pop("source_media_type", None) or spec.source_video.media_type  # type: ignore[attr-defined]
        body["source"] = {"data": STREAM_MARK, "media_type": media_type}
    edit = _edit_options(spec, given)
    if edit:
        video["edit"] = edit
    if video:
        body["video"] = video
    return body, given


def _edit_options(spec: RenderSpec, given: dict[str, Any]) -> dict[str, Any]:
    edit: dict[str, Any] = {}
    if "edit_auto_controls" in given:
        edit["auto_controls"] = given.pop("edit_auto_controls")
    if "edit_strength" in given:
        edit["strength"] = given.pop("edit_strength")
    controls: dict[str, Any] = {}
    if given.pop("controls", None) is not None:
        # With defaults: each named control is sent with "enabled": true unless the user said otherwise.
        controls = spec.controls.model_dump(mode="json", exclude_none=True)  # type: ignore[attr-defined]
    pose = given.pop("pose_strength", None)
    if pose:
        # GMI's pose_strength is Luma's video.edit.controls.pose.strength (inferred from the names; luma-api.md §3).
        controls["pose"] = {"enabled": True, "strength": pose}
    if controls:
        edit["controls"] = controls
    return edit


def build_submit(spec: RenderSpec) -> Call:
    """``POST /generations``, with our own ``X-Request-Id``."""
    body, stream = json_or_streamed(to_request(spec), getattr(spec, "source_video", None))
    headers = {"X-Request-Id": str(uuid.uuid4())}
    return Call("submit", "POST", "/generations", json=body, model=spec.MODEL_ID, stream=stream, headers=headers)


def build_get(request_id: str, model: str | None = None) -> Call:
    """``GET /generations/{id}`` (the id is the generation id: the native API has no separate request id)."""
    if not request_id or "/" in request_id:
        raise ValueError(f"invalid generation id {request_id!r}")
    return Call("poll", "GET", f"/generations/{request_id}", request_id=request_id, model=model)


def build_list_models() -> Call:
    """The connection probe: a GET of a generation that cannot exist (404 with a valid key, 401 without)."""
    return build_get(PROBE_ID)


def model_ids(body: Any) -> list[str]:
    """The native API lists no models."""
    return []


def to_job(body: Any, call: Call, headers: Any = None) -> Job:
    """Parse a Generation object; an unusable create answer is ambiguous (it may have been accepted)."""
    try:
        job = parse_job(body, model=call.model, strict=call.kind == "poll", generation_id=call.request_id)
    except ValueError as exc:
        problem = f"{call.method} {call.path}: unusable generation ({exc})"
        if call.kind == "submit":
            raise LumaSubmissionOutcomeUnknown(problem + "; the request may have been accepted.") from None
        raise LumaResponseError(problem) from None
    trace = first_str((headers or {}).get("x-request-id"))
    return replace(job, trace_id=trace or call.headers.get("X-Request-Id"))


def parse_job(body: Any, *, model: str | None = None, strict: bool = True, generation_id: str | None = None) -> Job:
    """Read one Generation object.

    :param strict: a poll answer must be complete; a create answer with an ``id`` is kept even if the rest is not.
    :param generation_id: the id asked about (polls): an answer naming another one is refused.
    :raises ValueError: not an object, no ``id``, the ``id`` of another generation, (strict) no ``state``, or a
        completed one with no usable video.
    """
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    gid = first_str(body.get("id"))
    if not gid:
        raise ValueError("response has no id")
    if generation_id and gid != generation_id:
        # An answer for another render (a confused proxy, a reused connection, a hostile server): never ours.
        raise ValueError(f"the answer is for generation {gid!r}, not the one asked about")
    raw_state = first_str(body.get("state")) or ""
    status = _STATES.get(raw_state.lower(), JobStatus.UNKNOWN)
    video_url, exr_url = _outputs(body.get("output"))
    job = Job(
        request_id=gid,
        status=status,
        backend=NAME,
        model=model,
        raw_status=raw_state,
        generation_id=gid,
        error=first_str(body.get("failure_reason"), body.get("detail")),
        failure_code=first_str(body.get("failure_code")),
    )
    problems = [] if raw_state else ["no state"]
    if status is JobStatus.SUCCESS:
        if not video_url:
            problems.append("state completed without a video output")
        problems += url_problems(video_url, exr_url)
    if problems and strict:
        raise ValueError("; ".join(problems))
    if problems:
        return replace(job, status=JobStatus.UNKNOWN)
    if status is JobStatus.SUCCESS:
        return replace(job, video_url=video_url, exr_url=exr_url)
    return job


def _outputs(output: Any) -> tuple[str | None, str | None]:
    """The video and EXR URLs of ``output[]``: entries by ``type`` (how EXR appears is undocumented: a type or
    a path mentioning ``exr``)."""
    video = exr = None
    for entry in output if isinstance(output, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        kind, url = str(entry.get("type") or "").lower(), entry["url"]
        if "exr" in kind or url.split("?", 1)[0].lower().endswith(".exr"):
            exr = exr or url
        elif kind in ("video", ""):
            video = video or url
    return video, exr


def unsupported(spec: RenderSpec) -> list[str]:
    """What Luma's own docs say the native API cannot do yet, and any field set that this wire has no place for
    (a new model's field is refused, never silently left out), one line each (checked before any request)."""
    problems = [f"{name}: the Luma Agents API request has no field for it" for name in sorted(_mapped(spec)[1])]
    if spec.mode is Mode.INTERPOLATION:
        return problems + [
            "start_frame_generation_id / end_frame_generation_id: the Luma Agents API does not offer interpolation "
            'from a prior generation plus another keyframe yet (its docs: "not available yet"); use a GMI '
            "connection, or keyframes"
        ]
    return problems

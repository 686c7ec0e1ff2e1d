"""Request and response models for ``luma-ray-3-2-generate`` on GMI Cloud's request queue.

Requests are strict (``extra="forbid"``): every rule of the model page is checked here, before any HTTP
request is made or any money is spent. Responses are lenient: the GMI docs do not publish the exact JSON of a
status response for Luma models, so :func:`parse_generation` looks for each field in every place it has been
seen (top level, ``outcome``, ``outcome.media_urls[]``) and keeps whatever else arrives.

This module is pure: no HTTP, no Airflow.
"""

from __future__ import annotations

import enum
import posixpath
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airflow_provider_luma.exceptions import LumaValidationError

_UNSET_TEXTS: Final = ("", "None", "null")


def is_unset(value: object) -> bool:
    """True for ``None`` and for what a missing value renders to in a template: ``""``, ``"None"``, ``"null"``."""
    return value is None or (isinstance(value, str) and value.strip() in _UNSET_TEXTS)


MODEL_ID: Final = "luma-ray-3-2-generate"

VIDEO_ASPECT_RATIOS: Final = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
IMAGE_ONLY_ASPECT_RATIOS: Final = ("3:1", "2:1", "1:2", "1:3")
RESOLUTIONS: Final = ("540p", "720p", "1080p")
DURATIONS: Final = ("5s", "10s")
PROMPT_MAX_CHARS: Final = 6000

# Extensions that clearly name something other than a JPEG/PNG/WebP image. Unknown or missing extensions are
# accepted: many image CDNs serve frames from extension-less URLs.
_NON_FRAME_EXTENSIONS: Final = frozenset(
    {
        "gif", "bmp", "tif", "tiff", "svg", "heic", "heif", "avif", "ico", "psd", "raw", "exr",
        "mp4", "mov", "m4v", "webm", "mkv", "avi", "wmv", "flv", "mpg", "mpeg", "3gp",
        "mp3", "wav", "ogg", "pdf", "txt", "html", "htm", "json", "zip",
    }
)  # fmt: skip


class Mode(enum.StrEnum):
    """What kind of render a request asks for, derived from which keyframes are set."""

    TEXT_TO_VIDEO = "text_to_video"
    IMAGE_TO_VIDEO = "image_to_video"
    EXTEND_FORWARD = "extend_forward"
    EXTEND_BACKWARD = "extend_backward"
    INTERPOLATION = "interpolation"


class VideoRequest(BaseModel):
    """The ``payload`` of a ``luma-ray-3-2-generate`` request, with every documented rule enforced.

    Build it with :meth:`from_params` to get a :class:`LumaValidationError` that names the fields and the rule
    instead of a raw pydantic error. Fields the caller did not set are left out of :meth:`to_payload`, so the
    service applies its own defaults and no ``null`` is ever sent.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    prompt: str = Field(description="Text description of the video, 1-6000 characters, not blank.")
    aspect_ratio: str = Field("16:9", description="One of 9:16, 3:4, 1:1, 4:3, 16:9, 21:9.")
    resolution: Literal["540p", "720p", "1080p"] = Field("720p", description="540p, 720p or 1080p.")
    duration: Literal["5s", "10s"] = Field("5s", description="5s or 10s (10s bills as two 5-s blocks).")
    hdr: bool = Field(False, description="HDR-encoded MP4; needs 720p/1080p, 5s, no loop, not on extend.")
    exr_export: bool = Field(False, description="EXR file alongside the MP4; needs hdr=true.")
    loop: bool = Field(False, description="Seamless loop; not with 10s, hdr or an end frame.")
    start_frame_url: str | None = Field(None, description="http(s) URL of a JPEG/PNG/WebP start frame.")
    end_frame_url: str | None = Field(None, description="http(s) URL of a JPEG/PNG/WebP end frame.")
    start_frame_generation_id: str | None = Field(None, description="Prior generation as start (extend fwd).")
    end_frame_generation_id: str | None = Field(None, description="Prior generation as end (extend back).")

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        if not value:
            raise ValueError("prompt must not be blank (1-6000 characters)")
        if len(value) > PROMPT_MAX_CHARS:
            raise ValueError(f"prompt is {len(value)} characters; the limit is 1-{PROMPT_MAX_CHARS} characters")
        return value

    @field_validator("aspect_ratio")
    @classmethod
    def _check_aspect_ratio(cls, value: str) -> str:
        if value in IMAGE_ONLY_ASPECT_RATIOS:
            raise ValueError(f"aspect_ratio {value!r} is image-only; video accepts {', '.join(VIDEO_ASPECT_RATIOS)}")
        if value not in VIDEO_ASPECT_RATIOS:
            raise ValueError(f"aspect_ratio {value!r} is not one of {', '.join(VIDEO_ASPECT_RATIOS)}")
        return value

    @field_validator("start_frame_url", "end_frame_url")
    @classmethod
    def _check_frame_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL; frames must be JPEG/PNG/WebP images on http(s)")
        ext = posixpath.splitext(parts.path)[1].lower().lstrip(".")
        if ext in _NON_FRAME_EXTENSIONS:
            raise ValueError(f"{value!r} names a .{ext} file; frames must be JPEG, PNG or WebP images")
        return value

    @field_validator("start_frame_generation_id", "end_frame_generation_id")
    @classmethod
    def _check_generation_id(cls, value: str | None) -> str | None:
        # The model page documents "" as the default, i.e. "not set".
        if not value:
            return None
        if value in ("None", "null"):
            raise ValueError(
                f"generation id is the string {value!r}: the upstream XCom it was templated from is probably missing"
            )
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> VideoRequest:
        problems = _combination_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- derived facts -----------------------------------------------------------------------------------

    @property
    def has_start_frame(self) -> bool:
        """True when a start keyframe is set, as a URL or as a generation id."""
        return bool(self.start_frame_url or self.start_frame_generation_id)

    @property
    def has_end_frame(self) -> bool:
        """True when an end keyframe is set, as a URL or as a generation id."""
        return bool(self.end_frame_url or self.end_frame_generation_id)

    @property
    def mode(self) -> Mode:
        """The render mode implied by the keyframes."""
        return derive_mode(self)

    @property
    def chained_generation_ids(self) -> list[str]:
        """The prior generations this request chains from (empty for text/image-to-video)."""
        return [g for g in (self.start_frame_generation_id, self.end_frame_generation_id) if g]

    def to_payload(self) -> dict[str, Any]:
        """The JSON ``payload`` to send: only fields the caller set, never ``null``."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)

    @classmethod
    def from_params(cls, **params: Any) -> VideoRequest:
        """Build and validate a request; ``None`` values mean "not set".

        :raises LumaValidationError: naming every field and rule that the parameters break.
        """
        given = {k: v for k, v in params.items() if v is not None}
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            raise LumaValidationError.from_pydantic(exc) from None


def derive_mode(request: VideoRequest) -> Mode:
    """Derive the render mode from which keyframes a request sets."""
    start_gen, end_gen = request.start_frame_generation_id, request.end_frame_generation_id
    if request.has_start_frame and request.has_end_frame and (start_gen or end_gen):
        return Mode.INTERPOLATION
    if start_gen and not request.has_end_frame and not request.start_frame_url:
        return Mode.EXTEND_FORWARD
    if end_gen and not request.has_start_frame and not request.end_frame_url:
        return Mode.EXTEND_BACKWARD
    if request.start_frame_url or request.end_frame_url:
        return Mode.IMAGE_TO_VIDEO
    return Mode.TEXT_TO_VIDEO


def _combination_problems(r: VideoRequest) -> list[str]:
    """Every cross-field rule of the model page that ``r`` breaks, each naming its fields."""
    p: list[str] = []
    if r.start_frame_url and r.start_frame_generation_id:
        p.append("start_frame_url and start_frame_generation_id are both set: give the start frame one way only")
    if r.end_frame_url and r.end_frame_generation_id:
        p.append("end_frame_url and end_frame_generation_id are both set: give the end frame one way only")
    if r.hdr and r.resolution == "540p":
        p.append("hdr=true is not available at resolution=540p (HDR needs 720p or 1080p)")
    if r.exr_export and not r.hdr:
        p.append("exr_export=true requires hdr=true")
    if r.duration == "10s":
        if r.hdr:
            p.append("duration=10s is not supported with hdr=true")
        if r.has_start_frame:
            p.append("duration=10s is not supported with a start frame (start_frame_url/start_frame_generation_id)")
        if r.has_end_frame:
            p.append("duration=10s is not supported with an end frame (end_frame_url/end_frame_generation_id)")
    if r.loop:
        if r.duration == "10s":
            p.append("loop=true is not supported with duration=10s")
        if r.hdr:
            p.append("loop=true is not supported with hdr=true")
        if r.has_end_frame:
            p.append(
                "loop=true is not supported with an end frame (end_frame_url/end_frame_generation_id); "
                "on extend, loop is forward-only"
            )
    if derive_mode(r) in (Mode.EXTEND_FORWARD, Mode.EXTEND_BACKWARD):
        if r.hdr or r.exr_export:
            p.append("extend (a single *_frame_generation_id) is SDR only: hdr and exr_export must be false")
        if r.duration != "5s":
            p.append("extend returns exactly one 5s block: duration must be 5s")
    # Dedupe while keeping order: several rules can name the same pair of fields.
    return list(dict.fromkeys(p))


# ---------------------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------------------


class GenerationStatus(enum.StrEnum):
    """Request-queue statuses documented by GMI (``created`` .. ``cancelled``), plus ``unknown``."""

    CREATED = "created"
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True for ``success``, ``failed`` and ``cancelled``."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES: Final = frozenset({GenerationStatus.SUCCESS, GenerationStatus.FAILED, GenerationStatus.CANCELLED})

# Spellings seen in Luma's own API ("completed") or plausible from other queues; undocumented for GMI, so we map
# them rather than poll forever on them.
_STATUS_ALIASES: Final = {
    "completed": GenerationStatus.SUCCESS,
    "succeeded": GenerationStatus.SUCCESS,
    "complete": GenerationStatus.SUCCESS,
    "canceled": GenerationStatus.CANCELLED,
    "error": GenerationStatus.FAILED,
    "pending": GenerationStatus.QUEUED,
    "running": GenerationStatus.PROCESSING,
}


def normalize_status(raw: object) -> GenerationStatus:
    """Map a raw ``status`` value to :class:`GenerationStatus`; anything unrecognised is ``UNKNOWN``."""
    text = str(raw or "").strip().lower()
    try:
        return GenerationStatus(text)
    except ValueError:
        return _STATUS_ALIASES.get(text, GenerationStatus.UNKNOWN)


class Generation(BaseModel):
    """One request-queue record, normalised from whatever JSON shape the service returned.

    ``extra="allow"`` keeps fields we do not know about; :attr:`raw_status` keeps the status as sent.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    request_id: str = Field(description="GMI queue request id (poll key).")
    status: GenerationStatus = Field(description="Normalised status.")
    raw_status: str = Field("", description="Status exactly as the service sent it.")
    generation_id: str | None = Field(None, description="Luma generation id, used to chain extend/interpolate.")
    video_url: str | None = Field(None, description="Presigned MP4 URL (expires after ~1 h).")
    exr_url: str | None = Field(None, description="Presigned EXR URL when exr_export was requested.")
    error: str | None = Field(None, description="Failure text from error/detail/outcome.error/failure_reason.")
    failure_code: str | None = Field(None, description="Luma failure code when passed through.")

    @property
    def is_terminal(self) -> bool:
        """True once the generation reached success, failed or cancelled."""
        return self.status.is_terminal


def parse_generation(body: Any, *, request_id: str | None = None) -> Generation:
    """Parse a create or get response into a :class:`Generation`, tolerating every documented layout.

    ``request_id`` is the id we asked about; it is used when the body does not repeat it.

    :raises ValueError: when the body is not a JSON object or has no request id at all.
    """
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    raw_outcome = body.get("outcome")
    outcome: dict[str, Any] = raw_outcome if isinstance(raw_outcome, dict) else {}
    rid = _first_str(body.get("request_id"), body.get("id"), request_id)
    if not rid:
        raise ValueError("response has no request_id")
    raw_status = _first_str(body.get("status"), body.get("state"), outcome.get("status")) or ""
    video_url, exr_url = _media_urls(body, outcome)
    known: dict[str, Any] = {
        "request_id": rid,
        "status": normalize_status(raw_status),
        "raw_status": raw_status,
        "generation_id": _first_str(
            body.get("generation_id"), outcome.get("generation_id"), outcome.get("id") if outcome else None
        ),
        "video_url": video_url,
        "exr_url": exr_url,
        "error": _error_text(body, outcome),
        "failure_code": _first_str(body.get("failure_code"), outcome.get("failure_code")),
    }
    extra = {k: v for k, v in body.items() if k not in known and k not in Generation.model_fields}
    return Generation(**known, **extra)


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

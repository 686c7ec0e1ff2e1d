"""``luma-ray-3-2-generate``: text-to-video, image-to-video, extend forward/backward and interpolation.

Every rule of the model page (``seed-luma-ray-3-2-generate.md``) is checked here, before any HTTP request or spend.
The mode is derived from which keyframes are set. Airflow-free.
"""

from __future__ import annotations

import posixpath
from decimal import Decimal
from typing import Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from airflow_provider_luma.core.specs.base import (
    GenerationId,
    Mode,
    Prompt,
    Quality,
    RenderSpec,
    SourceFacts,
    VideoRatio,
    combination_error,
)
from airflow_provider_luma.core.specs.registry import ModelInfo, register

MODEL_ID: Final = "luma-ray-3-2-generate"
DURATIONS: Final = ("5s", "10s")
MAX_KEYFRAMES: Final = 64
FRAMES_PER_SECOND: Final = 24

# Extensions that clearly name something other than a JPEG/PNG/WebP image. Unknown or missing extensions are
# accepted: many image CDNs serve frames from extension-less URLs.
_NON_FRAME_EXTENSIONS: Final = frozenset(
    {
        "gif", "bmp", "tif", "tiff", "svg", "heic", "heif", "avif", "ico", "psd", "raw", "exr",
        "mp4", "mov", "m4v", "webm", "mkv", "avi", "wmv", "flv", "mpg", "mpeg", "3gp",
        "mp3", "wav", "ogg", "pdf", "txt", "html", "htm", "json", "zip",
    }
)  # fmt: skip

# The fields of 0.1.0's VideoRequest, in order: its durable-record fingerprint hashed all of them (see _state.py).
LEGACY_FIELDS: Final = (
    "prompt", "aspect_ratio", "resolution", "duration", "hdr", "exr_export", "loop",
    "start_frame_url", "end_frame_url", "start_frame_generation_id", "end_frame_generation_id",
)  # fmt: skip


class GenerateRequest(RenderSpec):
    """The ``payload`` of a ``luma-ray-3-2-generate`` request, with every documented rule enforced."""

    MODEL_ID = MODEL_ID
    SOURCE_FIELDS = ("start_frame_generation_id", "end_frame_generation_id")
    NATIVE_ONLY = frozenset({"keyframes", "keyframe_indexes", "user_id"})

    prompt: Prompt = Field(description="Text description of the video, 1-6000 characters, not blank.")
    aspect_ratio: VideoRatio = Field("16:9", description="One of 9:16, 3:4, 1:1, 4:3, 16:9, 21:9.")
    resolution: Literal["360p", "540p", "720p", "1080p"] = Field(
        "720p", description="540p, 720p or 1080p (360p: native API draft tier, SDR only)."
    )
    duration: Literal["5s", "10s"] = Field("5s", description="5s or 10s (10s bills as two 5-s blocks).")
    hdr: bool = Field(False, description="HDR-encoded MP4; needs 720p/1080p, 5s, no loop, not on extend.")
    exr_export: bool = Field(False, description="EXR file alongside the MP4; needs hdr=true.")
    loop: bool = Field(False, description="Seamless loop; not with 10s, hdr or an end frame.")
    start_frame_url: str | None = Field(None, description="http(s) URL of a JPEG/PNG/WebP start frame.")
    end_frame_url: str | None = Field(None, description="http(s) URL of a JPEG/PNG/WebP end frame.")
    start_frame_generation_id: GenerationId = Field(None, description="Prior generation as start (extend fwd).")
    end_frame_generation_id: GenerationId = Field(None, description="Prior generation as end (extend back).")
    # Native Luma Agents API only (GMI's model page does not document them; the GMI backend rejects them).
    keyframes: list[str] | None = Field(None, description="1-64 image URLs or generation ids at arbitrary frames.")
    keyframe_indexes: list[int] | None = Field(None, description="Frame of each keyframe on the 24-fps grid.")
    user_id: str | None = Field(None, description="Opaque end-user id (native API).")

    @field_validator("start_frame_url", "end_frame_url")
    @classmethod
    def _check_frame_url(cls, value: str | None) -> str | None:
        return check_frame_url(value) if value else None

    @field_validator("keyframes")
    @classmethod
    def _check_keyframes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not 1 <= len(value) <= MAX_KEYFRAMES:
            raise ValueError(f"keyframes has {len(value)} entries; give 1-{MAX_KEYFRAMES}")
        for ref in value:
            if ref.lower().startswith(("http://", "https://")):
                check_frame_url(ref)
            elif not ref.strip() or "/" in ref or ref in ("None", "null"):
                raise ValueError(f"keyframe {ref!r} is neither an http(s) image URL nor a generation id")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> GenerateRequest:
        combination_error(_combination_problems(self))
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
    def is_extend(self) -> bool:
        """True for a single chain-referenced keyframe (forward or backward extend)."""
        return self.mode in (Mode.EXTEND_FORWARD, Mode.EXTEND_BACKWARD)

    @property
    def source_generation_ids(self) -> list[str]:
        """The prior generations this request chains from (empty for text/image-to-video)."""
        return super().source_generation_ids + [
            k for k in self.keyframes or () if not k.lower().startswith(("http://", "https://"))
        ]

    @property
    def quality(self) -> Quality:
        """SDR, HDR or HDR+EXR."""
        if self.hdr:
            return "HDR+EXR" if self.exr_export else "HDR"
        return "SDR"

    def billed_blocks(self, source: SourceFacts | None = None) -> int:
        """2 for 10s, 1 for 5s and for every extend call."""
        return 1 if self.is_extend else 2 if self.duration == "10s" else 1

    def output_facts(self, source: SourceFacts | None = None) -> SourceFacts:
        """The requested ratio (or the model's default) and duration (extend: one 5-s block)."""
        return SourceFacts(aspect_ratio=self.aspect_ratio, duration_seconds=5.0 if self.is_extend else _secs(self))

    def describe(self) -> str:
        """``720p 5s 16:9 HDR +EXR``."""
        flags = (" HDR" if self.hdr else "") + (" +EXR" if self.exr_export else "") + (" loop" if self.loop else "")
        return f"{self.resolution} {self.duration} {self.aspect_ratio}{flags}"

    def price_drivers(self) -> str:
        """``resolution=720p, duration=5s, hdr=False, exr_export=False, mode=text_to_video``."""
        return (
            f"resolution={self.resolution}, duration={self.duration}, hdr={self.hdr}, "
            f"exr_export={self.exr_export}, mode={self.mode.value}"
        )

    def legacy_dump(self) -> dict[str, object]:
        """Every field with defaults, as 0.1.0 hashed it for its durable record."""
        return {name: getattr(self, name) for name in LEGACY_FIELDS}


VideoRequest = GenerateRequest
"""The 0.1 name of :class:`GenerateRequest`."""


def _secs(r: GenerateRequest) -> float:
    return 10.0 if r.duration == "10s" else 5.0


def check_frame_url(value: str) -> str:
    """An http(s) URL that does not name a non-image file."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL; frames must be JPEG/PNG/WebP images on http(s)")
    ext = posixpath.splitext(parts.path)[1].lower().lstrip(".")
    if ext in _NON_FRAME_EXTENSIONS:
        raise ValueError(f"{value!r} names a .{ext} file; frames must be JPEG, PNG or WebP images")
    return value


def derive_mode(request: GenerateRequest) -> Mode:
    """Derive the render mode from which keyframes a request sets."""
    if request.keyframes:
        return Mode.KEYFRAMES
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


def _combination_problems(r: GenerateRequest) -> list[str]:
    """Every cross-field rule of the model page that ``r`` breaks, each naming its fields."""
    p: list[str] = []
    if r.start_frame_url and r.start_frame_generation_id:
        p.append("start_frame_url and start_frame_generation_id are both set: give the start frame one way only")
    if r.end_frame_url and r.end_frame_generation_id:
        p.append("end_frame_url and end_frame_generation_id are both set: give the end frame one way only")
    if r.hdr and r.resolution in ("360p", "540p"):
        p.append(f"hdr=true is not available at resolution={r.resolution} (HDR needs 720p or 1080p)")
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
    p += _keyframe_problems(r)
    return p


def _keyframe_problems(r: GenerateRequest) -> list[str]:
    """Native keyframes: indexes on the 24-fps grid of the duration, one per keyframe; not with frames or loop."""
    p: list[str] = []
    if r.keyframe_indexes is not None and r.keyframes is None:
        return ["keyframe_indexes is only for keyframes"]
    if r.keyframes is None:
        return p
    last = FRAMES_PER_SECOND * int(_secs(r))
    indexes = r.keyframe_indexes or []
    if len(indexes) != len(r.keyframes):
        p.append(f"keyframe_indexes: {len(indexes)} given for {len(r.keyframes)} keyframes; give one per keyframe")
    if len(set(indexes)) != len(indexes):
        p.append("keyframe_indexes: each frame index may be used once")
    outside = [i for i in indexes if not 0 <= i <= last]
    if outside:
        p.append(f"keyframe_indexes: {outside} are off the {r.duration} grid (0-{last} at {FRAMES_PER_SECOND} fps)")
    if r.has_start_frame or r.has_end_frame:
        p.append("keyframes cannot be combined with start/end frames (start_frame_*, end_frame_*)")
    if r.loop:
        p.append("keyframes cannot be combined with loop=true")
    return p


register(
    ModelInfo(
        spec=GenerateRequest,
        title="generate",
        native_type="video",
        modes={
            Mode.TEXT_TO_VIDEO: "",
            Mode.IMAGE_TO_VIDEO: "",
            Mode.EXTEND_FORWARD: "extended",
            Mode.EXTEND_BACKWARD: "extended",
            Mode.INTERPOLATION: "interpolated",
            Mode.KEYFRAMES: "",
        },
        operators={
            "LumaGenerateVideoOperator": "",
            "LumaExtendVideoOperator": "extended",
            "LumaInterpolateVideoOperator": "interpolated",
        },
        # USD per 5-s block; source: seed copy of the GMI model page ("Pricing"). Luma's own API publishes none.
        prices={
            "gmi": {
                ("SDR", "540p"): Decimal("0.15"),
                ("SDR", "720p"): Decimal("0.30"),
                ("SDR", "1080p"): Decimal("1.20"),
                ("HDR", "720p"): Decimal("1.20"),
                ("HDR", "1080p"): Decimal("4.80"),
                ("HDR+EXR", "720p"): Decimal("2.10"),
                ("HDR+EXR", "1080p"): Decimal("8.40"),
            }
        },
        doc_url="https://docs.gmicloud.ai/model-quickstarts/video/luma-ray-3-2-generate",
    )
)

"""``luma-ray-3-2-edit`` and ``luma-ray-3-2-reframe``: re-render or outpaint an existing video.

From GMI's model pages (``luma-api.md`` §1.10-1.11):

* **edit** re-renders a source video under a new prompt; the output keeps the source's aspect ratio and duration.
  Fields: ``prompt``, ``source_generation_id`` or ``source_data`` + ``source_media_type``, ``resolution``,
  ``edit_auto_controls`` (mutually exclusive with ``edit_strength``), ``edit_strength``, ``pose_strength``. GMI's
  table is **truncated** after ``pose_strength`` ("Pose cond…"): its values and the other controls (face, depth,
  normals, trajectory, keyframes, HDR) are not documented, so ``pose_strength`` is passed through as given and
  nothing else is offered.
* **reframe** outpaints a source video to a **different** aspect ratio, SDR only; the output follows the source's
  duration. Fields: ``prompt``, ``aspect_ratio`` (required), ``resolution``, and the same source fields.

Both: the source is exactly one of a prior completed generation (same API key) or an inline video of at most 30
seconds. Airflow-free.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from airflow_provider_luma.core.specs.base import (
    VIDEO_ASPECT_RATIOS,
    GenerationId,
    Mode,
    Prompt,
    RenderSpec,
    SourceFacts,
    VideoRatio,
    combination_error,
)
from airflow_provider_luma.core.specs.registry import ModelInfo, register
from airflow_provider_luma.core.specs.source import VideoFile

EDIT_MODEL_ID: Final = "luma-ray-3-2-edit"
REFRAME_MODEL_ID: Final = "luma-ray-3-2-reframe"
EDIT_STRENGTHS: Final = tuple(f"{kind}_{level}" for kind in ("adhere", "flex", "reimagine") for level in (1, 2, 3))
SOURCE_MEDIA_TYPES: Final = ("video/mp4", "video/quicktime")


class _Control(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True


class _Pose(_Control):
    strength: Literal["precise", "coarse"] | None = None


class _Depth(_Control):
    blur: float | None = Field(None, ge=0, le=1)


class _Normals(_Control):
    augmentation: float | None = Field(None, ge=0, le=1)


class _Trajectory(_Control):
    sparsity: float | None = Field(None, ge=0, le=1)


class EditControls(BaseModel):
    """The native API's fine edit controls (``video.edit.controls``), as Luma's SDK documents them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pose: _Pose | None = None
    depth: _Depth | None = None
    normals: _Normals | None = None
    trajectory: _Trajectory | None = None
    face: _Control | None = None


class _SourcedRequest(RenderSpec):
    """The fields and rules edit and reframe share: a prompt, a resolution and exactly one source."""

    NON_PAYLOAD_FIELDS = frozenset({"source_video"})
    SOURCE_FIELDS = ("source_generation_id",)

    prompt: Prompt = Field(description="1-6000 characters, not blank.")
    resolution: Literal["540p", "720p", "1080p"] = Field("720p", description="540p, 720p or 1080p.")
    source_generation_id: GenerationId = Field(None, description="A prior completed video of the same API key.")
    source_video: VideoFile | None = Field(None, description="A checked local/object-store video, sent inline.")
    source_media_type: str | None = Field(None, description="MIME type of the inline video (video/mp4).")

    @field_validator("source_media_type")
    @classmethod
    def _check_media_type(cls, value: str | None) -> str | None:
        if value and value not in SOURCE_MEDIA_TYPES:
            raise ValueError(f"source_media_type {value!r} is not one of {', '.join(SOURCE_MEDIA_TYPES)}")
        return value or None

    def _source_problems(self) -> list[str]:
        if self.source_generation_id and self.source_video is not None:
            return ["source_generation_id and source_video are both set: give exactly one source"]
        if not self.source_generation_id and self.source_video is None:
            return ["source_generation_id or source_video: exactly one source is required (a prior generation id "
                    "or a video file of at most 30 s)"]  # fmt: skip
        if self.source_media_type and self.source_video is None:
            return ["source_media_type is only for an inline source_video"]
        return []

    def known_source(self, upstream: SourceFacts) -> SourceFacts:
        """Facts about the source: read from the inline file, or those of the upstream task's result."""
        if self.source_video is not None:
            return SourceFacts(aspect_ratio=None, duration_seconds=self.source_video.duration_seconds)
        return upstream

    def billed_blocks(self, source: SourceFacts | None = None) -> int | None:
        """One block per 5 s of the source (the output follows its duration); unknown if its duration is."""
        return self.known_source(source or SourceFacts()).blocks

    def payload(self) -> dict[str, Any]:
        """The fields as sent; an inline video adds ``source_media_type`` here and ``source_data`` on the wire."""
        body = super().payload()
        if self.source_video is not None:
            body["source_media_type"] = self.source_media_type or self.source_video.media_type
        return body

    def fingerprint_payload(self) -> dict[str, Any]:
        """The payload, with the inline video standing as its SHA-256 (the same bytes are the same render)."""
        body = self.payload()
        if self.source_video is not None:
            body["source_data"] = f"sha256:{self.source_video.sha256}"
        return body

    def price_drivers(self) -> str:
        """``resolution=720p, source=g-1, mode=edit`` (the output follows the source's duration)."""
        source = self.source_generation_id or (self.source_video.label if self.source_video else "?")
        return f"resolution={self.resolution}, source={source}, mode={self.mode}"

    def describe(self) -> str:
        """``720p from generation g-1`` / ``720p from /data/in.mp4``."""
        source = self.source_generation_id or (self.source_video.label if self.source_video else "?")
        return f"{self.resolution} from {source}"


class EditRequest(_SourcedRequest):
    """The ``payload`` of a ``luma-ray-3-2-edit`` request."""

    MODEL_ID = EDIT_MODEL_ID
    RENDER_TIME_FACTOR = 1.5  # inferred: edit re-renders every frame under extra conditioning; no figures published

    edit_auto_controls: bool | None = Field(None, description="Let the model derive the conditioning.")
    edit_strength: str | None = Field(None, description="adhere_1..3, flex_1..3 or reimagine_1..3.")
    pose_strength: str | None = Field(None, description="Pose conditioning; GMI's table is truncated here.")
    controls: EditControls | None = Field(None, description="Native API only: pose/depth/normals/trajectory/face.")

    NATIVE_ONLY = frozenset({"controls"})

    @field_validator("edit_strength")
    @classmethod
    def _check_strength(cls, value: str | None) -> str | None:
        if value and value not in EDIT_STRENGTHS:
            raise ValueError(f"edit_strength {value!r} is not one of {', '.join(EDIT_STRENGTHS)}")
        return value or None

    @model_validator(mode="after")
    def _check_combinations(self) -> EditRequest:
        problems = self._source_problems()
        if self.edit_auto_controls and self.edit_strength:
            problems.append("edit_auto_controls=true and edit_strength are mutually exclusive: set one")
        if self.pose_strength and self.controls is not None and self.controls.pose is not None:
            problems.append("pose_strength and controls.pose both set the pose conditioning: set one")
        combination_error(problems)
        return self

    @property
    def mode(self) -> Mode:
        """Always ``edit``."""
        return Mode.EDIT

    def output_facts(self, source: SourceFacts | None = None) -> SourceFacts:
        """Edit keeps the source's ratio and duration."""
        return self.known_source(source or SourceFacts())


class ReframeRequest(_SourcedRequest):
    """The ``payload`` of a ``luma-ray-3-2-reframe`` request."""

    MODEL_ID = REFRAME_MODEL_ID
    RENDER_TIME_FACTOR = 2.0  # inferred: a third-party host quotes 5-15 minutes for reframe; GMI gives no figure
    NON_PAYLOAD_FIELDS = frozenset({"source_video", "hdr"})

    aspect_ratio: VideoRatio = Field(description="The new ratio; must differ from the source's.")
    hdr: bool = Field(False, description="Never sent: reframe is SDR only, so true is an error.")

    @model_validator(mode="after")
    def _check_combinations(self) -> ReframeRequest:
        problems = self._source_problems()
        if self.hdr:
            problems.append("hdr: reframe is SDR only; hdr must be false")
        combination_error(problems)
        return self

    @property
    def mode(self) -> Mode:
        """Always ``reframe``."""
        return Mode.REFRAME

    def source_problems(self, source: SourceFacts) -> list[str]:
        """Reframing to the ratio the source already has is rejected, when the source's ratio is known."""
        known = self.known_source(source)
        if known.aspect_ratio and known.aspect_ratio == self.aspect_ratio:
            return [
                f"aspect_ratio: the source is already {known.aspect_ratio}; reframe must change the ratio "
                f"(one of {', '.join(r for r in VIDEO_ASPECT_RATIOS if r != known.aspect_ratio)})"
            ]
        return []

    def output_facts(self, source: SourceFacts | None = None) -> SourceFacts:
        """Reframe takes the new ratio and keeps the source's duration."""
        known = self.known_source(source or SourceFacts())
        return SourceFacts(aspect_ratio=self.aspect_ratio, duration_seconds=known.duration_seconds)

    def describe(self) -> str:
        """``720p 9:16 from generation g-1``."""
        return f"{self.aspect_ratio} " + super().describe()


# Both are registered alike: the word names the mode, the native type and GMI's model page.
for _spec, _word, _edge, _operator in (
    (EditRequest, "edit", "edited", "LumaEditVideoOperator"),
    (ReframeRequest, "reframe", "reframed", "LumaReframeVideoOperator"),
):
    register(
        ModelInfo(
            spec=_spec,
            title=_word,
            native_type=f"video_{_word}",
            modes={Mode(_word): _edge},
            operators={_operator: _edge},
            doc_url=f"https://docs.gmicloud.ai/model-quickstarts/video/{_spec.MODEL_ID}",
        )
    )

"""``luma-ray-3-2-generate`` operators: generate (all modes), and the extend and interpolate front doors."""

from __future__ import annotations

from typing import Any

from airflow_provider_luma.operators._base import LumaRenderOperator

GENERATE_MODEL_ID = "luma-ray-3-2-generate"


class LumaGenerateVideoOperator(LumaRenderOperator):
    """Render a video with ``luma-ray-3-2-generate`` (text-to-video, image-to-video, extend, interpolation).

    Parameters left as ``None`` are not sent, so the service default applies. All of them are templated and
    validated after templating, before any request or spend; literal values are validated when the DAG is parsed.

    :param prompt: text description, 1-6000 characters.
    :param aspect_ratio: 9:16, 3:4, 1:1, 4:3, 16:9 (default) or 21:9.
    :param resolution: 540p, 720p (default) or 1080p.
    :param duration: 5s (default) or 10s (10s: no frames, no HDR, no loop).
    :param hdr: HDR MP4 (720p/1080p, 5s, no loop, not on extend).
    :param exr_export: also export an EXR (needs ``hdr``).
    :param loop: seamless loop (not with 10s, HDR or an end frame).
    :param start_frame_url: http(s) URL of a JPEG/PNG/WebP start frame.
    :param end_frame_url: http(s) URL of a JPEG/PNG/WebP end frame.
    :param start_frame_generation_id: prior generation to continue from (extend forward / interpolation).
    :param end_frame_generation_id: prior generation to lead into (extend backward / interpolation).
    :param keyframes: native Luma Agents API only: 1-64 image URLs or generation ids placed at
        ``keyframe_indexes`` (frames on the 24-fps grid: 0-120 for 5s, 0-240 for 10s); not with start/end frames
        or loop. Refused before any request on a GMI connection.
    :param keyframe_indexes: the frame of each keyframe (native API only).
    :param user_id: an opaque id of your end user, sent with the request (native API only).

    ``resolution="360p"`` (the draft tier, SDR only) is native-only too. A templated list (``keyframes``) needs
    the DAG's ``render_template_as_native_obj=True``. The other parameters (connection, polling, deadline,
    storage, budget) are those of
    :class:`~airflow_provider_luma.operators._base.LumaRenderOperator`.
    """

    MODEL_ID = GENERATE_MODEL_ID
    PARAMS = (
        "prompt",
        "aspect_ratio",
        "resolution",
        "duration",
        "hdr",
        "exr_export",
        "loop",
        "start_frame_url",
        "end_frame_url",
        "start_frame_generation_id",
        "end_frame_generation_id",
        "keyframes",
        "keyframe_indexes",
        "user_id",
    )

    def __init__(
        self,
        *,
        prompt: str,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        duration: str | None = None,
        hdr: bool | str | None = None,
        exr_export: bool | str | None = None,
        loop: bool | str | None = None,
        start_frame_url: str | None = None,
        end_frame_url: str | None = None,
        start_frame_generation_id: str | None = None,
        end_frame_generation_id: str | None = None,
        keyframes: list[str] | str | None = None,
        keyframe_indexes: list[int] | str | None = None,
        user_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.aspect_ratio = aspect_ratio
        self.resolution = resolution
        self.duration = duration
        self.hdr = hdr
        self.exr_export = exr_export
        self.loop = loop
        self.start_frame_url = start_frame_url
        self.end_frame_url = end_frame_url
        self.start_frame_generation_id = start_frame_generation_id
        self.end_frame_generation_id = end_frame_generation_id
        self.keyframes = keyframes
        self.keyframe_indexes = keyframe_indexes
        self.user_id = user_id
        self.check_literal_params()


class LumaExtendVideoOperator(LumaRenderOperator):
    """Extend a prior clip by one 5-s SDR block, forward (after it) or backward (before it).

    :param generation_id: the clip to extend, typically ``upstream.output["generation_id"]``.
    :param direction: ``"forward"`` (default; continues past the clip) or ``"backward"`` (prepends before it).
    :param prompt: what happens in the new block.
    :param aspect_ratio: as for :class:`LumaGenerateVideoOperator`.
    :param resolution: as for :class:`LumaGenerateVideoOperator`.
    :param loop: seamless loop (forward only).
    """

    MODEL_ID = GENERATE_MODEL_ID
    PARAMS = ("generation_id", "direction", "prompt", "aspect_ratio", "resolution", "loop")

    def __init__(
        self,
        *,
        generation_id: str,
        prompt: str,
        direction: str = "forward",
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        loop: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.generation_id = generation_id
        self.direction = direction
        self.prompt = prompt
        self.aspect_ratio = aspect_ratio
        self.resolution = resolution
        self.loop = loop
        self.check_literal_params()

    def spec_params(self) -> dict[str, Any]:
        """Map ``generation_id`` onto the start (forward) or end (backward) chain reference."""
        from airflow_provider_luma.core.errors import LumaValidationError
        from airflow_provider_luma.core.specs.base import is_unset
        from airflow_provider_luma.operators._literals import is_templated

        if is_templated(self.direction):
            # Which end the id goes to is only known after templating; any end checks the other fields.
            direction = "forward"
        else:
            direction = str(self.direction).strip().lower()
            if direction not in ("forward", "backward"):
                raise LumaValidationError([f"direction: got {self.direction!r}; must be 'forward' or 'backward'"])
        if not self.generation_id or (isinstance(self.generation_id, str) and is_unset(self.generation_id)):
            raise LumaValidationError(
                [f"generation_id: got {self.generation_id!r}; extend needs the generation id of a prior render"]
            )
        key = "start_frame_generation_id" if direction == "forward" else "end_frame_generation_id"
        return {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "loop": self.loop,
            key: self.generation_id,
        }


class LumaInterpolateVideoOperator(LumaRenderOperator):
    """Render the motion between two keyframes, at least one of them a prior generation.

    :param start: the first keyframe: a generation id, or an http(s) image URL.
    :param end: the last keyframe: a generation id, or an http(s) image URL.
    :param prompt: what happens in between.
    :param aspect_ratio: as for :class:`LumaGenerateVideoOperator`.
    :param resolution: as for :class:`LumaGenerateVideoOperator`.
    :param hdr: HDR MP4 (720p/1080p).
    :param exr_export: also export an EXR (needs ``hdr``).
    """

    MODEL_ID = GENERATE_MODEL_ID
    PARAMS = ("start", "end", "prompt", "aspect_ratio", "resolution", "hdr", "exr_export")

    def __init__(
        self,
        *,
        start: str,
        end: str,
        prompt: str,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        hdr: bool | str | None = None,
        exr_export: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start = start
        self.end = end
        self.prompt = prompt
        self.aspect_ratio = aspect_ratio
        self.resolution = resolution
        self.hdr = hdr
        self.exr_export = exr_export
        self.check_literal_params()

    def spec_params(self) -> dict[str, Any]:
        """Route each end to its ``*_frame_url`` or ``*_frame_generation_id`` field."""
        from airflow_provider_luma.core.errors import LumaValidationError
        from airflow_provider_luma.core.specs.base import is_unset
        from airflow_provider_luma.operators._literals import is_templated

        params: dict[str, Any] = {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "hdr": self.hdr,
            "exr_export": self.exr_export,
        }
        for name, value in (("start", self.start), ("end", self.end)):
            if is_templated(value):
                params[f"{name}_frame_generation_id"] = value  # an XCom generation id, most likely
                continue
            text = str(value or "").strip()
            if is_unset(text):
                raise LumaValidationError([f"{name}: got {value!r}; interpolation needs both keyframes"])
            is_url = text.lower().startswith(("http://", "https://"))
            params[f"{name}_frame_url" if is_url else f"{name}_frame_generation_id"] = text
        if "start_frame_generation_id" not in params and "end_frame_generation_id" not in params:
            raise LumaValidationError(
                [
                    "start, end: both are image URLs; interpolation needs at least one prior generation id "
                    "(for two images use LumaGenerateVideoOperator with start_frame_url/end_frame_url)"
                ]
            )
        return params

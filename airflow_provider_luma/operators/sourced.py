"""``luma-ray-3-2-edit`` and ``luma-ray-3-2-reframe`` operators: restyle or outpaint an existing video."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_luma.operators._base import LumaRenderOperator

if TYPE_CHECKING:
    from airflow_provider_luma.core.specs.base import RenderSpec, SourceFacts

EDIT_MODEL_ID = "luma-ray-3-2-edit"
REFRAME_MODEL_ID = "luma-ray-3-2-reframe"


class _SourcedVideoOperator(LumaRenderOperator):
    """What edit and reframe share: the source is a prior generation or a video file the user already has."""

    def build_spec(self, params: dict[str, Any], source: SourceFacts) -> RenderSpec:
        """Read and check an inline ``source_video`` (type, size, duration) before the spec is validated."""
        from airflow_provider_luma.core.specs.base import is_unset
        from airflow_provider_luma.runtime.source_video import open_source_video

        video = params.get("source_video")
        checked = None if is_unset(video) else open_source_video(video)
        return super().build_spec({**params, "source_video": checked}, source)


class LumaEditVideoOperator(_SourcedVideoOperator):
    """Re-render a video under a new prompt with ``luma-ray-3-2-edit``; the output keeps the source's aspect ratio
    and duration.

    :param prompt: how to transform the source video, 1-6000 characters.
    :param source_generation_id: a prior completed generation of the same API key, typically
        ``upstream.output["generation_id"]``.
    :param source_video: instead of a generation id, a video you already have: an absolute local path or an
        ``ObjectStoragePath`` URI of an MP4 of at most 30 s and 200 MiB (sent inline as ``source_data``).
    :param source_media_type: MIME type of ``source_video`` (default: from the file, ``video/mp4``).
    :param resolution: 540p, 720p (default) or 1080p.
    :param edit_auto_controls: let the model derive the conditioning (recommended); not with ``edit_strength``.
    :param edit_strength: ``adhere_1..3``, ``flex_1..3`` or ``reimagine_1..3``; not with ``edit_auto_controls``.
    :param pose_strength: pose conditioning. GMI's table is truncated here: the value is passed through as given.
    :param controls: native Luma Agents API only: ``{"pose": {"strength": "precise"|"coarse"}, "depth": {"blur":
        0-1}, "normals": {"augmentation": 0-1}, "trajectory": {"sparsity": 0-1}, "face": {}}`` (each named control
        is enabled unless ``"enabled": false``). Refused before any request on a GMI connection.

    The other parameters are those of :class:`~airflow_provider_luma.operators._base.LumaRenderOperator`.
    """

    MODEL_ID = EDIT_MODEL_ID
    PARAMS = (
        "prompt",
        "source_generation_id",
        "source_video",
        "source_media_type",
        "resolution",
        "edit_auto_controls",
        "edit_strength",
        "pose_strength",
        "controls",
    )

    def __init__(
        self,
        *,
        prompt: str,
        source_generation_id: str | None = None,
        source_video: Any = None,
        source_media_type: str | None = None,
        resolution: str | None = None,
        edit_auto_controls: bool | str | None = None,
        edit_strength: str | None = None,
        pose_strength: str | None = None,
        controls: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.source_generation_id = source_generation_id
        self.source_video = source_video
        self.source_media_type = source_media_type
        self.resolution = resolution
        self.edit_auto_controls = edit_auto_controls
        self.edit_strength = edit_strength
        self.pose_strength = pose_strength
        self.controls = controls
        self.check_literal_params()


class LumaReframeVideoOperator(_SourcedVideoOperator):
    """Outpaint a video to a different aspect ratio with ``luma-ray-3-2-reframe`` (SDR only); the output follows
    the source's duration.

    :param prompt: what to paint into the newly exposed canvas, 1-6000 characters.
    :param aspect_ratio: the new ratio (required): 9:16, 3:4, 1:1, 4:3, 16:9 or 21:9. When the source came from an
        upstream Luma task of this run, its ratio is known and reframing to the same ratio is rejected.
    :param source_generation_id: a prior completed generation of the same API key.
    :param source_video: instead, a local path or ``ObjectStoragePath`` URI of an MP4 (at most 30 s, 200 MiB).
    :param source_media_type: MIME type of ``source_video`` (default: from the file).
    :param resolution: 540p, 720p (default) or 1080p.
    :param hdr: reframe is SDR only; only ``False`` is accepted (never sent).

    The other parameters are those of :class:`~airflow_provider_luma.operators._base.LumaRenderOperator`.
    """

    MODEL_ID = REFRAME_MODEL_ID
    PARAMS = (
        "prompt",
        "aspect_ratio",
        "source_generation_id",
        "source_video",
        "source_media_type",
        "resolution",
        "hdr",
    )

    def __init__(
        self,
        *,
        prompt: str,
        aspect_ratio: str,
        source_generation_id: str | None = None,
        source_video: Any = None,
        source_media_type: str | None = None,
        resolution: str | None = None,
        hdr: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.aspect_ratio = aspect_ratio
        self.source_generation_id = source_generation_id
        self.source_video = source_video
        self.source_media_type = source_media_type
        self.resolution = resolution
        self.hdr = hdr
        self.check_literal_params()

"""Operators that render Luma ray-3.2 videos: generate, extend, interpolate.

Importing this module is what a DAG file does at parse time, so it imports only ``airflow.sdk``: the HTTP client,
the hook, pydantic models and the trigger are imported inside ``execute``.

Every render operator returns (and, with ``multiple_outputs``, pushes as separate XCom keys) a dict with at least
``generation_id``, ``request_id``, ``video_url``, ``exr_url``, ``video_path``, ``exr_path``, ``mode``,
``estimated_cost_usd`` and ``billed_blocks``, so ``task.output["generation_id"]`` chains into the next render.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import AssetAlias, BaseOperator, BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "DEFAULT_ASSET_ALIAS",
    "LumaDownloadVideoOperator",
    "LumaExtendVideoOperator",
    "LumaGenerateVideoOperator",
    "LumaInterpolateVideoOperator",
    "LumaVideoLink",
]

DEFAULT_ASSET_ALIAS = "luma_videos"
"""Stored files are announced as Asset events through ``AssetAlias("luma_videos")`` unless ``asset_alias`` says
otherwise; schedule a DAG on that alias to run whenever a new clip is stored."""

_COMMON_TEMPLATE_FIELDS = ("prompt", "aspect_ratio", "resolution", "luma_conn_id", "output_path", "max_cost_usd")


class LumaVideoLink(BaseOperatorLink):
    """ "Luma video" button: the stored copy when a browser can open it (S3/GCS console, http), else the presigned URL.

    The worker computes the value when the task finishes and Airflow stores it as XCom ``_link_LumaVideoLink``; the
    UI reads that XCom. A presigned URL expires about an hour after the task finished.
    """

    name = "Luma video"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The link computed by the task that just ran (empty while deferred or after a failure)."""
        return str(getattr(operator, "luma_video_link", None) or "")


def _add_alias(kwargs: dict[str, Any], output_path: Any, alias: str | None) -> None:
    """Add the asset alias that stored files are announced through to the task's outlets (declared at parse time,
    so the DAG graph shows it)."""
    if output_path is None or not alias:
        return
    outlets = kwargs.get("outlets")
    current = [] if outlets is None else list(outlets) if isinstance(outlets, list | tuple) else [outlets]
    if not any(isinstance(o, AssetAlias) and o.name == alias for o in current):
        kwargs["outlets"] = [*current, AssetAlias(alias)]


class LumaGenerateVideoOperator(BaseOperator):
    """Render a video with ``luma-ray-3-2-generate`` (text-to-video, image-to-video, extend, interpolation).

    Parameters left as ``None`` are not sent, so the service default applies. All of them are templated and
    validated after templating, before any request or spend.

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
    :param luma_conn_id: Airflow connection (type ``luma``) holding the API key.
    :param poll_interval: seconds between status checks (default 10).
    :param timeout: render deadline in seconds (default 3600); the trigger sends a ``timeout`` event then. An
        ``execution_timeout``, if shorter, becomes the deadline (Airflow 3.3 does not enforce it while deferred).
    :param deferrable: wait in the triggerer without holding a worker slot (default True); ``False`` polls in
        the worker, for deployments without a triggerer.
    :param reuse_existing: when this task instance already rendered successfully (e.g. it was cleared after
        success), return that render instead of paying for a new one (default True). In-flight renders are always
        re-attached and failed ones always resubmitted, whatever this says.
    :param resubmit_unknown: when an earlier try sent a create request whose answer was lost, submit again
        anyway (risking a second charge) instead of failing (default False).
    :param output_path: where to store the finished MP4 (and EXR): an absolute local path or an
        ``ObjectStoragePath`` URI (``file:///…``, ``s3://conn_id@bucket/key``). Ending in ``.mp4`` or ``.{ext}``
        it is a file name pattern with ``{generation_id}``, ``{request_id}``, ``{dag_id}``, ``{task_id}``,
        ``{run_id}``, ``{map_index}``, ``{mode}``, ``{ext}``; otherwise a folder (files named
        ``{generation_id}.mp4``). Unset: nothing is downloaded (presigned URLs expire after ~1 h).
    :param asset_alias: stored files are emitted as Asset events through ``AssetAlias(asset_alias)`` (default
        ``"luma_videos"``; ``None`` emits none). Only used with ``output_path``.
    :param max_cost_usd: fail (without retries, before any request) when the estimated cost from the price table
        is above this many US dollars. Set it DAG-wide with ``default_args``.
    """

    template_fields: Sequence[str] = (
        *_COMMON_TEMPLATE_FIELDS,
        "duration",
        "hdr",
        "exr_export",
        "loop",
        "start_frame_url",
        "end_frame_url",
        "start_frame_generation_id",
        "end_frame_generation_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"prompt": "md"}
    ui_color = "#e8dcff"
    operator_extra_links = (LumaVideoLink(),)

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
        luma_conn_id: str = "luma_default",
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        deferrable: bool = True,
        reuse_existing: bool = True,
        resubmit_unknown: bool = False,
        output_path: Any = None,
        asset_alias: str | None = DEFAULT_ASSET_ALIAS,
        max_cost_usd: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        _add_alias(kwargs, output_path, asset_alias)
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
        self.luma_conn_id = luma_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self.deferrable = deferrable
        self.reuse_existing = reuse_existing
        self.resubmit_unknown = resubmit_unknown
        self.output_path = output_path
        self.asset_alias = asset_alias
        self.max_cost_usd = max_cost_usd
        self.luma_video_link: str | None = None  # set by the worker when the render is done (LumaVideoLink)

    def request_params(self) -> dict[str, Any]:
        """The (rendered) payload parameters; ``None`` means "not set"."""
        return {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "duration": self.duration,
            "hdr": self.hdr,
            "exr_export": self.exr_export,
            "loop": self.loop,
            "start_frame_url": self.start_frame_url,
            "end_frame_url": self.end_frame_url,
            "start_frame_generation_id": self.start_frame_generation_id,
            "end_frame_generation_id": self.end_frame_generation_id,
        }

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate, then re-attach to this task's earlier render or submit one, then defer (or poll)."""
        from airflow_provider_luma._render import RenderRun

        return RenderRun(self, context).start()

    def execute_after_rate_limit(
        self, context: Context, event: Any = None, rate_limit_waits: int = 0, **_: Any
    ) -> dict[str, Any]:
        """Resume after waiting out a 429 in the triggerer: submit again (or re-attach, if a try already did)."""
        from airflow_provider_luma._render import RenderRun

        run = RenderRun(self, context)
        run.waits_so_far = rate_limit_waits
        return run.start()

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        """Resume after the trigger fired: return the result or raise with the server's reason."""
        from airflow_provider_luma._render import RenderRun

        return RenderRun(self, context).complete(event)


class LumaExtendVideoOperator(LumaGenerateVideoOperator):
    """Extend a prior clip by one 5-s SDR block, forward (after it) or backward (before it).

    :param generation_id: the clip to extend, typically ``upstream.output["generation_id"]``.
    :param direction: ``"forward"`` (default; continues past the clip) or ``"backward"`` (prepends before it).
    :param prompt: what happens in the new block.
    :param loop: seamless loop (forward only).

    Other keyword arguments are those of :class:`LumaGenerateVideoOperator`.
    """

    template_fields: Sequence[str] = (*_COMMON_TEMPLATE_FIELDS, "generation_id", "direction", "loop")

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
        super().__init__(prompt=prompt, aspect_ratio=aspect_ratio, resolution=resolution, loop=loop, **kwargs)
        self.generation_id = generation_id
        self.direction = direction

    def request_params(self) -> dict[str, Any]:
        """Map ``generation_id`` onto the start (forward) or end (backward) chain reference."""
        from airflow_provider_luma.exceptions import LumaValidationError

        direction = str(self.direction).strip().lower()
        if direction not in ("forward", "backward"):
            raise LumaValidationError([f"direction: got {self.direction!r}; must be 'forward' or 'backward'"])
        from airflow_provider_luma.models import is_unset

        if not self.generation_id or is_unset(str(self.generation_id)):
            raise LumaValidationError(
                [f"generation_id: got {self.generation_id!r}; extend needs the generation id of a prior render"]
            )
        params = super().request_params()
        key = "start_frame_generation_id" if direction == "forward" else "end_frame_generation_id"
        params[key] = self.generation_id
        return params


class LumaInterpolateVideoOperator(LumaGenerateVideoOperator):
    """Render the motion between two keyframes, at least one of them a prior generation.

    :param start: the first keyframe: a generation id, or an http(s) image URL.
    :param end: the last keyframe: a generation id, or an http(s) image URL.
    :param prompt: what happens in between.

    Other keyword arguments are those of :class:`LumaGenerateVideoOperator`.
    """

    template_fields: Sequence[str] = (*_COMMON_TEMPLATE_FIELDS, "start", "end")

    def __init__(
        self,
        *,
        start: str,
        end: str,
        prompt: str,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(prompt=prompt, aspect_ratio=aspect_ratio, resolution=resolution, **kwargs)
        self.start = start
        self.end = end

    def request_params(self) -> dict[str, Any]:
        """Route each end to its ``*_frame_url`` or ``*_frame_generation_id`` field."""
        from airflow_provider_luma.exceptions import LumaValidationError
        from airflow_provider_luma.models import is_unset

        params = super().request_params()
        ends = {"start": self.start, "end": self.end}
        for name, value in ends.items():
            text = str(value or "").strip()
            if is_unset(text):
                raise LumaValidationError([f"{name}: got {value!r}; interpolation needs both keyframes"])
            is_url = text.lower().startswith(("http://", "https://"))
            params[f"{name}_frame_url" if is_url else f"{name}_frame_generation_id"] = text
        if params["start_frame_generation_id"] is None and params["end_frame_generation_id"] is None:
            raise LumaValidationError(
                [
                    "start, end: both are image URLs; interpolation needs at least one prior generation id "
                    "(for two images use LumaGenerateVideoOperator with start_frame_url/end_frame_url)"
                ]
            )
        return params


class LumaDownloadVideoOperator(BaseOperator):
    """Store the MP4 (and EXR) of a render that finished earlier, e.g. in another DAG run or task.

    Fresh presigned URLs are fetched from the request first, so it works long after the render's own URLs
    expired (for as long as the service keeps the generation).

    :param request_id: the queue request id, typically ``render.output["request_id"]``. GMI's queue documents
        no lookup by generation id, so a request id is required.
    :param output_path: folder or file name pattern, as for :class:`LumaGenerateVideoOperator` (required).
    :param generation_id: optional check: fail if the request holds a different generation.
    :param luma_conn_id: Airflow connection (type ``luma``).
    :param asset_alias: Asset events for the stored files go through ``AssetAlias(asset_alias)`` (default
        ``"luma_videos"``; ``None`` emits none).

    Returns (and pushes as XCom keys) ``generation_id``, ``request_id``, ``video_path``, ``exr_path``,
    ``video_url``, ``exr_url``.
    """

    template_fields: Sequence[str] = ("request_id", "generation_id", "output_path", "luma_conn_id")
    ui_color = "#e8dcff"
    operator_extra_links = (LumaVideoLink(),)

    def __init__(
        self,
        *,
        request_id: str,
        output_path: Any,
        generation_id: str | None = None,
        luma_conn_id: str = "luma_default",
        asset_alias: str | None = DEFAULT_ASSET_ALIAS,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        _add_alias(kwargs, output_path, asset_alias)
        super().__init__(**kwargs)
        self.request_id = request_id
        self.output_path = output_path
        self.generation_id = generation_id
        self.luma_conn_id = luma_conn_id
        self.asset_alias = asset_alias
        self.luma_video_link: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Look the request up, download its files to ``output_path`` and emit Asset events."""
        from airflow_provider_luma._deliver import download_existing

        return download_existing(self, context)

"""The two payloads the worker side hands around, as TypedDicts with one builder each.

* :class:`TriggerEventPayload`: what :class:`~airflow_provider_luma.triggers.LumaGenerationTrigger` yields (and
  the worker's own poll loop produces), read by ``execute_complete``. No secrets; presigned URLs only when the
  worker built it itself (see :func:`job_event`).
* :class:`RenderResult`: a render task's return value and XCom. It names the ``model``, the ``backend`` and the
  ``source_generation_ids`` the clip was made from, so a cost report or a UI can draw a run's chain from XCom
  alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_luma.core.errors import is_permanent_failure

if TYPE_CHECKING:
    from airflow_provider_luma.core.jobs import Job
    from airflow_provider_luma.runtime.record import RenderFacts


class TriggerEventPayload(TypedDict):
    """One trigger event. ``status``: success, failed, cancelled, timeout or error."""

    status: str
    request_id: str
    generation_id: str | None
    video_url: str | None
    exr_url: str | None
    message: str | None
    failure_code: str | None
    retryable: bool
    elapsed_seconds: float


class RenderResult(TypedDict, total=False):
    """A render task's result (every key is also its own XCom with ``multiple_outputs``)."""

    generation_id: str | None
    request_id: str | None
    model: str
    backend: str
    mode: str | None
    source_generation_ids: list[str]
    video_url: str | None
    exr_url: str | None
    video_path: str | None
    exr_path: str | None
    video_bytes: int | None
    exr_bytes: int | None
    estimated_cost_usd: float | None
    billed_blocks: int | None
    resolution: str | None
    duration: str | None
    aspect_ratio: str | None
    hdr: bool | None


def job_event(job: Job, *, elapsed: float, with_urls: bool = True) -> TriggerEventPayload:
    """The event for a terminal job.

    ``with_urls=False`` (what the trigger sends) leaves ``video_url``/``exr_url`` out: presigned URLs are
    capabilities, and registering each one with the triggerer's secrets masker recompiles the masker's regex of
    every secret so far (quadratic in the renders a long-lived triggerer has seen). The worker fetches fresh URLs
    in ``execute_complete`` and masks them in its own short-lived process.
    """
    failed = job.status.value != "success"
    return {
        "status": job.status.value,
        "request_id": job.request_id,
        "generation_id": job.generation_id,
        "video_url": job.video_url if with_urls else None,
        "exr_url": job.exr_url if with_urls else None,
        "message": job.error if failed else "render finished",
        "failure_code": job.failure_code,
        "retryable": failed and not is_permanent_failure(job.failure_code, job.error),
        "elapsed_seconds": round(elapsed, 1),
    }


def error_event(request_id: str, exc: BaseException, *, elapsed: float, retryable: bool) -> TriggerEventPayload:
    """The event for a poll that cannot go on (``status="error"``)."""
    return {
        "status": "error",
        "request_id": request_id,
        "generation_id": None,
        "video_url": None,
        "exr_url": None,
        "message": f"{type(exc).__name__}: {exc}",
        "failure_code": None,
        "retryable": retryable,
        "elapsed_seconds": round(elapsed, 1),
    }


def render_result(model: str, backend: str, event: dict[str, Any], facts: RenderFacts) -> RenderResult:
    """The XCom result of a finished render, before its files are stored: the event's ids and URLs and the
    render's facts from its durable record."""
    return {
        "generation_id": event.get("generation_id"),
        "request_id": event.get("request_id"),
        "model": model,
        "backend": backend,
        "mode": facts.mode,
        "source_generation_ids": list(facts.source_generation_ids),
        "video_url": event.get("video_url"),
        "exr_url": event.get("exr_url"),
        "video_path": None,
        "exr_path": None,
        "estimated_cost_usd": facts.estimated_cost_usd,
        "billed_blocks": facts.billed_blocks,
        "resolution": facts.resolution,
        "duration": facts.duration,
        "aspect_ratio": facts.aspect_ratio,
        "hdr": facts.quality != "SDR",
    }


def sensed_result(job: Job, model: str | None) -> RenderResult:
    """The result a sensor pushes for a render it did not buy: the same keys, ``None`` where only the task that
    bought it knows (mode, price, resolution, ...)."""
    return {
        "generation_id": job.generation_id,
        "request_id": job.request_id,
        "model": job.model or model or "luma-ray-3-2-generate",
        "backend": job.backend,
        "mode": None,
        "source_generation_ids": [],
        "video_url": job.video_url,
        "exr_url": job.exr_url,
        "video_path": None,
        "exr_path": None,
        "estimated_cost_usd": None,
        "billed_blocks": None,
        "resolution": None,
        "duration": None,
        "aspect_ratio": None,
        "hdr": None,
    }

"""The JSON bodies of both fronts: GMI's ``POST /requests`` / ``GET /requests/{id}`` for every model, and the native
Luma Agents ``Generation`` object of ``POST /v1/generations`` / ``GET /v1/generations/{id}``.

Pure: the caller passes the job, the time and a function that mints a presigned URL for a file name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final

from airflow_provider_luma.testing._native_rules import NATIVE_TYPE_OF
from airflow_provider_luma.testing._types import NATIVE_MODEL, Job


def request_view(job: Job, now: float, *, full: bool, flat: bool, mint: Callable[[str], str]) -> dict[str, Any]:
    """The create answer (``full=False``) or the status answer (``full=True``) of ``job`` as of ``now``.

    :param flat: put results at the top level instead of under ``outcome``.
    :param mint: makes a presigned media URL for a file name such as ``"<generation_id>.mp4"``.
    """
    # The create answer always says "queued", as GMI documents, even when a zero render time means the
    # first poll will already see "success".
    status = job.status_at(now) if full else "queued"
    body: dict[str, Any] = {
        "request_id": job.request_id,
        "model": job.model,
        "status": status,
        "created_at": int(job.created_at),
        "updated_at": int(job.updated_at(now) if full else job.created_at),
        "queued_at": int(job.created_at),
    }
    if not full:
        return body
    body["payload"] = dict(job.payload)
    outcome: dict[str, Any] = {}
    if status == "success":
        video_url = mint(f"{job.generation_id}.mp4")
        exr_url = mint(f"{job.generation_id}.exr") if job.exr_export else None
        if flat:
            body.update(generation_id=job.generation_id, video_url=video_url)
            if exr_url:
                body["exr_url"] = exr_url
        else:
            media: list[dict[str, str]] = [{"url": video_url}]
            if exr_url:
                media.append({"url": exr_url, "type": "exr"})
            outcome = {"generation_id": job.generation_id, "video_url": video_url, "media_urls": media}
    elif status == "failed" and job.failure:
        reason, code = job.failure
        body["error"] = reason
        if flat:
            body["failure_code"] = code
        else:
            outcome = {"error": reason, "failure_code": code}
    if not flat:
        body["outcome"] = outcome
    return body


NATIVE_STATES: Final = {"queued": "queued", "processing": "processing", "success": "completed", "failed": "failed"}
"""Internal (GMI) status → native ``state``."""

# Luma does not document how an EXR export appears in ``output[]``; the simulator lists it second, as "exr".
EXR_OUTPUT_TYPE: Final = "exr"


def generation_view(job: Job, now: float, *, full: bool, mint: Callable[[str], str]) -> dict[str, Any]:
    """The native ``Generation`` object of ``job`` (made by either front) as of ``now``.

    The create answer (``full=False``) always says ``queued``; the ``GET`` answer (``full=True``) lists freshly
    minted ``output`` URLs once completed.
    """
    state = NATIVE_STATES[job.status_at(now)] if full else "queued"
    output: list[dict[str, str]] = []
    if state == "completed":
        output.append({"type": "video", "url": mint(f"{job.generation_id}.mp4")})
        if job.exr_export:
            output.append({"type": EXR_OUTPUT_TYPE, "url": mint(f"{job.generation_id}.exr")})
    reason, code = job.failure if state == "failed" and job.failure else (None, None)
    return {
        "id": job.generation_id,
        # Luma's examples give whole seconds in UTC with a "Z" suffix ("2026-04-08T12:00:00Z").
        "created_at": datetime.fromtimestamp(int(job.created_at), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": NATIVE_MODEL,
        "state": state,
        "type": NATIVE_TYPE_OF[job.model],
        "output": output,
        "failure_reason": reason,
        "failure_code": code,
    }

"""The end of a render's flow: turn the trigger's event into the task's result (or the right exception), store the
files, record success durably. Mixed into :class:`airflow_provider_luma._flow.RenderRun`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_luma._end_in_trigger import SUCCESS_PAYLOAD
from airflow_provider_luma._state import fail_or_retry
from airflow_provider_luma.core.errors import LumaError, LumaGenerationCancelled, LumaGenerationFailed
from airflow_provider_luma.core.jobs import JobStatus

if TYPE_CHECKING:
    from airflow_provider_luma._plan import RenderPlan
    from airflow_provider_luma._state import StateStore
    from airflow_provider_luma.core.jobs import Job
    from airflow_provider_luma.core.pricing import Estimate
    from airflow_provider_luma.core.specs.base import RenderSpec
    from airflow_provider_luma.operators._base import LumaRenderOperator


class Finisher:
    """``execute_complete`` and everything after a terminal status."""

    op: LumaRenderOperator
    context: Any
    log: Any
    plan: RenderPlan
    spec: RenderSpec

    # Provided by RenderRun (a cached hook, the backend name and the price estimate).
    @property
    def hook(self) -> Any:
        raise NotImplementedError

    @property
    def backend(self) -> str:
        raise NotImplementedError

    @property
    def state(self) -> StateStore:
        raise NotImplementedError

    @property
    def estimate(self) -> Estimate:
        raise NotImplementedError

    def complete(self, event: dict[str, Any] | str | None) -> dict[str, Any]:
        """Turn the trigger's event into the task's result, or the right Airflow exception."""
        if event == SUCCESS_PAYLOAD:
            event = self._ended_in_trigger()
        if not isinstance(event, dict) or "status" not in event:
            raise AirflowException(f"Luma trigger returned no usable event: {event!r}")
        status, request_id = event["status"], event.get("request_id") or "?"
        if status == "success":
            if not event.get("video_url") and event.get("request_id"):
                event = self._with_fresh_urls(event)
            return self.finish_event(event)
        message = str(event.get("message") or "no reason given")
        if status == "failed":
            error: LumaError = LumaGenerationFailed(request_id, message, failure_code=event.get("failure_code"))
        elif status == "cancelled":
            error = LumaGenerationCancelled(request_id, message)
        else:  # timeout / error
            raise (AirflowException if event.get("retryable") else AirflowFailException)(message)
        # Not logged here: Airflow logs the exception with its message, so a failure reads once in the task log.
        raise fail_or_retry(error)

    def _ended_in_trigger(self) -> dict[str, Any] | str:
        """The trigger ended the task (``TaskSuccessEvent``) but a runner resumed it anyway (``dag.test()`` does):
        finish the render the durable record names, as a resume after any success event would."""
        record = self.state.get() or {}
        request_id = record.get("request_id")
        if not request_id:
            return SUCCESS_PAYLOAD  # nothing to finish from: reported as an unusable event
        return {"status": "success", "request_id": str(request_id), "generation_id": record.get("generation_id")}

    def _with_fresh_urls(self, event: dict[str, Any]) -> dict[str, Any]:
        """The trigger's event leaves presigned URLs out (see ``job_event``): fetch them here, fresh."""
        request_id = str(event["request_id"])
        try:
            job: Job = self.hook.get_generation(request_id, self.spec.MODEL_ID)
        except LumaError as exc:
            raise fail_or_retry(
                exc, f"Luma request {request_id} finished, but fetching its URLs failed: {exc}"
            ) from None
        if job.status is not JobStatus.SUCCESS:
            return event
        return {
            **event,
            "generation_id": job.generation_id or event.get("generation_id"),
            "video_url": job.video_url,
            "exr_url": job.exr_url,
        }

    def finish_job(self, job: Job) -> dict[str, Any]:
        """Result for a job that was already terminal when we looked."""
        from airflow_provider_luma._results import job_event

        return self.complete(dict(job_event(job, elapsed=0.0)))

    def finish_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Record success durably, store the files (when ``output_path`` is set) and build the XCom result."""
        from airflow_provider_luma import _deliver, _delivery_record
        from airflow_provider_luma._results import render_result

        _deliver.mask_urls(event.get("video_url"), event.get("exr_url"))
        s = self.spec
        result: dict[str, Any] = dict(render_result(s, self.backend, event, self.estimate, self.plan.source))
        self.log.info(
            "Luma %s render done: generation %s (request %s)", s.mode, result["generation_id"], result["request_id"]
        )
        if s.quality == "HDR+EXR" and not result["exr_url"]:
            self.log.warning("exr_export was requested but the service returned no EXR URL; only the MP4 is kept")
        if self.plan.output is not None:
            # "rendered" = paid for, files not stored yet: a retry after a failed download reuses the render
            # whatever reuse_existing says (see _flow.RenderRun._resume).
            self._record("rendered", result)
            values = _deliver.placeholder_values(self.context, self.op.task_id, result)
            try:
                result = _deliver.store_outputs(self.hook, result, self.plan.output, values, self.log)
            except LumaError as exc:
                raise fail_or_retry(exc, f"{exc}. The render is kept: a retry downloads it again.") from None
            prompt = getattr(s, "prompt", None)
            _deliver.emit_assets(self.context, self.op.asset_alias, result, prompt, self.log)
        self._record("succeeded", result)
        self.op.luma_video_link = _deliver.video_link(result)
        _delivery_record.record(self.op, result)  # what the gallery serves (XComs are REST-writable)
        return result

    def _record(self, phase: str, result: dict[str, Any]) -> None:
        try:
            self.state.set(
                phase=phase,
                attempted_at=time.time(),
                request_id=result["request_id"],
                generation_id=result["generation_id"],
            )
        except Exception as exc:  # noqa: BLE001 - the request id is already stored; a retry still finds it
            self.log.warning("Could not record the finished render in task_state_store (%s)", exc)

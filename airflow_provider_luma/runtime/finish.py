"""The end of a render: turn a terminal event into the task's result (or the right exception), store the files,
record success durably.

A :class:`RenderFinish` works from the durable record alone (its request id and :class:`RenderFacts`) plus the
task's :class:`~airflow_provider_luma.runtime.plan.RunOptions`: ``execute_complete`` builds one without the
request, so a resume neither pulls upstream XComs nor reads a source video. :class:`~.flow.RenderRun` builds one
too when a render ends within ``execute`` (already terminal, or polled in the worker).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_luma.core.errors import LumaError
from airflow_provider_luma.core.jobs import JobStatus
from airflow_provider_luma.core.retry import RetryPolicy
from airflow_provider_luma.runtime.polling import read_event
from airflow_provider_luma.runtime.record import Phase
from airflow_provider_luma.runtime.task import fail_or_retry

if TYPE_CHECKING:
    from airflow_provider_luma.core.jobs import Job
    from airflow_provider_luma.hooks import LumaHook
    from airflow_provider_luma.runtime.plan import RunOptions
    from airflow_provider_luma.runtime.record import RecordStore, RenderFacts, RenderRecord
    from airflow_provider_luma.runtime.task import DeliveryTask

# In a worker, sleep through short Retry-After waits only; a longer one (the concurrency limit says 60 s) is
# waited out in the triggerer so the slot is free meanwhile.
WORKER_RETRY = RetryPolicy(retry_after_cap=15.0)


def worker_hook(conn_id: str) -> LumaHook:
    """The hook a worker uses for one render (short Retry-After waits only)."""
    from airflow_provider_luma.hooks import LumaHook

    return LumaHook(conn_id, retry_policy=WORKER_RETRY)


class RenderFinish:
    """``execute_complete`` and everything after a terminal status, for the render ``record`` names.

    :param task: the task (its log, link and delivery record).
    :param context: the task's Airflow context (placeholders, Asset events).
    :param options: the task's run options (``output``, ``asset_alias``, ``task_id``).
    :param record: the durable record of the render, with its facts.
    :param store: where the record is kept; the finish writes ``rendered`` and ``succeeded`` there.
    :param hook: the connection's hook (fresh URLs, downloads).
    """

    def __init__(
        self,
        task: DeliveryTask,
        context: Any,
        options: RunOptions,
        record: RenderRecord,
        store: RecordStore,
        hook: LumaHook,
    ) -> None:
        if record.facts is None:
            raise ValueError("a render's finish needs the facts of its durable record (version 3)")
        self.task, self.context, self.options, self.hook = task, context, options, hook
        self.record, self.store, self.facts = record, store, record.facts
        self.log = task.log

    def complete(self, event: dict[str, Any] | None) -> dict[str, Any]:
        """Turn the trigger's event into the task's result, or the right Airflow exception."""
        return self.finish_success(read_event(event))

    def finish_success(self, event: dict[str, Any]) -> dict[str, Any]:
        """The result of a successful event (see :func:`~.polling.read_event`)."""
        if not event.get("video_url") and event.get("request_id"):
            event = self._with_fresh_urls(event)
        return self.finish_event(event)

    def finish_job(self, job: Job) -> dict[str, Any]:
        """Result for a job that was already terminal when we looked."""
        from airflow_provider_luma.runtime.results import job_event

        return self.complete(dict(job_event(job, elapsed=0.0)))

    def _with_fresh_urls(self, event: dict[str, Any]) -> dict[str, Any]:
        """The trigger's event leaves presigned URLs out (see ``job_event``): fetch them here, fresh."""
        request_id = str(event["request_id"])
        try:
            job: Job = self.hook.get_generation(request_id, self.record.model)
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

    def finish_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Record success durably, store the files (when ``output_path`` is set) and build the XCom result."""
        from airflow_provider_luma.runtime import delivery, delivery_record
        from airflow_provider_luma.runtime.results import render_result

        delivery.mask_urls(event.get("video_url"), event.get("exr_url"))
        facts: RenderFacts = self.facts
        model = self.record.model or "luma-ray-3-2-generate"
        result: dict[str, Any] = dict(render_result(model, self.record.backend, event, facts))
        self.log.info(
            "Luma %s render done: generation %s (request %s)", facts.mode, result["generation_id"], result["request_id"]
        )
        if facts.quality == "HDR+EXR" and not result["exr_url"]:
            self.log.warning("exr_export was requested but the service returned no EXR URL; only the MP4 is kept")
        output = self.options.output
        if output is not None:
            # "rendered" = paid for, files not stored yet: a retry after a failed download reuses the render
            # whatever reuse_existing says (see Phase.RENDERED).
            self._record(Phase.RENDERED, result)
            values = delivery.placeholder_values(self.context, self.options.task_id, result)
            try:
                result = delivery.store_outputs(self.hook, result, output, values, self.log)
            except LumaError as exc:
                raise fail_or_retry(exc, f"{exc}. The render is kept: a retry downloads it again.") from None
            delivery.emit_assets(self.context, self.options.asset_alias, result, facts.prompt_sha256, self.log)
        self._record(Phase.SUCCEEDED, result)
        self.task.luma_video_link = delivery.video_link(result)
        delivery_record.record(self.task, result)  # what the gallery serves (XComs are REST-writable)
        return result

    def _record(self, phase: Phase, result: dict[str, Any]) -> None:
        self.record = self.record.moved_to(
            phase, at=time.time(), request_id=result["request_id"], generation_id=result["generation_id"]
        )
        try:
            self.store.put(self.record)
        except Exception as exc:  # noqa: BLE001 - the request id is already stored; a retry still finds it
            self.log.warning("Could not record the finished render in task_state_store (%s)", exc)

"""The worker-side flow of one render: validate, submit at most once, wait, and finish.

Imported lazily by the operators (never at DAG-parse time). Durable state lives in Airflow 3.3's
``context["task_state_store"]`` under :data:`STATE_KEY`, which survives retries of the same task instance:

* ``phase="submitting"`` is written *before* the create request is sent; ``phase="submitted"`` with the
  ``request_id`` right after it is accepted; with ``output_path``, ``phase="rendered"`` once the render is done
  but its files are not stored yet; ``phase="succeeded"`` when everything is done.
* A later try reads it: an in-flight request is re-attached (no POST), a succeeded one is returned (no POST, when
  ``reuse_existing``), a ``rendered`` one is always reused (its download failed), a failed one is resubmitted,
  and a ``submitting`` record without a request id is an ambiguous submission that fails loudly instead of
  silently buying a second render.

The key name and the record's field names are a compatibility contract: renaming them breaks in-flight retries.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_luma._retry import RetryPolicy
from airflow_provider_luma._storage import parse_output_path, probe_writable
from airflow_provider_luma._task_state import (
    STATE_KEY,
    StateStore,
    context_get,
    fail_or_retry,
    fingerprint,
)
from airflow_provider_luma.exceptions import (
    LumaBudgetExceeded,
    LumaError,
    LumaGenerationCancelled,
    LumaGenerationFailed,
    LumaNotFoundError,
    LumaRateLimitError,
    LumaSubmissionOutcomeUnknown,
    LumaValidationError,
)
from airflow_provider_luma.models import Generation, GenerationStatus, VideoRequest
from airflow_provider_luma.pricing import billed_blocks, check_budget, estimate_cost_usd, parse_max_cost

__all__ = ["MAX_RATE_LIMIT_WAITS", "STATE_KEY", "WORKER_RETRY", "RenderRun", "fail_or_retry", "fingerprint"]

if TYPE_CHECKING:
    from airflow_provider_luma.hooks import LumaHook
    from airflow_provider_luma.operators import LumaGenerateVideoOperator

# In a worker, sleep through short Retry-After waits only; a longer one (the concurrency limit says 60 s) is
# waited out in the triggerer so the slot is free meanwhile.
WORKER_RETRY = RetryPolicy(retry_after_cap=15.0)
MAX_RATE_LIMIT_WAITS = 120


class RenderRun:
    """One execution (or resumption) of a Luma operator."""

    def __init__(self, operator: LumaGenerateVideoOperator, context: Any) -> None:
        self.op, self.context, self.log = operator, context, operator.log
        self.state = StateStore(context)
        self.waits_so_far = 0  # rate-limit waits already spent (carried in defer kwargs)
        try:
            self.request = VideoRequest.from_params(**operator.request_params())
            self.output = parse_output_path(getattr(operator, "output_path", None))
            self.max_cost = parse_max_cost(getattr(operator, "max_cost_usd", None))
            map_index = getattr(context_get(context, "ti"), "map_index", -1)
            mapped = isinstance(map_index, int) and map_index >= 0
            if self.output is not None and mapped and not self.output.unique_per_render:
                raise LumaValidationError(
                    [
                        f"output_path: got {self.output.raw!r}; in a mapped task every element would write the same "
                        "file: put {generation_id}, {request_id} or {map_index} in it, or end it with / (a folder)"
                    ]
                )
        except LumaValidationError as exc:
            raise AirflowFailException(str(exc)) from None

    @cached_property
    def hook(self) -> LumaHook:
        from airflow_provider_luma.hooks import LumaHook

        return LumaHook(self.op.luma_conn_id, retry_policy=WORKER_RETRY)

    # -- execute() -------------------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Validate, resume or submit, then wait (deferring or polling)."""
        r = self.request
        chained = f" from generation {', '.join(r.chained_generation_ids)}" if r.chained_generation_ids else ""
        self.log.info(
            "Luma %s render%s: %s %s %s%s%s, estimated cost $%.2f (%d block(s))",
            r.mode, chained, r.resolution, r.duration, r.aspect_ratio, " HDR" if r.hdr else "",
            " +EXR" if r.exr_export else "", estimate_cost_usd(r), billed_blocks(r),
        )  # fmt: skip
        if self.output is not None and self.waits_so_far == 0:  # probed once; not again after each 429 wait
            try:
                probe_writable(self.output)  # a storage problem must show before the spend, not after
            except LumaValidationError as exc:
                raise AirflowFailException(str(exc)) from None
        generation = self._resume() or self._submit()
        self._push_cost()
        if generation.is_terminal:
            return self.finish_generation(generation)
        return self._wait(generation.request_id)

    def _resume(self) -> Generation | None:
        record = self.state.get()
        if not record:
            return None
        if record.get("fingerprint") != fingerprint(self.request):
            self.log.info("Stored Luma request was for different parameters; submitting a new render")
            return None
        request_id = record.get("request_id")
        if record.get("phase") == "submitting" and not request_id:
            return self._ambiguous(record)
        if not request_id:
            return None
        try:
            generation = self.hook.get_generation(str(request_id))
        except LumaNotFoundError:
            self.log.warning("Stored Luma request %s is unknown to the service; submitting anew", request_id)
            return None
        except LumaError as exc:
            raise fail_or_retry(exc, f"Could not check stored Luma request {request_id}: {exc}") from None
        if generation.status is GenerationStatus.SUCCESS:
            if record.get("phase") != "succeeded":
                # The try that paid for it never finished (deadline event, worker death, failed download):
                # finishing it is not a "fresh take", whatever reuse_existing says.
                self.log.info("Luma request %s already rendered; finishing it now (no new render)", request_id)
                return generation
            if self.op.reuse_existing:
                self.log.info("Luma request %s already succeeded; reusing it (no new render is paid)", request_id)
                return generation
            self.log.info("Luma request %s already succeeded but reuse_existing=False; rendering again", request_id)
            return None
        if generation.is_terminal:
            self.log.info("Previous Luma request %s ended %s; submitting a fresh render", request_id, generation.status)
            return None
        self.log.info("Re-attaching to Luma request %s (%s); no new render is submitted", request_id, generation.status)
        return generation

    def _push_cost(self) -> None:
        """Publish the estimate as soon as a render is ours, so a cost report counts it even if the task fails."""
        ti = context_get(self.context, "ti")
        if ti is None:
            return
        try:
            ti.xcom_push(key="estimated_cost_usd", value=estimate_cost_usd(self.request))
        except Exception as exc:  # noqa: BLE001 - reporting must not fail a render that is already paid for
            self.log.warning("Could not push estimated_cost_usd to XCom early (%s)", exc)

    def _ambiguous(self, record: dict[str, Any]) -> Generation | None:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(record.get("attempted_at") or 0)))
        message = (
            f"A previous try sent a Luma create request at {when} but never learned its request id (the answer "
            "was lost). That render may exist and be billed. Check the GMI console; to accept the risk of paying "
            "twice, set resubmit_unknown=True on this task and clear it."
        )
        if not self.op.resubmit_unknown:
            self.log.error(message)
            raise AirflowFailException(message)
        self.log.warning("%s resubmit_unknown=True: submitting a new render.", message)
        return None

    def _submit(self) -> Generation:
        # The cap guards new spend only: re-attaching to (or reusing) a render already paid for costs nothing, so
        # a lowered cap never orphans one. A fresh task instance has no record, so this runs before any request.
        try:
            check_budget(self.request, self.max_cost)
        except LumaBudgetExceeded as exc:
            self.log.error("%s", exc)
            raise AirflowFailException(str(exc)) from None
        fp = fingerprint(self.request)
        while True:
            self.state.set(phase="submitting", fingerprint=fp, attempted_at=time.time(), request_id=None)
            try:
                generation = self.hook.submit_generation(self.request)
            except LumaSubmissionOutcomeUnknown as exc:
                self.log.error("%s", exc)
                raise AirflowFailException(str(exc)) from None
            except LumaError as exc:
                # Provably not accepted: forget the attempt so a retry submits cleanly.
                self.state.set(phase="rejected", fingerprint=fp, attempted_at=time.time(), request_id=None)
                if not isinstance(exc, LumaRateLimitError) or self.waits_so_far >= MAX_RATE_LIMIT_WAITS:
                    raise fail_or_retry(exc, f"Luma rejected the request: {exc}") from None
                self._wait_for_capacity(exc)
                continue
            self.state.set(
                phase="submitted", fingerprint=fp, attempted_at=time.time(), request_id=generation.request_id
            )
            self.log.info("Submitted Luma request %s (status %s)", generation.request_id, generation.raw_status or "-")
            return generation

    def _wait_for_capacity(self, exc: LumaRateLimitError) -> None:
        """Wait out a rate limit: deferred in the triggerer (no worker slot), or asleep when not deferrable."""
        import random

        self.waits_so_far += 1
        # Jitter spreads a fan-out's resubmissions so they do not all hit the limit again together.
        delay = (exc.retry_after or 30.0) * random.uniform(1.0, 1.2)
        what = "concurrent-jobs limit" if exc.kind == "concurrency" else "requests-per-minute limit"
        where = "in the triggerer (no worker slot held)" if self.op.deferrable else "in the worker (deferrable=False)"
        self.log.warning(
            "Luma %s reached (%s): waiting %.0f s %s, then submitting again (wait %d of at most %d). "
            "Size an Airflow pool to your account's concurrency to avoid this.",
            what, exc.message, delay, where, self.waits_so_far, MAX_RATE_LIMIT_WAITS,
        )  # fmt: skip
        if not self.op.deferrable:
            time.sleep(delay)
            return
        import pendulum
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.op.defer(
            trigger=DateTimeTrigger(moment=pendulum.now("UTC").add(seconds=delay)),
            method_name="execute_after_rate_limit",
            kwargs={"rate_limit_waits": self.waits_so_far},
            timeout=timedelta(seconds=delay + 300),
        )

    def _wait(self, request_id: str) -> dict[str, Any]:
        from airflow_provider_luma._schedule import expected_render_seconds, first_poll_delay
        from airflow_provider_luma.triggers import LumaGenerationTrigger

        now = time.time()
        budget = float(self.op.timeout)
        if self.op.execution_timeout is not None:
            # execution_timeout is not enforced while deferred (Airflow 3.3.2): honour it in our own deadline.
            budget = min(budget, self.op.execution_timeout.total_seconds())
        deadline = now + budget
        if not self.op.deferrable:
            return self._poll_in_worker(request_id, deadline)
        # The first poll waits for a fraction of the render's expected time; see airflow_provider_luma._schedule.
        r = self.request
        expected = expected_render_seconds(r.resolution, r.duration, r.hdr, r.exr_export)
        trigger = LumaGenerationTrigger(
            request_id=request_id,
            deadline=deadline,
            luma_conn_id=self.op.luma_conn_id,
            poll_interval=self.op.poll_interval,
            first_poll_at=now + first_poll_delay(expected, self.op.poll_interval),
            submitted_at=now,
            expected_seconds=expected,
        )
        # The backstop must fire only if the trigger itself cannot: its own timeout event is the normal path.
        backstop = timedelta(seconds=budget + max(60.0, 3 * self.op.poll_interval))
        self.log.info("Deferring until Luma request %s is done (deadline in %.0f s)", request_id, budget)
        self.op.defer(trigger=trigger, method_name="execute_complete", timeout=backstop)

    def _poll_in_worker(self, request_id: str, deadline: float) -> dict[str, Any]:
        from airflow_provider_luma.triggers import generation_event

        last: GenerationStatus | None = None
        started = time.time()
        while time.time() < deadline:
            try:
                generation = self.hook.get_generation(request_id)
            except LumaError as exc:
                if not exc.retryable:
                    raise fail_or_retry(exc) from None
                self.log.warning("Luma request %s: status check failed (%s); still polling", request_id, exc)
            else:
                if generation.status != last:
                    self.log.info(
                        "Luma request %s: %s after %.0f s", request_id, generation.status, time.time() - started
                    )
                    last = generation.status
                if generation.is_terminal:
                    return self.complete(generation_event(generation, elapsed=time.time() - started))
            time.sleep(max(0.0, min(self.op.poll_interval, deadline - time.time())))
        raise AirflowException(
            f"Luma request {request_id} did not finish before the deadline; the render may still finish and is "
            "billed. A retry of this task re-attaches to it."
        )

    # -- execute_complete() ----------------------------------------------------------------------------------

    def complete(self, event: dict[str, Any] | None) -> dict[str, Any]:
        """Turn the trigger's event into the task's result, or the right Airflow exception."""
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
            self.log.error("Luma request %s: %s", request_id, message)
            raise (AirflowException if event.get("retryable") else AirflowFailException)(message)
        self.log.error("%s", error)
        raise fail_or_retry(error)

    def _with_fresh_urls(self, event: dict[str, Any]) -> dict[str, Any]:
        """The trigger's event leaves presigned URLs out (see ``generation_event``): fetch them here, fresh."""
        request_id = str(event["request_id"])
        try:
            generation = self.hook.get_generation(request_id)
        except LumaError as exc:
            raise fail_or_retry(
                exc, f"Luma request {request_id} finished, but fetching its URLs failed: {exc}"
            ) from None
        if generation.status is not GenerationStatus.SUCCESS:
            return event
        return {
            **event,
            "generation_id": generation.generation_id or event.get("generation_id"),
            "video_url": generation.video_url,
            "exr_url": generation.exr_url,
        }

    def finish_generation(self, generation: Generation) -> dict[str, Any]:
        """Result for a generation that was already terminal when we looked."""
        from airflow_provider_luma.triggers import generation_event

        return self.complete(generation_event(generation, elapsed=0.0))

    def finish_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Record success durably, store the files (when ``output_path`` is set) and build the XCom result."""
        from airflow_provider_luma import _deliver

        _deliver.mask_urls(event.get("video_url"), event.get("exr_url"))
        r = self.request
        result = {
            "generation_id": event.get("generation_id"),
            "request_id": event.get("request_id"),
            "video_url": event.get("video_url"),
            "exr_url": event.get("exr_url"),
            "video_path": None,
            "exr_path": None,
            "mode": r.mode.value,
            "estimated_cost_usd": estimate_cost_usd(r),
            "billed_blocks": billed_blocks(r),
            "resolution": r.resolution,
            "duration": r.duration,
            "aspect_ratio": r.aspect_ratio,
            "hdr": r.hdr,
        }
        self.log.info(
            "Luma %s render done: generation %s (request %s)", r.mode, result["generation_id"], result["request_id"]
        )
        if not result["generation_id"]:
            self.log.warning("The service reported success without a generation_id; chaining from it will fail")
        if r.exr_export and not result["exr_url"]:
            self.log.warning("exr_export was requested but the service returned no EXR URL; only the MP4 is kept")
        if self.output is not None:
            # "rendered" = paid for, files not stored yet: a retry after a failed download reuses the render
            # whatever reuse_existing says (see _resume).
            self._record("rendered", result)
            values = _deliver.placeholder_values(self.context, self.op.task_id, result)
            try:
                result = _deliver.store_outputs(self.hook, result, self.output, values, self.log)
            except LumaError as exc:
                raise fail_or_retry(exc, f"{exc}. The render is kept: a retry downloads it again.") from None
            _deliver.emit_assets(self.context, self.op.asset_alias, result, r.prompt, self.log)
        self._record("succeeded", result)
        self.op.luma_video_link = _deliver.video_link(result)
        return result

    def _record(self, phase: str, result: dict[str, Any]) -> None:
        try:
            self.state.set(
                phase=phase,
                fingerprint=fingerprint(self.request),
                attempted_at=time.time(),
                request_id=result["request_id"],
                generation_id=result["generation_id"],
            )
        except Exception as exc:  # noqa: BLE001 - the request id is already stored; a retry still finds it
            self.log.warning("Could not record the finished render in task_state_store (%s)", exc)

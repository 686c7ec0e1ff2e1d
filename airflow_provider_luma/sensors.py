"""``LumaGenerationSensor``: wait for a render started elsewhere and push the same result as a render task.

Typical use: a render task with ``wait_for_completion=False`` submits and returns at once; the sensor (in the same
DAG, or another one, given the ``request_id``) waits for it, deferred in the triggerer by default. Like the
operators, this module imports only ``airflow.sdk`` at DAG-parse time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, conf
from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_luma.operators._base import LumaVideoLink
from airflow_provider_luma.runtime.outcome import records_outcome

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_provider_luma.core.jobs import Job
    from airflow_provider_luma.runtime.polling import PollMachine

NO_GENERATION_LOOKUP = (
    "generation_id: GMI's request queue documents no lookup by generation id, so the sensor cannot find a render "
    "from it alone; pass request_id (every Luma render task pushes it: render.output['request_id']), or use a "
    "connection to the native Luma Agents API, where the generation id is what is looked up"
)


class LumaGenerationSensor(BaseSensorOperator):
    """Wait until a Luma render finishes; push ``generation_id``, ``request_id``, ``video_url``, ... as a render
    task does (keys this sensor cannot know, such as ``mode`` or ``estimated_cost_usd``, are ``None``: a status
    answer carries no request payload, and those are facts of the payload; read them from the submitting task).

    :param request_id: the queue request id of the render (templated), e.g. ``render.output["request_id"]``.
    :param generation_id: optional (templated): fail if the request holds another generation. Alone it is enough
        on the native Luma Agents API (its generation id is its request id), not on GMI's queue, which has no
        lookup by generation id.
    :param model: the render's model id, when known (``luma-ray-3-2-generate`` by default).
    :param luma_conn_id: Airflow connection (type ``luma``).
    :param poke_interval: seconds between status checks (default 10).
    :param timeout: seconds to wait at most (default 3600); the render may still finish after it.
    :param deferrable: wait in the triggerer without holding a worker slot. Default: ``[operators]
        default_deferrable``, True when unset.

    A failed or cancelled render fails the sensor (permanent failures skip its retries), with the server's reason.
    """

    template_fields: Sequence[str] = ("request_id", "generation_id", "luma_conn_id")
    ui_color = "#e8dcff"
    operator_extra_links = (LumaVideoLink(),)

    def __init__(
        self,
        *,
        request_id: str | None = None,
        generation_id: str | None = None,
        model: str | None = None,
        luma_conn_id: str = "luma_default",
        poke_interval: float = 10.0,
        timeout: float = 3600.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        if not request_id and not generation_id:
            raise ValueError("LumaGenerationSensor: request_id or generation_id is required")
        self.request_id = request_id
        self.generation_id = generation_id
        self.model = model
        self.luma_conn_id = luma_conn_id
        self.deferrable = deferrable
        self.luma_video_link: str | None = None
        self._poll_machine: PollMachine | None = None

    def _job(self) -> Job:
        from airflow_provider_luma.core.errors import LumaError
        from airflow_provider_luma.core.specs.base import is_unset
        from airflow_provider_luma.hooks import LumaHook
        from airflow_provider_luma.runtime.task import fail_or_retry

        hook = LumaHook(self.luma_conn_id)
        key = self.request_id
        try:
            if is_unset(key) and not is_unset(self.generation_id) and hook.get_settings().wire.POLLS_BY_GENERATION_ID:
                key = self.generation_id  # e.g. the native API looks renders up by generation id
            if is_unset(key):
                raise AirflowFailException(f"request_id: got {self.request_id!r}; {NO_GENERATION_LOOKUP}")
            return hook.get_generation(str(key), self.model)
        except LumaError as exc:
            raise fail_or_retry(exc, f"Could not check Luma request {self.request_id}: {exc}") from None

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One status check: done (with the result), still running, or a failure.

        Read as every wait reads it (:mod:`airflow_provider_luma.runtime.polling`): state changes in the one
        vocabulary of the logs, a warning on an unknown status, progress lines at their cadence.
        """
        from airflow_provider_luma.runtime.polling import PollMachine, Schedule, emit

        job = self._job()
        now = time.time()
        if self._poll_machine is None:  # one per sensor instance: every poke of "poke" mode, one of "reschedule"
            schedule = Schedule(deadline=now + self.timeout, poll_interval=self.poke_interval, submitted_at=now)
            self._poll_machine = PollMachine(job.request_id, schedule)
        step = self._poll_machine.answer(job, now)
        emit(self.log, step.lines)
        if step.event is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._result(job))

    @records_outcome
    def execute(self, context: Context) -> Any:
        """Check once; then defer to the triggerer (default) or poke in the worker."""
        if not self.deferrable:
            return super().execute(context)
        job = self._job()
        if job.is_terminal:
            return self._result(job)
        from airflow_provider_luma.triggers import LumaGenerationTrigger

        now = time.time()
        self.log.info("Waiting for Luma request %s (%s) in the triggerer", job.request_id, job.raw_status or "-")
        self.defer(
            trigger=LumaGenerationTrigger(
                request_id=job.request_id, deadline=now + self.timeout, luma_conn_id=self.luma_conn_id,
                poll_interval=self.poke_interval, submitted_at=now, backend=job.backend, model=self.model,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + max(60.0, 3 * self.poke_interval)),
        )  # fmt: skip

    @records_outcome
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **_: Any) -> Any:
        """The trigger fired: read its event as a render task does; on success look the request up once more (fresh
        URLs) and return its result."""
        from airflow_provider_luma.runtime.polling import read_event

        read_event(event)
        return self._result(self._job())

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the generation waited for as the output (the first run that knows its id when the render
        was submitted with ``wait_for_completion=False``), the request id as a run facet."""
        from airflow_provider_luma.runtime.lineage import sensor_lineage

        return sensor_lineage(self)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage of a failed wait: the request id and the error."""
        from airflow_provider_luma.runtime.lineage import sensor_lineage

        return sensor_lineage(self, failed=True)

    def _result(self, job: Job) -> dict[str, Any]:
        from airflow_provider_luma.runtime.delivery import mask_urls
        from airflow_provider_luma.runtime.polling import read_event
        from airflow_provider_luma.runtime.results import job_event, sensed_result

        read_event(dict(job_event(job, elapsed=0.0, with_urls=False)))  # a failed or cancelled render raises here
        if self.generation_id and job.generation_id != self.generation_id:
            raise AirflowFailException(
                f"generation_id: Luma request {job.request_id} holds generation {job.generation_id}, "
                f"not {self.generation_id}"
            )
        mask_urls(job.video_url, job.exr_url)
        self.log.info("Luma request %s is done: generation %s", job.request_id, job.generation_id)
        self.luma_video_link = job.video_url
        return dict(sensed_result(job, self.model))
